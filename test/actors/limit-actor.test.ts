// Proves a limit actor settles the holds it loads by their orders' fates, on the real MariaDB and
// SQLite journals: a buyer journal with 40 holds (more than RESOLVE_ASKS_IN_FLIGHT) whose orders were
// paid, ended, never reserved or are still reserved loads into exactly the counted orders and holds
// those fates say, with at most RESOLVE_ASKS_IN_FLIGHT fates asked at once, the settlement journaled
// (a second load asks nothing and gives the same state); and a hold of the buyer decided right after
// the load sees only what still counts; a hold whose SKU/date cannot be asked stays held (it counts),
// the buyer is served (a hold only it could make refused is answered 503, not 403) and it is settled
// before the next decision once its SKU/date answers.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GroupCommitter } from '../../actors/group-commit.ts';
import { buyerStream, LimitActor, RESOLVE_ASKS_IN_FLIGHT, UNRESOLVED_RETRY_MS, type BuyerInspection, type HoldFate } from '../../actors/limit-actor.ts';
import { compileRules, type BuyerEvent, type BuyerOrderFacts } from '../../engine/index.ts';
import { backends } from '../persistence/backends.ts';
import { send, testCommitter } from './limit-support.ts';

const T0 = Date.parse('2027-06-01T10:00:00Z');
const FATES: HoldFate[] = ['paid', 'ended', 'unknown', 'reserved'];
const rules = compileRules([{ id: 'units-42', groupBy: ['skuId'], max: { units: 42 } }]);

function facts(i: number): BuyerOrderFacts {
  return { orderId: `o${String(i).padStart(3, '0')}`, skuId: 'la-1', date: '2027-06-02', merchantId: 'm1', attributes: {}, qty: 1, createdAt: T0 + i };
}

