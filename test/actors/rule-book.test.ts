// Proves the rule book puts the first rule in force only after the orders placed without rules were
// adopted, on the real MariaDB and SQLite rule stores: the saga is on (limitsActive) while no rule is
// in force yet; a failed adoption or store write fails the PUT and changes nothing (the next PUT adopts
// from the same time); deleting the last rule stores the time first, and takes it back when the delete
// fails (else the next start held every rule out of force); and an adoption left pending by
// an earlier run (rules stored, time not forgotten) holds the rules out of force at load until it ran,
// retried after a failure.
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ADOPTION_RETRY_MS, RuleBook } from '../../actors/rule-book.ts';
import type { Rule, RuleSet } from '../../engine/index.ts';
import type { RuleStore } from '../../persistence/ports.ts';
import { backends } from '../persistence/backends.ts';

const one: Rule = { id: 'one', groupBy: ['skuId'], max: { units: 1 } };
const two: Rule = { id: 'two', groupBy: ['date'], max: { units: 2 } };

/** The real store, with writes that fail on demand. */
function faulty(store: RuleStore) {
  const fail = { upsert: false, delete: false, setEmptySince: false, clearEmptySince: false };
  const wrapped: RuleStore = {
    upsert: (r) => (fail.upsert ? Promise.reject(new Error('upsert down')) : store.upsert(r)),
    delete: (id) => (fail.delete ? Promise.reject(new Error('delete down')) : store.delete(id)),
    get: (id) => store.get(id),
    all: () => store.all(),
    emptySince: () => store.emptySince(),
    setEmptySince: (at) => (fail.setEmptySince || (at === null && fail.clearEmptySince) ? Promise.reject(new Error('setEmptySince down')) : store.setEmptySince(at)),
  };
  return { store: wrapped, fail };
}

describe.each(backends)('the rule book on $name', (backend) => {
  let stores: Awaited<ReturnType<typeof backend.open>>;
  let now = 1_000_000;
  beforeAll(async () => {
    stores = await backend.open('rule_book');
  });
  afterAll(async () => stores?.dispose());
  afterEach(() => vi.useRealTimers());

  it('adopts before the first rule is in force; a failure changes nothing; the last delete stores its time first', async () => {
    const { store, fail } = faulty(stores.rules);
    const book = new RuleBook(store, () => now);
    await book.load();
    const calls: { since: number; rules: string[]; active: boolean; inForce: number }[] = [];
    let failAdoption = false;
    book.start(async (since, rules: RuleSet) => {
      calls.push({ since, rules: rules.rules.map((r) => r.rule.id), active: book.limitsActive(), inForce: book.current().rules.length });
      if (failAdoption) throw new Error('adoption failed');
    }, () => {});
    // A new database: empty since the beginning.
    expect(book.limitsActive()).toBe(false);

    failAdoption = true;
    await expect(book.put(one)).rejects.toThrow('adoption failed');
    expect([book.size, book.limitsActive(), book.current().rules.length, await stores.rules.all()]).toEqual([0, false, 0, []]);
    failAdoption = false;
    fail.upsert = true;
    await expect(book.put(one)).rejects.toThrow('upsert down');
    expect([book.size, book.limitsActive(), await stores.rules.all()]).toEqual([0, false, []]);
    fail.upsert = false;
    // The saga was on during each adoption, with no rule in force yet; each from the same time.
    expect(calls).toEqual([
      { since: -Infinity, rules: ['one'], active: true, inForce: 0 },
      { since: -Infinity, rules: ['one'], active: true, inForce: 0 },
    ]);

    expect((await book.put(one)).ok).toBe(true);
    expect([book.current().rules.length, book.limitsActive(), await stores.rules.emptySince()]).toEqual([1, true, null]);
    // A second rule needs no adoption.
    expect((await book.put(two)).ok).toBe(true);
    expect(calls).toHaveLength(3);

    // Not the last rule: no time stored. The last one: its time, before the delete.
    await book.delete('two');
    expect(await stores.rules.emptySince()).toBeNull();
    now = 2_000_000;
    fail.delete = true;
    await expect(book.delete('one')).rejects.toThrow('delete down');
    // The rule stays, and so does no time for an empty book: a start now finds the rule in force.
    expect([book.size, book.current().rules.length, await stores.rules.emptySince()]).toEqual([1, 1, null]);
    const restarted = new RuleBook(stores.rules, () => now);
    await restarted.load();
    expect([restarted.adoptionPending(), restarted.current().rules.map((r) => r.rule.id)]).toEqual([false, ['one']]);
    // Taking the time back failing too: the next write of a rule clears it.
    fail.clearEmptySince = true;
    await expect(book.delete('one')).rejects.toThrow('delete down');
    expect(await stores.rules.emptySince()).toBe(2_000_000);
    fail.clearEmptySince = false;
    fail.delete = false;
    expect((await book.put(one)).ok).toBe(true);
    expect([await stores.rules.emptySince(), calls.length]).toEqual([null, 3]);
    now = 3_000_000;
    expect(await book.delete('one')).toBe(true);
    expect([book.size, book.limitsActive(), await stores.rules.emptySince()]).toEqual([0, false, 3_000_000]);

    // The next first rule adopts from that time.
    now = 4_000_000;
    expect((await book.put(two)).ok).toBe(true);
    expect(calls[3]).toEqual({ since: 3_000_000, rules: ['two'], active: true, inForce: 0 });
    expect(await stores.rules.emptySince()).toBeNull();
    book.stop();
  });

  it('an adoption pending at load holds the stored rules out of force until it ran, retried after a failure', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    // As a crash between the rule's write and the book forgetting its empty time leaves the store.
    await stores.rules.setEmptySince(5_000_000);
    const book = new RuleBook(stores.rules, () => now);
    await book.load();
    expect([book.size, book.adoptionPending(), book.limitsActive(), book.current().rules.length]).toEqual([1, true, true, 0]);
    // The admin's list shows the stored rule all the same; the state says it waits.
    expect([book.list().map((r) => r.id), book.state()]).toEqual([['two'], { inForce: 0, pending: 1 }]);
    const errors: unknown[] = [];
    let attempts = 0;
    book.start(async (since) => {
      attempts++;
      expect(since).toBe(5_000_000);
      if (attempts === 1) throw new Error('database down');
    }, (error) => errors.push(error));
    await vi.waitFor(() => expect(errors).toHaveLength(1));
    expect([book.adoptionPending(), book.current().rules.length]).toEqual([true, 0]);
    await vi.advanceTimersByTimeAsync(ADOPTION_RETRY_MS);
    await vi.waitFor(() => expect(book.adoptionPending()).toBe(false));
    expect([attempts, book.current().rules.map((r) => r.rule.id)]).toEqual([2, ['two']]);
    // Forgotten in the store right after (a write the book does not make the rules wait for).
    await vi.waitFor(async () => expect(await stores.rules.emptySince()).toBeNull());
    book.stop();
  });
});
