// Shared by the limit-actor suites: one message delivered as the runtime would, and a group committer
// of the small sizes these tests use on a real journal.
import { GroupCommitter } from '../../actors/group-commit.ts';
import type { LimitActor, LimitMessage } from '../../actors/limit-actor.ts';
import type { ActorContext, Envelope } from '../../actors/runtime/index.ts';
import type { JournalStore } from '../../persistence/ports.ts';

/** Delivers one message to the actor, as the runtime would, and returns the reply (a failure is thrown). */
export async function send(actor: LimitActor, msg: LimitMessage): Promise<unknown> {
  let answer: unknown;
  let failure: Error | undefined;
  const env = { msg, handle: {} } as unknown as Envelope<LimitMessage>;
  const ctx = { key: 'buyer', reply: (_e: unknown, v: unknown) => (answer = v), fail: (_e: unknown, e: Error) => (failure = e) } as unknown as ActorContext<LimitMessage>;
  await actor.receive([env], ctx);
  if (failure) throw failure;
  return answer;
}

/** A group committer on `journal`: one write in flight, 100 records or 1,000 events a write, no observers. */
export function testCommitter(journal: JournalStore): GroupCommitter {
  return new GroupCommitter(journal, { writes_in_flight_max: 1, batch_records_max: 100, batch_events_max: 1_000 }, { committed: () => {}, failed: () => {} });
}
