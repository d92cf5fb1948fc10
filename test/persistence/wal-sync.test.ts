// Proves the embedded SQLite default stays durable without an fsync on the event loop: a journal
// append on a real SQLite file resolves only after an fdatasync of its WAL, the appends of one moment
// share syncs (fewer syncs than appends, never none), a sync with no WAL file left (the last
// connection closed, which checkpoints it) resolves, and one that cannot open the file rejects
// instead of claiming durability.
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../persistence/errors.ts';
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

  it('rejects when no WAL file is there while the connections are open (not the file SQLite writes), resolves once they closed, and rejects when the file cannot be opened', async () => {
    const absent = new WalSync(join(dir, 'absent.sqlite-wal'));
    await expect(absent.sync()).rejects.toMatchObject({ code: 'ENOENT' });
    absent.close();
    await expect(absent.sync()).resolves.toBeUndefined();
    await expect(new WalSync('/dev/null/not-a-dir.sqlite-wal').sync()).rejects.toMatchObject({ code: 'ENOTDIR' });
  });

  it('fails every later sync once one fsync failed (a later success would vouch for a WAL with a hole)', async () => {
    let failNext = true;
    const wal = new WalSync(stores.walSync!.walPath, async () => ({
      datasync: async () => {
        if (failNext) {
          failNext = false;
          throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
        }
      },
      close: async () => undefined,
    }));
    await expect(wal.sync()).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(wal.failed).toBe(true);
    // The disk answers again: still nothing is vouched for.
    await expect(wal.sync()).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(wal.syncs).toBe(0);
  });

  it('syncs the WAL of the file a symlinked database points at (SQLite writes it there)', async () => {
    mkdirSync(join(dir, 'real'));
    mkdirSync(join(dir, 'linked'));
    symlinkSync(join(dir, 'real', 'target.sqlite'), join(dir, 'linked', 'stampede.sqlite'));
    const linked = await openSqlStores({ sqlitePath: join(dir, 'linked', 'stampede.sqlite') });
    try {
      const wal = linked.walSync!;
      expect(wal.walPath).toBe(join(realpathSync(join(dir, 'real')), 'target.sqlite-wal'));
      const before = wal.syncs;
      await linked.journal.append([record('ws:linked', 1)]);
      expect(wal.syncs).toBeGreaterThan(before);
    } finally {
      await linked.close();
    }
  });

  it('shares one sync between callers that ask while it runs, and starts another after it for them', async () => {
    const wal = new WalSync(stores.walSync!.walPath);
    const calls = Array.from({ length: 50 }, () => wal.sync());
    await Promise.all(calls);
    // The first call starts a sync; the 49 that came while it ran share exactly one more.
    expect(wal.syncs).toBe(2);
  });

  it('syncs through one descriptor for the life of the stores (a write-back error is reported to the descriptors open when it happened), opening another only for a replaced file', async () => {
    const path = join(dir, 'kept.sqlite-wal');
    writeFileSync(path, 'frames');
    const wal = new WalSync(path);
    for (let i = 0; i < 5; i++) await wal.sync();
    expect([wal.syncs, wal.opened]).toEqual([5, 1]);
    // The file at the path replaced (another inode): its own descriptor from then on.
    rmSync(path);
    writeFileSync(path, 'new frames');
    await wal.sync();
    await wal.sync();
    expect([wal.syncs, wal.opened]).toEqual([7, 2]);
    wal.close();
  });

  it('fails every sync once the WAL was reported failed elsewhere (an I/O error the checkpointer met)', async () => {
    const wal = new WalSync(stores.walSync!.walPath);
    await wal.sync();
    wal.markFailed(Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR_FSYNC' }));
    expect(wal.failed).toBe(true);
    await expect(wal.sync()).rejects.toBeInstanceOf(StoreUnavailableError);
    wal.close();
  });
});
