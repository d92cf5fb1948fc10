// Card keys of a SKU on SQL, stored encrypted with a hash that dedupes uploads: adding the same key
// twice (in one upload or across uploads) stores it once, and `add` says how many were new.
import type { CardKeyStore } from '../ports.ts';
import type { SqlDatabase } from './database.ts';
import { chunks } from './dialect.ts';

/** Keys in one upload (the API's bound). */
export const card_keys_per_add_max = 10_000;

const hash_pattern = /^[0-9a-f]{64}$/;

export class SqlCardKeyStore implements CardKeyStore {
  constructor(private readonly db: SqlDatabase) {}

  async add(skuId: string, keys: readonly { hash: string; ciphertext: string }[]): Promise<number> {
    if (keys.length === 0) return 0;
    if (keys.length > card_keys_per_add_max) {
      throw new RangeError(`card keys: ${keys.length} keys in one add, at most ${card_keys_per_add_max}`);
    }
    for (const k of keys) {
      // The hash is the dedupe key (an HMAC-SHA256 in hex): anything else is a caller's mistake.
      if (!hash_pattern.test(k.hash)) throw new RangeError('card keys: a key hash is not 64 lowercase hex digits');
    }
    return this.db.transaction('cardKeys.add', async (trx) => {
      let added = 0;
      for (const part of chunks(keys)) {
        const sql = this.db.dialect.insertIgnore('card_keys', ['sku_id', 'key_hash', 'ciphertext'], part.length);
        const params = part.flatMap((k) => [skuId, k.hash, k.ciphertext]);
        added += (await this.db.run('cardKeys.add', sql, params, trx)).affectedRows;
      }
      return added;
    });
  }

  async count(skuId: string): Promise<number> {
    const rows = await this.db.all<{ n: number | string }>(
      'cardKeys.count',
      'SELECT COUNT(*) AS n FROM card_keys WHERE sku_id = ?',
      [skuId],
    );
    return Number(rows[0]?.n ?? 0);
  }
}
