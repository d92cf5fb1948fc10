// Proves card keys are deduplicated per SKU by their hash and that add() counts only the new ones,
// by uploading overlapping batches to the real MariaDB and SQLite.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from './backends.ts';

const key = (plain: string) => ({ hash: createHash('sha256').update(plain).digest('hex'), ciphertext: `enc(${plain})` });

describe.each(backends)('card keys on $name', (backend) => {
  let stores: Awaited<ReturnType<typeof backend.open>>;
  beforeAll(async () => {
    stores = await backend.open('persist_card_keys');
  });
  afterAll(async () => {
    await stores?.dispose();
  });

  it('stores each key of a SKU once and counts what was new', async () => {
    expect(await stores.cardKeys.add('game', [key('A'), key('B'), key('A')])).toBe(2);
    expect(await stores.cardKeys.add('game', [key('B'), key('C')])).toBe(1);
    expect(await stores.cardKeys.add('game', [key('A'), key('B'), key('C')])).toBe(0);
    expect(await stores.cardKeys.add('game', [])).toBe(0);
    expect(await stores.cardKeys.count('game')).toBe(3);
  });

  it('keeps the same key apart for different SKUs', async () => {
    expect(await stores.cardKeys.add('other-game', [key('A')])).toBe(1);
    expect(await stores.cardKeys.count('other-game')).toBe(1);
    expect(await stores.cardKeys.count('no-such-sku')).toBe(0);
  });

  it('adds a large upload in bounded statements', async () => {
    const keys = Array.from({ length: 1_234 }, (_, i) => key(`bulk-${i}`));
    expect(await stores.cardKeys.add('bulk', keys)).toBe(1_234);
    expect(await stores.cardKeys.add('bulk', [...keys.slice(0, 600), key('bulk-new')])).toBe(1);
    expect(await stores.cardKeys.count('bulk')).toBe(1_235);
  });

  it('refuses a malformed hash before writing anything', async () => {
    await expect(stores.cardKeys.add('bad', [key('x'), { hash: 'short', ciphertext: 'c' }])).rejects.toThrow(RangeError);
    expect(await stores.cardKeys.count('bad')).toBe(0);
  });
});
