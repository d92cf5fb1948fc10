// Proves the idempotency gate's memory against a plain model of its rules over random sequences of
// requests: new keys answered 201, 422 or 503, repeats with the same or another body, requests left
// running and finished later, and the clock moving past the retention. The model keeps the entries in
// a plain array in the order they were made and walks it from the start, as the rules say (oldest
// settled first, never past a request still running when ageing out, past it when full); the gate
// keeps them in a queue it walks and rebuilds. Every answer, every execution and the number of
// entries must be the same after every step, and the gate's queue must hold every entry in order.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IDEMPOTENCY_TTL_MS, IdempotencyGate, type Answer } from '../../http/idempotency.ts';

const ENTRIES_MAX = 12;
const KEEP_MIN_MS = 60_000;
const RETAIN_MS = 600_000;
const PER_USER_MAX = 6;
const TRIM_PER_CALL = 32;

interface ModelEntry {
  id: string;
  user: string;
  hash: string;
  answer: Answer | undefined;
  settledAt: number | undefined;
  firstAt: number;
  unknown: boolean;
}

/** The gate's rules, over an array in creation order (O(n) per step: obviously right, not fast). */
class Model {
  list: ModelEntry[] = [];
  running = 0;
  constructor(private readonly now: () => number) {}

  get size(): number {
    return this.list.length;
  }
  private find(id: string): ModelEntry | undefined {
    return this.list.find((e) => e.id === id);
  }
  private remove(e: ModelEntry): void {
    this.list.splice(this.list.indexOf(e), 1);
  }
  private perUser(user: string): number {
    return this.list.filter((e) => e.user === user).length;
  }
  private dropOldest(age: number, more: () => boolean): void {
    while (this.list.length > 0 && more()) {
      const e = this.list[0]!;
      if (e.settledAt === undefined || this.now() - e.settledAt < age) break;
      this.list.shift();
    }
  }
  private makeRoom(): boolean {
    if (this.size < ENTRIES_MAX) return true;
    this.dropOldest(KEEP_MIN_MS, () => this.size >= ENTRIES_MAX);
    if (this.size < ENTRIES_MAX) return true;
    if (this.running >= ENTRIES_MAX) return false;
    for (const e of [...this.list]) {
      if (this.size < ENTRIES_MAX) break;
      if (e.settledAt !== undefined) this.remove(e);
    }
    return this.size < ENTRIES_MAX;
  }

  /**
   * A request: 'reused' / 'busy', a replayed answer, or 'execute' (with the entry made for it, or none
   * when it runs without one).
   */
  begin(user: string, key: string, hash: string): { kind: 'reused' | 'busy' } | { kind: 'replay'; answer: Answer } | { kind: 'execute'; entry: ModelEntry | undefined } {
    const id = `${user}\u0000${key}`;
    const limit = this.size - TRIM_PER_CALL;
    this.dropOldest(RETAIN_MS, () => this.size > limit);
    let known = this.find(id);
    if (known && this.now() - known.firstAt >= IDEMPOTENCY_TTL_MS) {
      this.remove(known);
      known = undefined;
    }
    if (known) {
      if (known.hash !== hash) return { kind: 'reused' };
      if (!known.unknown) {
        if (!known.answer) throw new Error('the model replays only settled entries (a running one is shared: not generated)');
        return { kind: 'replay', answer: known.answer };
      }
      this.remove(known);
    } else {
      if (this.perUser(user) >= PER_USER_MAX) return { kind: 'busy' };
      if (!this.makeRoom()) return { kind: 'execute', entry: undefined };
    }
    const entry: ModelEntry = { id, user, hash, answer: undefined, settledAt: undefined, firstAt: this.now(), unknown: false };
    this.list.push(entry);
    this.running++;
    return { kind: 'execute', entry };
  }

  settle(entry: ModelEntry | undefined, answer: Answer): void {
    if (!entry) return;
    this.running--;
    entry.answer = answer;
    entry.settledAt = this.now();
    if (answer.status >= 500) entry.unknown = true;
    else if (answer.status === 422 && this.list.includes(entry)) this.remove(entry);
  }
}