describe.each(backends)('limit actor loading on $name', (backend) => {
  let stores: Awaited<ReturnType<typeof backend.open>>;
  beforeAll(async () => {
    stores = await backend.open('limit_actor_load');
  });
  afterAll(async () => stores?.dispose());

  /** A limit actor's deps on this backend's journal, with the fates `fateOf` gives. */
  /** Every test's committers, closed after it whether it passed or not. */
  const committers: GroupCommitter[] = [];
  afterEach(() => {
    for (const c of committers.splice(0)) c.close();
  });
  function depsWith(fateOf: (orderId: string) => Promise<HoldFate>, now = () => T0 + 1_000) {
    const committer = testCommitter(stores.journal);
    committers.push(committer);
    return { deps: { journal: stores.journal, committer, now, rules: () => rules, fateOf } };
  }

  it('settles 40 loaded holds by their fates, a few at a time, journals it, and decides the next hold on what is left', async () => {
    const held: BuyerEvent[] = Array.from({ length: 40 }, (_, i) => ({ type: 'held', order: facts(i), at: T0 + i }));
    await stores.journal.append([{ stream: buyerStream('buyer'), seq: 1, lastSeq: 40, at: T0 + 40, events: held }]);
    let inFlight = 0;
    let maxInFlight = 0;
    const asked: string[] = [];
    const { deps } = depsWith(async (orderId: string): Promise<HoldFate> => {
      asked.push(orderId);
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      await new Promise((r) => setTimeout(r, 1));
      inFlight--;
      return FATES[Number(orderId.slice(1)) % FATES.length]!;
    });
    const fateOf = (i: number) => FATES[i % FATES.length];
    const idsWhere = (fate: HoldFate) => held.map((_, i) => i).filter((i) => fateOf(i) === fate).map((i) => facts(i).orderId);

    const view = (await send(new LimitActor('buyer', deps), { type: 'inspect' })) as BuyerInspection;
    expect(asked).toHaveLength(40);
    expect(maxInFlight).toBe(RESOLVE_ASKS_IN_FLIGHT);
    expect(view.counted.map((o) => o.orderId)).toEqual(idsWhere('paid'));
    expect(view.holds.map((o) => o.orderId)).toEqual(idsWhere('reserved'));

    // Journaled: a second actor loads the same state and asks only about what is still held.
    asked.length = 0;
    const again = new LimitActor('buyer', deps);
    const second = (await send(again, { type: 'inspect' })) as BuyerInspection;
    expect([second.counted, second.holds]).toEqual([view.counted, view.holds]);
    expect(asked.sort()).toEqual(idsWhere('reserved'));

    // 20 units count (10 paid, 10 reserved) of 42: 22 more pass, 23 do not.
    expect(await send(again, { type: 'hold', order: { ...facts(100), qty: 22 } })).toEqual({ outcome: 'held', orderId: 'o100' });
    expect(await send(again, { type: 'hold', order: facts(101) })).toMatchObject({ outcome: 'limit_exceeded', ruleId: 'units-42' });
  });
  it('loads a buyer whose held order\'s SKU/date cannot be asked: that hold stays, the buyer is served (503 where only it could refuse), and it is settled once the SKU/date answers', async () => {
    const stream = buyerStream('stuck-buyer');
    await stores.journal.append([{ stream, seq: 1, lastSeq: 2, at: T0, events: [{ type: 'held', order: { ...facts(1), skuId: 'down' }, at: T0 }, { type: 'held', order: facts(2), at: T0 }] }]);
    let down = true;
    let clock = T0 + 1_000;
    let asked = 0;
    // o001's SKU/date keeps failing its recovery; o002's order was paid; the others are reserved.
    const { deps } = depsWith(async (orderId: string): Promise<HoldFate> => {
      if (orderId === 'o001') asked++;
      if (orderId === 'o001' && down) throw new Error('inventory down/2027-06-02 could not recover');
      return orderId === 'o001' ? 'ended' : orderId === 'o002' ? 'paid' : 'reserved';
    }, () => clock);
    const actor = new LimitActor('stuck-buyer', deps);
    const view = (await send(actor, { type: 'inspect' })) as BuyerInspection;
    expect(view.holds.map((o) => o.orderId)).toEqual(['o001']);
    expect(view.counted.map((o) => o.orderId)).toEqual(['o002']);
    // 2 units count of 42: an order of another SKU/date is held.
    expect(await send(actor, { type: 'hold', order: { ...facts(3), qty: 40 } })).toEqual({ outcome: 'held', orderId: 'o003' });
    // A resolve of the unknown hold answers (it stays held), not a failure of the buyer's batch.
    expect(await send(actor, { type: 'resolve', orderId: 'o001' })).toEqual({ outcome: 'resolved' });
    // A refusal the unknown hold cannot have caused (another SKU's group: 41 + 42 > 42) is final: 403.
    expect(await send(actor, { type: 'hold', order: { ...facts(5), qty: 42 } })).toMatchObject({ outcome: 'limit_exceeded', ruleId: 'units-42' });
    // One the rules refuse only with the unknown hold counted: 503 (retry), not 403.
    const down42 = { ...facts(4), skuId: 'down', qty: 42 };
    await expect(send(actor, { type: 'hold', order: down42 })).rejects.toThrow(/could not be checked/);
    // Asked again at most every UNRESOLVED_RETRY_MS: a SKU/date that fails may take an ask's deadline.
    const before = asked;
    await expect(send(actor, { type: 'hold', order: down42 })).rejects.toThrow(/could not be checked/);
    expect(asked).toBe(before);
    // Once the SKU/date answers, the same actor settles it before a next decision: the hold passes.
    down = false;
    clock += UNRESOLVED_RETRY_MS;
    expect(await send(actor, { type: 'hold', order: down42 })).toEqual({ outcome: 'held', orderId: 'o004' });
    const later = (await send(new LimitActor('stuck-buyer', deps), { type: 'inspect' })) as BuyerInspection;
    expect(later.holds.map((o) => o.orderId).sort()).toEqual(['o003', 'o004']);
    expect(later.counted.map((o) => o.orderId)).toEqual(['o002']);
  });
  it('uses a slow SKU/date\'s late answer about an unresolved hold, asking it once, not once per retry', async () => {
    const stream = buyerStream('slow-buyer');
    await stores.journal.append([{ stream, seq: 1, lastSeq: 1, at: T0, events: [{ type: 'held', order: { ...facts(1), skuId: 'slow' }, at: T0 }] }]);
    let clock = T0 + 1_000;
    let asked = 0;
    let slow = false;
    // The slow SKU/date's answer comes when the test says: after the batch that asked has given up on it.
    let answer: (fate: HoldFate) => void = () => {};
    const answered = new Promise<HoldFate>((resolve) => (answer = resolve));
    const { deps } = depsWith(async (orderId: string): Promise<HoldFate> => {
      asked++;
      if (!slow) throw new Error('inventory slow/2027-06-02: mailbox full');
      return answered;
    }, () => clock);
    const actor = new LimitActor('slow-buyer', deps);
    await send(actor, { type: 'inspect' }); // the load: o001 unresolved
    slow = true;
    const slow42 = { ...facts(2), skuId: 'slow', qty: 42 };
    clock += UNRESOLVED_RETRY_MS;
    await expect(send(actor, { type: 'hold', order: slow42 })).rejects.toThrow(/could not be checked/);
    const afterFirstRetry = asked;
    // The answer comes in meanwhile (the actor takes it in a promise callback: one turn later it has it).
    answer('ended');
    await new Promise((resolve) => setImmediate(resolve));
    clock += UNRESOLVED_RETRY_MS;
    expect(await send(actor, { type: 'hold', order: slow42 })).toEqual({ outcome: 'held', orderId: 'o002' });
    expect(asked).toBe(afterFirstRetry);
  });
});
