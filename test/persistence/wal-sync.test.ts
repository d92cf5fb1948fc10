// Proves the embedded SQLite default stays durable without an fsync on the event loop: a journal
// append on a real SQLite file resolves only after an fdatasync of its WAL, the appends of one moment
// share syncs (fewer syncs than appends, never none), a sync with no WAL file left (the last
// connection closed, which checkpoints it) resolves, and one that cannot open the file rejects
// instead of claiming durability.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JournalRecord } from '../../persistence/ports.ts';
import { openSqlStores, type SqlStores } from '../../persistence/sql/open.ts';
import { WalSync } from '../../persistence/sql/wal-sync.ts';

const record = (stream: string, seq: number): JournalRecord => ({ stream, seq, lastSeq: seq, at: 1_000, events: [{ type: 'reserved', seq }] });

describe('WAL sync on the embedded SQLite default', () => {
  let dir: string;
  let stores: SqlStores;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'stampede-walsync-'));
    stores = await openSqlStores({ sqlitePath: join(dir, 'db', 'wal.sqlite') });
  });
  afterAll(async () => {
    await stores?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('resolves a journal append only after its WAL was synced, sharing syncs between appends of one moment', async () => {
    const wal = stores.walSync!;
    expect(wal.walPath).toBe(join(dir, 'db', 'wal.sqlite-wal'));
    const before = wal.syncs;
    await stores.journal.append([record('ws:one', 1)]);
    expect(wal.syncs).toBeGreaterThan(before);

    const start = wal.syncs;
    await Promise.all(Array.from({ length: 200 }, (_, i) => stores.journal.append([record(`ws:s${i}`, 1)])));
    const used = wal.syncs - start;
    expect(used).toBeGreaterThanOrEqual(1);
    expect(used).toBeLessThan(200);
    expect(await stores.journal.readAfter('ws:s199', 0)).toEqual([record('ws:s199', 1)]);
  });

  it('resolves when no WAL file is left, and rejects when the file cannot be opened', async () => {
    await expect(new WalSync(join(dir, 'absent.sqlite-wal')).sync()).resolves.toBeUndefined();
    await expect(new WalSync('/dev/null/not-a-dir.sqlite-wal').sync()).rejects.toMatchObject({ code: 'ENOTDIR' });
  });

  it('shares one sync between callers that ask while it runs, and starts another after it for them', async () => {
    const wal = new WalSync(stores.walSync!.walPath);
    const calls = Array.from({ length: 50 }, () => wal.sync());
    await Promise.all(calls);
    // The first call starts a sync; the 49 that came while it ran share exactly one more.
    expect(wal.syncs).toBe(2);
  });
});
