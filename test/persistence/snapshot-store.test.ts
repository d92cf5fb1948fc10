// Proves the SQL snapshot store keeps only the newest snapshot of each stream, whatever the order of
// the saves, by saving out of order against the real MariaDB and SQLite.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from './backends.ts';

describe.each(backends)('SQL snapshots on $name', (backend) => {
  let stores: Awaited<ReturnType<typeof backend.open>>;
  beforeAll(async () => {
    stores = await backend.open('persist_snapshots');
  });
  afterAll(async () => {
    await stores?.dispose();
  });

  it('round-trips a snapshot and misses an unknown stream', async () => {
    const state = { total: 100, reserved: 3, holds: { 'u-1': ['o-1', 'o-2'] }, note: 'it\'s "quoted" 🎫' };
    await stores.snapshots.save({ stream: 'snap:a', seq: 7, at: 1_700_000_000_000, state });
    expect(await stores.snapshots.load('snap:a')).toEqual({ stream: 'snap:a', seq: 7, at: 1_700_000_000_000, state });
    expect(await stores.snapshots.load('snap:none')).toBeUndefined();
  });

  it('replaces a snapshot only with a newer one', async () => {
    await stores.snapshots.save({ stream: 'snap:b', seq: 10, at: 10, state: { v: 10 } });
    await stores.snapshots.save({ stream: 'snap:b', seq: 5, at: 50, state: { v: 5 } });
    await stores.snapshots.save({ stream: 'snap:b', seq: 10, at: 99, state: { v: 'same seq' } });
    expect(await stores.snapshots.load('snap:b')).toEqual({ stream: 'snap:b', seq: 10, at: 10, state: { v: 10 } });
    await stores.snapshots.save({ stream: 'snap:b', seq: 12, at: 12, state: { v: 12 } });
    expect(await stores.snapshots.load('snap:b')).toEqual({ stream: 'snap:b', seq: 12, at: 12, state: { v: 12 } });
  });
});
