// Proves a passivated limit actor's state is taken up by its next incarnation instead of its journal,
// only when it is exactly the journal, on the real MariaDB and SQLite journals: the next incarnation
// reads nothing and asks no fate and decides as the journal would; an actor stopped with a release it
// had not journaled (a refused order's), or after a failed write, leaves nothing, and its next
// incarnation loads and settles its holds from the journal. And the cache itself: each entry is taken
// once, entries past their age are not, and a full cache keeps the entries it has rather than the
// newest (a cycle of buyers larger than it still finds the ones it kept). A state last loaded from the
// journal WARM_RELOAD_AFTER_MS ago is loaded again (its holds asked about); a hold whose fate is
// unknown, or a batch still waiting for its write, leaves nothing.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { GroupCommitter } from '../../actors/group-commit.ts';
import { buyerStream, LimitActor, UNRESOLVED_RETRY_MS, WARM_RELOAD_AFTER_MS, type BuyerInspection, type HoldFate, type LimitDeps, type LimitMessage } from '../../actors/limit-actor.ts';
import type { ActorContext, Envelope } from '../../actors/runtime/index.ts';
import { WarmBuyers } from '../../actors/warm-buyers.ts';
import { compileRules, emptyBuyer, type BuyerOrderFacts } from '../../engine/index.ts';
import { StoreUnavailableError } from '../../persistence/errors.ts';
import { backends } from '../persistence/backends.ts';
import { send, testCommitter } from './limit-support.ts';

const T0 = Date.parse('2027-06-01T10:00:00Z');
const rules = compileRules([{ id: 'units-3', groupBy: ['skuId'], max: { units: 3 } }]);

/** Delivers a message no one waits for (a tell), as the runtime would. */
async function tell(actor: LimitActor, msg: LimitMessage): Promise<void> {
  const env = { msg, handle: null } as unknown as Envelope<LimitMessage>;
  await actor.receive([env], { key: 'buyer', reply: () => {}, fail: () => {} } as unknown as ActorContext<LimitMessage>);
}

function facts(i: number, qty = 1): BuyerOrderFacts {
  return { orderId: `w${String(i).padStart(3, '0')}`, skuId: 'wb-1', date: '2027-06-02', merchantId: 'm1', attributes: { venue: 'v' }, qty, createdAt: T0 + i };
}

describe('WarmBuyers', () => {
  const entry = (orders = 0) => {
    const state = emptyBuyer();
    for (let i = 0; i < orders; i++) state.orders.set(`o${i}`, { ...facts(i), status: 'held' });
    return { state, seq: orders, compactedSeq: 0, compactRetrySeq: 0, loadedAt: 0 };
  };

  it('gives an entry once, and none past its age', () => {
    let now = 0;
    const warm = new WarmBuyers(1 << 20, 1_000, () => now);
    const e = entry(1);
    warm.put('a', e);
    warm.put('b', entry(1));
    expect(warm.take('a')?.state).toBe(e.state);
    expect(warm.take('a')).toBeUndefined();
    now = 1_000;
    expect(warm.take('b')).toBeUndefined();
    expect([warm.size, warm.bytes]).toEqual([0, 0]);
  });

  it('keeps an entry at least half its age bound, gives none past the bound, and lets an aged generation go whole', () => {
    let now = 0;
    const warm = new WarmBuyers(1 << 20, 1_000, () => now);
    warm.put('a', entry(1));
    now = 499;
    warm.put('b', entry(1));
    now = 500;
    warm.put('c', entry(1)); // a new generation: a and b are the previous one
    expect(warm.size).toBe(3);
    now = 999;
    expect(warm.take('b')?.seq).toBe(1);
    now = 1_000; // the next generation: a's goes whole, c's is the previous one
    expect(warm.take('a')).toBeUndefined();
    expect(warm.take('c')).toBeDefined();
    expect([warm.size, warm.bytes]).toEqual([0, 0]);
    // Nothing put for a whole bound: neither generation is kept.
    warm.put('d', entry(1));
    now = 2_000;
    expect([warm.size, warm.bytes]).toEqual([0, 0]);
  });

  it('when full keeps what it has, drops what aged out first, and counts a replaced entry once', () => {
    let now = 0;
    const one = (() => {
      const w = new WarmBuyers(1 << 20, 10_000, () => now);
      w.put('u0', entry(1));
      return w.bytes;
    })();
    const warm = new WarmBuyers(3 * one, 10_000, () => now);
    for (const u of ['u1', 'u2', 'u3', 'u4']) warm.put(u, entry(1));
    expect(warm.size).toBe(3);
    expect(warm.take('u4')).toBeUndefined();
    warm.put('u1', entry(1));
    expect([warm.size, warm.bytes]).toEqual([3, 3 * one]);
    // u2 and u3 age out: the next buyer gets their room.
    now = 5_000;
    warm.put('u1', entry(1));
    now = 10_000;
    warm.put('u5', entry(1));
    expect(warm.take('u2')).toBeUndefined();
    expect(warm.take('u5')).toBeDefined();
    expect(warm.take('u1')).toBeDefined();
    // A state too large for the bound is not kept at all.
    warm.put('big', entry(50));
    expect(warm.take('big')).toBeUndefined();
  });
});

