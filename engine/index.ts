// The pure core: deterministic functions of (state, command, now). No I/O, no timers, no clock.
export * from './clock.ts';
export * from './random.ts';
export * from './ids.ts';
export * from './shard.ts';
export * from './reservation-index.ts';
export * from './inventory.ts';
export * from './order.ts';
export * from './order-view.ts';
export * from './facts-intern.ts';
export * from './rules.ts';
export * from './buyer.ts';
export * from './usage-report.ts';