type Step =
  | { op: 'request'; user: number; key: number; other: boolean; status: 201 | 422 | 503 }
  | { op: 'hang'; user: number; key: number }
  | { op: 'finish' }
  | { op: 'tick'; ms: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ op: fc.constant('request' as const), user: fc.nat(4), key: fc.nat(11), other: fc.boolean(), status: fc.constantFrom(201 as const, 201 as const, 422 as const, 503 as const) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('hang' as const), user: fc.nat(4), key: fc.integer({ min: 100, max: 103 }) }) },
  { weight: 1, arbitrary: fc.constant({ op: 'finish' as const }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('tick' as const), ms: fc.oneof(fc.integer({ min: 0, max: 70_000 }), fc.integer({ min: 100_000, max: 250_000 })) }) },
);

/** Plays `steps` on a gate and on the model, checking them against each other after every step. */
async function play(steps: Step[]): Promise<void> {
  let now = 1_000_000;
  const gate = new IdempotencyGate({ entries_max: ENTRIES_MAX, keep_min_ms: KEEP_MIN_MS, retain_ms: RETAIN_MS, per_user_max: PER_USER_MAX, now: () => now });
  const model = new Model(() => now);
  let executions = 0;
  let expectedExecutions = 0;
  // Requests left running (by `hang`), oldest first: the gate's promise, its finisher, the model's entry.
  const hanging: { result: Promise<unknown>; finish: (a: Answer) => void; entry: ModelEntry | undefined }[] = [];
  const hangingKeys = new Set<string>();
  for (const s of steps) {
    if (s.op === 'tick') {
      now += s.ms;
      continue;
    }
    if (s.op === 'finish') {
      const h = hanging.shift();
      if (!h) continue;
      const answer = { status: 201, body: { hung: true } };
      h.finish(answer);
      await h.result;
      model.settle(h.entry, answer);
      if (h.entry) hangingKeys.delete(h.entry.id);
      expect(gate.size).toBe(model.size);
      gate.checkIntegrity();
      continue;
    }
    const user = `u${s.user}`;
    const key = `k${s.key}`;
    // A request sharing a running one's execution is not modelled: such keys wait for their finish.
    if (hangingKeys.has(`${user}\u0000${key}`)) continue;
    const hash = s.op === 'request' && s.other ? 'other' : 'h';
    const expected = model.begin(user, key, hash);
    if (s.op === 'hang') {
      let finish!: (a: Answer) => void;
      const result = gate.run(user, key, hash, async () => undefined, () => {
        executions++;
        return new Promise<Answer>((resolve) => (finish = resolve));
      });
      if (expected.kind === 'execute') {
        expectedExecutions++;
        // The gate awaits its (empty) store before it executes.
        await new Promise((r) => setImmediate(r));
        hanging.push({ result, finish, entry: expected.entry });
        if (expected.entry) hangingKeys.add(expected.entry.id);
      } else if (expected.kind === 'replay') expect(await result).toEqual(expected.answer);
      else expect(await result).toBe(expected.kind);
    } else {
      const answer: Answer = { status: s.status, body: { n: executions + 1 } };
      const result = await gate.run(user, key, hash, async () => undefined, async () => {
        executions++;
        return answer;
      });
      if (expected.kind === 'execute') {
        expectedExecutions++;
        model.settle(expected.entry, answer);
        expect(result).toEqual(answer);
      } else if (expected.kind === 'replay') expect(result).toEqual(expected.answer);
      else expect(result).toBe(expected.kind);
    }
    expect(executions).toBe(expectedExecutions);
    expect(gate.size).toBe(model.size);
    gate.checkIntegrity();
  }
  for (const h of hanging) h.finish({ status: 201, body: {} });
  await Promise.all(hanging.map((h) => h.result));
}

describe('idempotency gate against a plain model of its rules', () => {
  it('answers, executes and remembers exactly as the model after every step', async () => {
    await fc.assert(fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 300 }), play), { numRuns: 300 });
  });

  it('keeps every entry queued in order while a request left running holds the head and hundreds of keys pass it', async () => {
    // Evictions behind the running head leave stale places in the middle of the queue: it is rebuilt
    // (with every live entry, in order) many times over.
    const statuses = [201, 201, 422, 503] as const;
    const passing: Step[] = Array.from({ length: 400 }, (_, i) => ({ op: 'request' as const, user: i % 5, key: i % 12, other: i % 7 === 0, status: statuses[i % 4]! }));
    // Its key asked again once it finishes: kept all along (a request still running is never evicted), it replays.
    const again: Step = { op: 'request', user: 0, key: 100, other: false, status: 201 };
    await play([{ op: 'hang', user: 0, key: 100 }, ...passing, { op: 'tick', ms: 70_000 }, ...passing.slice(0, 50), { op: 'finish' }, again, ...passing.slice(50, 150)]);
  });
});
