// The public face of the event bus: the ports, the NATS JetStream bus with its outbox relay and
// request/reply helper, the live publisher, and the outbox bus of the embedded default.
export type * from './ports.ts';
export { bus_concurrency_default, bus_concurrency_max } from './ports.ts';
export { NatsBus, openNatsBus, nats_bus_defaults, type NatsBusOptions } from './nats-bus.ts';
export { serveRequests, type RequestHandler, type RequestService, type RequestServiceOptions } from './request-service.ts';
export { OutboxRelay, outbox_relay_defaults, type OutboxRelayOptions } from './outbox-relay.ts';
export { LivePublisher, live_publisher_defaults, type LivePublisherOptions } from './live-publisher.ts';
export { OutboxBus, outbox_bus_defaults, type OutboxBusOptions } from './outbox-bus.ts';
export { durableCursor } from './outbox-consumer.ts';
export { subjectMatches } from './subjects.ts';
