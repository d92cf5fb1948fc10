// Proves keyed refusals are made durable in batches on the real stores (a SQLite file and MariaDB):
// the refusals handed over in one turn go in one write, each caller hears only once its row is
// stored, a key's unexpired first answer is never replaced, and a failed write fails its callers.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RefusalAnswers } from '../../actors/refusal-answers.ts';
import type { IdempotencyRow, ProjectionStore } from '../../persistence/ports.ts';
import { openSqlStores, type SqlStores } from '../../persistence/sql/open.ts';
import { freshMysqlDatabase } from '../support/services.ts';

const T0 = Date.parse('2026-12-05T10:00:00Z');
const row = (key: string, status = 409, createdAt = T0): IdempotencyRow => ({
  userId: 'bot',
  key,
  requestHash: `hash-${key}`,
  status,
  body: { error: status === 404 ? 'not_found' : 'not_on_sale', message: `refused ${key}` },
  createdAt,
});

/** The store, counting its saveAnswers calls. */
function counted(store: ProjectionStore): { store: Pick<ProjectionStore, 'saveAnswers'>; writes: number[] } {
  const writes: number[] = [];
  return {
    writes,
    store: {
      saveAnswers: (rows) => {
        writes.push(rows.length);
        return store.saveAnswers(rows);
      },
    },
  };
}

describe.each(['sqlite', 'mysql'] as const)('refusal answers on %s', (kind) => {
  const dir = mkdtempSync(join(tmpdir(), 'stampede-refusals-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function withStores<T>(work: (stores: SqlStores) => Promise<T>): Promise<T> {
    const stores = kind === 'sqlite' ? await openSqlStores({ sqlitePath: join(dir, 'engine.sqlite') }) : await openSqlStores({ mysqlUrl: await freshMysqlDatabase('refusal_answers') });
    try {
      return await work(stores);
    } finally {
      await stores.close();
    }
  }

  it('writes the refusals of one turn together, answers once stored, and keeps a key\'s first answer', async () => {
    await withStores(async (stores) => {
      const { store, writes } = counted(stores.projection);
      const answers = new RefusalAnswers(store);
      await Promise.all(Array.from({ length: 50 }, (_, i) => answers.remember(row(`k${i}`))));
      expect(writes).toEqual([50]);
      expect(await stores.projection.idempotency('bot', 'k7')).toEqual(row('k7'));
      // The same key again within its 24 h (another answer): the first one stands.
      await answers.remember(row('k7', 404, T0 + 60_000));
      expect(await stores.projection.idempotency('bot', 'k7')).toEqual(row('k7'));
      // After its 24 h the key's new first answer replaces it.
      const later = row('k7', 404, T0 + 24 * 3_600_000);
      await answers.remember(later);
      expect(await stores.projection.idempotency('bot', 'k7')).toEqual(later);
    });
  });

  it('fails every caller of a failed write, and writes the next ones', async () => {
    await withStores(async (stores) => {
      let fail = true;
      const answers = new RefusalAnswers({
        saveAnswers: (rows) => (fail ? Promise.reject(new Error('database down')) : stores.projection.saveAnswers(rows)),
      });
      const failed = await Promise.allSettled([answers.remember(row('f1')), answers.remember(row('f2'))]);
      expect(failed.map((r) => r.status)).toEqual(['rejected', 'rejected']);
      expect(await stores.projection.idempotency('bot', 'f1')).toBeUndefined();
      fail = false;
      await answers.remember(row('f1'));
      expect(await stores.projection.idempotency('bot', 'f1')).toEqual(row('f1'));
    });
  });
});
