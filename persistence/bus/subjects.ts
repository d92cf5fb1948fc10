// NATS subject and name rules, shared by both buses so they accept and route the same things: the
// outbox bus needs wildcard matching, and both refuse what the NATS server would refuse, before
// anything is sent or stored.
import type { OutgoingEvent } from './ports.ts';

const token_pattern = /^[^\s.*>]+$/;
/** JetStream durable names may not hold `.`, `*`, `>` or whitespace; this is the portable subset. */
const durable_pattern = /^[A-Za-z0-9_-]{1,64}$/;
/** Event ids become `Nats-Msg-Id` headers and `outbox.event_id` (varchar(200)). */
export const event_id_length_max = 200;
/** Subjects are stored in `outbox.subject` (varchar(255)). */
export const subject_length_max = 255;

/** True for a concrete subject: dot-separated non-empty tokens, no wildcards or whitespace. */
export function isConcreteSubject(subject: string): boolean {
  return subject.length > 0 && subject.length <= subject_length_max && subject.split('.').every((token) => token_pattern.test(token));
}

/** True for a filter: tokens as in a subject, or `*`, or a final `>`. */
export function isFilter(filter: string): boolean {
  const tokens = filter.split('.');
  return (
    filter.length > 0 &&
    tokens.every((token, i) => token === '*' || (token === '>' && i === tokens.length - 1) || token_pattern.test(token))
  );
}

/** Whether `subject` matches `filter` (`*` is one token, a final `>` is one or more tokens). */
export function subjectMatches(filter: string, subject: string): boolean {
  const f = filter.split('.');
  const s = subject.split('.');
  for (let i = 0; i < f.length; i++) {
    const token = f[i];
    if (token === '>') return i === f.length - 1 && s.length > i;
    if (i >= s.length) return false;
    if (token !== '*' && token !== s[i]) return false;
  }
  return f.length === s.length;
}

/** Whether every subject `filter` matches is also matched by `pattern` (a consumer filter inside a stream). */
export function filterWithin(filter: string, pattern: string): boolean {
  const f = filter.split('.');
  const p = pattern.split('.');
  for (let i = 0; i < p.length; i++) {
    const token = p[i];
    if (token === '>') return i < f.length;
    if (i >= f.length) return false;
    const mine = f[i];
    if (mine === '>') return false;
    if (token !== '*' && token !== mine) return false;
  }
  return f.length === p.length;
}

/** Throws RangeError for an event without a usable id or with a subject none of `subjects` covers. */
export function checkEvent(event: OutgoingEvent, subjects: readonly string[], accepted?: AcceptedSubjects): void {
  if (typeof event.id !== 'string' || event.id.length === 0 || event.id.length > event_id_length_max) {
    throw new RangeError(`bus event id must be 1..${event_id_length_max} characters`);
  }
  if (accepted?.has(event.subject)) return;
  if (!isConcreteSubject(event.subject) || !subjects.some((filter) => subjectMatches(filter, event.subject))) {
    throw new RangeError(`bus event ${event.id}: subject ${JSON.stringify(event.subject)} is not in ${subjects.join(', ')}`);
  }
  accepted?.add(event.subject);
}

/** Subjects a bus has already found valid, so that a relay's stream of events is not parsed per event. */
export class AcceptedSubjects {
  private readonly known = new Set<string>();
  constructor(private readonly max = accepted_subjects_max) {}

  has(subject: string): boolean {
    return this.known.has(subject);
  }

  add(subject: string): void {
    if (this.known.size >= this.max) this.known.clear();
    this.known.add(subject);
  }
}

/** Subjects remembered as valid per bus (merchants × event types; forgotten all at once past it). */
export const accepted_subjects_max = 10_000;

/** Throws RangeError for a durable name NATS would refuse. */
export function checkDurable(durable: string): void {
  if (typeof durable !== 'string' || !durable_pattern.test(durable)) {
    throw new RangeError(`durable name ${JSON.stringify(durable)} must match ${durable_pattern}`);
  }
}

/** Throws RangeError for a durable name NATS would refuse or a filter outside the bus's subjects. */
export function checkConsumer(durable: string, filter: string, subjects: readonly string[]): void {
  checkDurable(durable);
  if (typeof filter !== 'string' || !isFilter(filter) || !subjects.some((pattern) => filterWithin(filter, pattern))) {
    throw new RangeError(`filter ${JSON.stringify(filter)} is not within ${subjects.join(', ')}`);
  }
}

const encoder = new TextEncoder();

/** The bytes sent: text as UTF-8, bytes as given. */
export function eventBytes(data: Uint8Array | string): Uint8Array {
  return typeof data === 'string' ? encoder.encode(data) : data;
}
