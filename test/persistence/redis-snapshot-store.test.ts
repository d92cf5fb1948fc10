// Proves the Redis snapshot store is a safe accelerator: it round-trips and keeps the newest snapshot,
// reads a corrupt value as a miss (and drops it), discards one recovery found foreign, and answers quickly without throwing when Redis is unreachable or
// stops answering behind an open connection (its stuck connection dropped, nothing queued behind it),
// against the real Redis (its own db index 5 and a key prefix per run), a closed port, and a proxy to
// it that freezes.
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisSnapshotStore, redis_snapshot_ttl_ms } from '../../persistence/redis/redis-snapshot-store.ts';
import { REDIS_URL } from '../support/services.ts';

const url = `${REDIS_URL}/5`;
const prefix = `stampede:test:${randomUUID()}:`;

describe('Redis snapshots on a live Redis', () => {
  let store: RedisSnapshotStore;
  let raw: Redis;
  beforeAll(async () => {
    store = await RedisSnapshotStore.open(url, { keyPrefix: prefix });
    raw = new Redis(url);
  });
  afterAll(async () => {
    const keys = await raw.keys(`${prefix}*`);
    if (keys.length > 0) await raw.del(...keys);
    await raw.quit();
    await store?.close();
  });

  it('round-trips a snapshot and misses an unknown stream', async () => {
    const record = { stream: 'r:a', seq: 42, at: 1_700_000_000_000, state: { total: 10, holds: { u: ['o-1'] }, text: 'é "q" 🎫' } };
    await store.save(record);
    expect(await store.load('r:a')).toEqual(record);
    expect(await store.load('r:none')).toBeUndefined();
    expect(await store.ping()).toBe(true);
    expect(store.failures).toBe(0);
    // It expires unless saved again (a key per SKU/date ever sold would otherwise stay for ever).
    const ttl = await raw.pttl(`${prefix}r:a`);
    expect(ttl).toBeGreaterThan(redis_snapshot_ttl_ms - 60_000);
    expect(ttl).toBeLessThanOrEqual(redis_snapshot_ttl_ms);
  });

  it('counts a save Redis refuses (the key holds another type) as a failure, without throwing', async () => {
    const own = await RedisSnapshotStore.open(url, { keyPrefix: prefix });
    try {
      await raw.rpush(`${prefix}r:wrong`, 'x');
      await expect(own.save({ stream: 'r:wrong', seq: 1, at: 1, state: {} })).resolves.toBeUndefined();
      expect(own.failures).toBe(1);
      expect(await own.load('r:wrong')).toBeUndefined();
      expect(own.loadFailures).toBe(1);
    } finally {
      await raw.del(`${prefix}r:wrong`);
      await own.close();
    }
  });

  it('replaces a snapshot only with a newer one', async () => {
    await store.save({ stream: 'r:b', seq: 10, at: 1, state: { v: 10 } });
    await store.save({ stream: 'r:b', seq: 4, at: 2, state: { v: 4 } });
    await store.save({ stream: 'r:b', seq: 10, at: 3, state: { v: 'same' } });
    expect(await store.load('r:b')).toEqual({ stream: 'r:b', seq: 10, at: 1, state: { v: 10 } });
    await store.save({ stream: 'r:b', seq: 11, at: 4, state: { v: 11 } });
    expect(await store.load('r:b')).toEqual({ stream: 'r:b', seq: 11, at: 4, state: { v: 11 } });
  });

  it('reads a corrupt or tampered value as a miss, and lets a save replace it', async () => {
    await raw.set(`${prefix}r:c`, '{"stream":"r:c","seq":3,"at":1,"sta');
    expect(await store.load('r:c')).toBeUndefined();

    await store.save({ stream: 'r:d', seq: 3, at: 1, state: { total: 5 } });
    const stored = JSON.parse((await raw.get(`${prefix}r:d`)) as string);
    await raw.set(`${prefix}r:d`, JSON.stringify({ ...stored, state: { total: 500 } }));
    expect(await store.load('r:d')).toBeUndefined();

    await raw.set(`${prefix}r:e`, JSON.stringify({ ...stored }));
    expect(await store.load('r:e')).toBeUndefined(); // a value stored under another stream's key

    await store.save({ stream: 'r:c', seq: 1, at: 9, state: 'fresh' });
    expect(await store.load('r:c')).toEqual({ stream: 'r:c', seq: 1, at: 9, state: 'fresh' });
    // A tampered value with a high seq is dropped by the load that found it, so an older save lands
    // (kept, it refused every save until the stream's seq passed it).
    await raw.set(`${prefix}r:f`, JSON.stringify({ stream: 'r:f', seq: 1_000_000, at: 1, state: {}, check: 'tampered' }));
    expect(await store.load('r:f')).toBeUndefined();
    await store.save({ stream: 'r:f', seq: 5, at: 2, state: 'after' });
    expect(await store.load('r:f')).toEqual({ stream: 'r:f', seq: 5, at: 2, state: 'after' });
  });

  it('discards an intact snapshot recovery found not to be of its journal, only if it is still that one', async () => {
    await store.save({ stream: 'r:g', seq: 50, at: 7, state: 'other history' });
    await store.discard({ stream: 'r:g', seq: 50, at: 8 }); // another snapshot: kept
    await store.discard({ stream: 'r:g', seq: 49, at: 7 });
    expect((await store.load('r:g'))?.state).toBe('other history');
    await store.discard({ stream: 'r:g', seq: 50, at: 7 });
    expect(await store.load('r:g')).toBeUndefined();
    await store.save({ stream: 'r:g', seq: 3, at: 9, state: 'this journal' });
    expect((await store.load('r:g'))?.state).toBe('this journal');
    expect(store.failures).toBe(0);
  });
});