describe.each(backends)('a limit actor passivated on $name', (backend) => {
  let stores: Awaited<ReturnType<typeof backend.open>>;
  beforeAll(async () => {
    stores = await backend.open('limit_warm');
  });
  afterAll(async () => stores?.dispose());
  const committers: GroupCommitter[] = [];
  afterEach(() => {
    for (const c of committers.splice(0)) c.close();
  });

  /**
   * Deps on this backend's journal with a cache, counting the journal's reads of `stream` and the fates
   * asked (`fate` answers them; a function may throw), on a clock the test moves.
   */
  function world(stream: string, fate: HoldFate | (() => HoldFate) = 'reserved') {
    const committer = testCommitter(stores.journal);
    committers.push(committer);
    const seen = { reads: 0, fates: 0 };
    const clock = { now: T0 + 1_000 };
    const journal = Object.create(stores.journal) as typeof stores.journal;
    journal.readAfter = (s, after) => {
      if (s === stream) seen.reads++;
      return stores.journal.readAfter(s, after);
    };
    const warm = new WarmBuyers(1 << 20, 60_000);
    const fateOf = async () => (seen.fates++, typeof fate === 'function' ? fate() : fate);
    const deps: LimitDeps = { journal, committer, now: () => clock.now, rules: () => rules, warm, fateOf };
    return { deps, warm, seen, clock };
  }

  it('hands its state to its next incarnation, which reads no journal, asks no fate, and decides as the journal would', async () => {
    const { deps, warm, seen } = world(buyerStream('warm-1'));
    const first = new LimitActor('warm-1', deps);
    expect(await send(first, { type: 'hold', order: facts(1, 2) })).toEqual({ outcome: 'held', orderId: 'w001' });
    const before = (await send(first, { type: 'inspect' })) as BuyerInspection;
    first.stopped();
    expect(warm.size).toBe(1);
    const reads = seen.reads;
    const next = new LimitActor('warm-1', deps);
    expect(await send(next, { type: 'inspect' })).toEqual(before);
    expect([seen.reads - reads, seen.fates, warm.size]).toEqual([0, 0, 0]);
    // 2 units held of 3: one more passes, then none; the journal says the same to a cold load.
    expect(await send(next, { type: 'hold', order: facts(2) })).toEqual({ outcome: 'held', orderId: 'w002' });
    expect(await send(next, { type: 'hold', order: facts(3) })).toMatchObject({ outcome: 'limit_exceeded', ruleId: 'units-3' });
    const cold = (await send(new LimitActor('warm-1', { ...deps, warm: undefined }), { type: 'inspect' })) as BuyerInspection;
    expect(cold.holds).toEqual(((await send(next, { type: 'inspect' })) as BuyerInspection).holds);
    expect(cold.journalSeq).toBe(2);
  });

  it('leaves nothing with a release it had not journaled: the next incarnation loads the journal and settles its holds', async () => {
    const { deps, warm, seen } = world(buyerStream('warm-2'), 'unknown');
    const first = new LimitActor('warm-2', deps);
    expect(await send(first, { type: 'hold', order: facts(1) })).toEqual({ outcome: 'held', orderId: 'w001' });
    // Its order was refused (sold out): the saga's release (a tell) waits for the buyer's next write.
    await tell(first, { type: 'release', orderId: 'w001', reason: 'not_reserved' });
    first.stopped();
    expect(warm.size).toBe(0);
    const reads = seen.reads;
    const view = (await send(new LimitActor('warm-2', deps), { type: 'inspect' })) as BuyerInspection;
    expect(seen.reads - reads).toBe(1);
    // The journal has the hold only: asked about, never reserved, released.
    expect(seen.fates).toBe(1);
    expect(view.holds).toEqual([]);
  });

  it('is loaded from the journal again, its holds asked about, once its state was last loaded from it WARM_RELOAD_AFTER_MS ago', async () => {
    const { deps, warm, seen, clock } = world(buyerStream('warm-4'));
    const first = new LimitActor('warm-4', deps);
    expect(await send(first, { type: 'hold', order: facts(1) })).toEqual({ outcome: 'held', orderId: 'w001' });
    first.stopped();
    // Handed on once, inside the time: the second incarnation reads nothing and hands it on again.
    clock.now += WARM_RELOAD_AFTER_MS - 1;
    const second = new LimitActor('warm-4', deps);
    await send(second, { type: 'inspect' });
    expect([seen.reads, seen.fates]).toEqual([1, 0]);
    second.stopped();
    // Past it (counted from the first load, not from the hand-over): the journal, and the hold's fate.
    clock.now += 1;
    const third = (await send(new LimitActor('warm-4', deps), { type: 'inspect' })) as BuyerInspection;
    expect([seen.reads, seen.fates, warm.size]).toEqual([2, 1, 0]);
    expect(third.holds.map((o) => o.orderId)).toEqual(['w001']);
  });

  it('leaves nothing with a hold whose fate it could not learn: the next incarnation asks again', async () => {
    let down = true;
    const { deps, warm, seen } = world(buyerStream('warm-5'), () => {
      if (down) throw new Error('inventory wb-1/2027-06-02 could not recover');
      return 'ended';
    });
    await stores.journal.append([{ stream: buyerStream('warm-5'), seq: 1, lastSeq: 1, at: T0, events: [{ type: 'held', order: facts(1), at: T0 }] }]);
    const first = new LimitActor('warm-5', deps);
    expect(((await send(first, { type: 'inspect' })) as BuyerInspection).holds.map((o) => o.orderId)).toEqual(['w001']);
    first.stopped();
    expect(warm.size).toBe(0);
    down = false;
    const next = (await send(new LimitActor('warm-5', deps), { type: 'inspect' })) as BuyerInspection;
    expect([seen.reads, seen.fates]).toEqual([2, 2]);
    expect(next.holds).toEqual([]);
  });

  it('leaves nothing when stopped while a batch waits for its write', async () => {
    const { deps, warm } = world(buyerStream('warm-6'));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let writing!: () => void;
    const written = new Promise<void>((r) => (writing = r));
    const held = Object.create(deps.journal) as typeof deps.journal;
    held.append = async (records) => {
      writing();
      await gate;
      return deps.journal.append(records);
    };
    const committer = testCommitter(held);
    committers.push(committer);
    const first = new LimitActor('warm-6', { ...deps, journal: held, committer });
    const holding = send(first, { type: 'hold', order: facts(1) });
    try {
      // The hold is decided and applied, its write not durable.
      await written;
      first.stopped();
      expect(warm.size).toBe(0);
    } finally {
      release();
    }
    expect(await holding).toEqual({ outcome: 'held', orderId: 'w001' });
  });

  it('hands its state on once a hold whose late answer was still awaited is settled by another ask', async () => {
    let mode: 'down' | 'hang' | 'ended' = 'down';
    const { deps, warm, clock } = world(buyerStream('warm-7'), () => {
      if (mode === 'down') throw new Error('inventory wb-1/2027-06-02 could not recover');
      // A SKU/date that does not answer (yet): the ask stays pending.
      if (mode === 'hang') return new Promise<HoldFate>(() => {}) as unknown as HoldFate;
      return 'ended';
    });
    await stores.journal.append([{ stream: buyerStream('warm-7'), seq: 1, lastSeq: 1, at: T0, events: [{ type: 'held', order: facts(1), at: T0 }] }]);
    const first = new LimitActor('warm-7', deps);
    await send(first, { type: 'inspect' }); // the load: w001's fate unknown
    mode = 'hang';
    clock.now += UNRESOLVED_RETRY_MS;
    await send(first, { type: 'inspect' }); // asked again: the answer does not come in time, the ask stays pending
    mode = 'ended';
    expect(await send(first, { type: 'resolve', orderId: 'w001' })).toEqual({ outcome: 'resolved' });
    first.stopped();
    expect(warm.size).toBe(1);
    expect(((await send(new LimitActor('warm-7', deps), { type: 'inspect' })) as BuyerInspection).holds).toEqual([]);
  });

  it('leaves nothing after a failed write: the next incarnation loads the journal', async () => {
    const { deps, warm, seen } = world(buyerStream('warm-3'));
    const failing = Object.create(deps.journal) as typeof deps.journal;
    failing.append = async () => {
      throw new StoreUnavailableError('injected: the write failed');
    };
    const committer = testCommitter(failing);
    committers.push(committer);
    const first = new LimitActor('warm-3', { ...deps, journal: failing, committer });
    await expect(send(first, { type: 'hold', order: facts(1) })).rejects.toThrow();
    first.stopped();
    expect(warm.size).toBe(0);
    const reads = seen.reads;
    const view = (await send(new LimitActor('warm-3', deps), { type: 'inspect' })) as BuyerInspection;
    expect(seen.reads - reads).toBe(1);
    expect([view.holds, view.journalSeq]).toEqual([[], 0]);
  });
});