/**
 * What `p` settles to, asserting it settled at once: by the next turn of the event loop, before any
 * timer or socket event (a call that waited for a connection or its command timeout would not have).
 */
async function atOnce<T>(p: Promise<T>): Promise<T> {
  let settled = false;
  void p.then(() => (settled = true), () => (settled = true));
  await new Promise((resolve) => setImmediate(resolve));
  expect(settled, 'settled by the next turn of the event loop').toBe(true);
  return p;
}

describe('Redis snapshots when Redis is unreachable', () => {
  it('loads nothing, swallows and counts failed saves, and answers each at once', async () => {
    // Its own wait is bounded by the connect timeout (the test's timeout guards a hang).
    const store = await RedisSnapshotStore.open('redis://127.0.0.1:6390', { keyPrefix: prefix });
    try {
      expect(await atOnce(store.load('r:a'))).toBeUndefined();
      expect(await atOnce(store.save({ stream: 'r:a', seq: 1, at: 1, state: {} }))).toBeUndefined();
      expect(await atOnce(store.save({ stream: 'r:a', seq: 2, at: 1, state: {} }))).toBeUndefined();
      expect(await atOnce(store.ping())).toBe(false);
      expect(store.failures).toBe(2);
      expect(store.loadFailures).toBe(1);
    } finally {
      await store.close();
    }
  });
});

describe('Redis snapshots when Redis stops answering behind an open connection', () => {
  it('drops the stuck connection: later loads miss at once instead of queueing behind it', async () => {
    // A proxy to the real Redis that freezes: it keeps the connections open but passes nothing on
    // (a Redis SIGSTOPped or paused: the kernel still accepts and buffers).
    const target = new URL(REDIS_URL);
    let frozen = false;
    const sockets: net.Socket[] = [];
    const proxy = net.createServer((client) => {
      sockets.push(client);
      if (frozen) return client.pause();
      const upstream = net.connect(Number(target.port || 6379), target.hostname);
      sockets.push(upstream);
      client.on('data', (d) => (frozen ? client.pause() : upstream.write(d)));
      upstream.on('data', (d) => {
        if (!frozen) client.write(d);
      });
      client.on('error', () => {});
      upstream.on('error', () => {});
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', () => resolve()));
    const port = (proxy.address() as net.AddressInfo).port;
    const store = await RedisSnapshotStore.open(`redis://127.0.0.1:${port}/5`, { keyPrefix: prefix });
    try {
      await store.save({ stream: 'f:a', seq: 1, at: 1, state: {} });
      expect(await store.load('f:a')).toMatchObject({ seq: 1 });
      frozen = true;
      // The first load waits its command timeout; the connection is then dropped.
      expect(await store.load('f:a')).toBeUndefined();
      // Each later load misses at once (none waits its command timeout behind the stuck one).
      for (let i = 0; i < 20; i++) expect(await atOnce(store.load('f:a'))).toBeUndefined();
      // Nothing of the 20 is queued (at most the new connection's own ready check waits there).
      expect((store as unknown as { redis: { commandQueue: { length: number } } }).redis.commandQueue.length).toBeLessThanOrEqual(1);
    } finally {
      await store.close();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    }
  });
});

