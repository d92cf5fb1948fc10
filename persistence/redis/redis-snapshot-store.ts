// Snapshots in Redis: an accelerator in front of the SQL snapshots, never a source of truth. So it
// must never hang or fail the caller: every command is bounded, nothing queues while Redis is away,
// a miss, a corrupt value (detected by a sha256 over the record) or an unreachable Redis all read as
// "no snapshot here", and the caller falls back to SQL. Failed saves are swallowed and counted.
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import type { SnapshotRecord, SnapshotStore } from '../ports.ts';

/** Longest any Redis command may take before it counts as failed. */
export const redis_command_timeout_ms = 500;
/** Longest a (re)connection attempt may take. */
export const redis_connect_timeout_ms = 1_000;
/** Longest wait between reconnection attempts while Redis is down. */
export const redis_reconnect_delay_max_ms = 5_000;
/** A command that timed out drops the connection at most this often (see dropStuckConnection). */
export const redis_drop_interval_ms = 1_000;

export const default_snapshot_key_prefix = 'stampede:snap:';

/**
 * A snapshot left alone this long expires (each save sets it again): Redis only speeds up recovery,
 * and without an expiry the key of every SKU/date ever sold (and of every database instance ever
 * used with this Redis) stayed for ever, up to ~3 MB each, until Redis reached its maxmemory.
 */
export const redis_snapshot_ttl_ms = 7 * 24 * 3_600_000;

/**
 * Stores KEYS[1] = ARGV[1] (expiring after ARGV[3] ms) unless the stored snapshot has a seq >= ARGV[2].
 * A stored value that is not valid JSON is replaced (it is corrupt; load ignores it anyway); one that
 * parses but is not intact is deleted by the load that finds it, and an intact one of another history
 * by recovery (discard), so neither refuses newer saves for long. Returns 1 when written.
 */
const save_if_newer_lua = `
local current = redis.call('GET', KEYS[1])
if current then
  local ok, decoded = pcall(cjson.decode, current)
  if ok and type(decoded) == 'table' and tonumber(decoded.seq) and tonumber(decoded.seq) >= tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
`;

/** Deletes KEYS[1] if it still holds exactly ARGV[1] (a value load found corrupt). Returns 1 when deleted. */
const delete_if_same_lua = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`;

/** Deletes KEYS[1] if it still holds the snapshot of seq ARGV[1] written at ARGV[2] (see discard). */
const delete_if_snapshot_lua = `
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
local ok, decoded = pcall(cjson.decode, current)
if ok and type(decoded) == 'table' and tonumber(decoded.seq) == tonumber(ARGV[1]) and tonumber(decoded.at) == tonumber(ARGV[2]) then
  return redis.call('DEL', KEYS[1])
end
return 0
`;

export interface RedisSnapshotStoreOptions {
  /** Prefix of every key; the stream name follows it. */
  keyPrefix?: string;
}

interface StoredSnapshot {
  stream: unknown;
  seq: unknown;
  at: unknown;
  state: unknown;
  check: unknown;
}

export class RedisSnapshotStore implements SnapshotStore {
  /** Saves that failed (Redis down, slow or refusing); the snapshot is then only in SQL. */
  failures = 0;
  /** Loads that found Redis down or slow, or a corrupt value. */
  loadFailures = 0;
  private readonly redis: Redis;
  private readonly keyPrefix: string;

  constructor(url: string, options: RedisSnapshotStoreOptions = {}) {
    this.keyPrefix = options.keyPrefix ?? default_snapshot_key_prefix;
    this.redis = new Redis(url, {
      // Fail at once while disconnected instead of queueing behind a reconnect.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      // A command left unanswered on a dropped connection was failed to its caller by its timeout
      // already: not sent again once reconnected (ioredis would, by default).
      autoResendUnfulfilledCommands: false,
      commandTimeout: redis_command_timeout_ms,
      connectTimeout: redis_connect_timeout_ms,
      // Keep trying in the background, backing off, so the accelerator comes back by itself.
      retryStrategy: (attempt) => Math.min(attempt * 200, redis_reconnect_delay_max_ms),
    });
    // Connection errors are expected while Redis is down; they surface as failed commands.
    this.redis.on('error', () => {});
  }

  /** Connects and waits (at most redis_connect_timeout_ms) until Redis is ready; never rejects. */
  static async open(url: string, options: RedisSnapshotStoreOptions = {}): Promise<RedisSnapshotStore> {
    const store = new RedisSnapshotStore(url, options);
    await store.ready(redis_connect_timeout_ms);
    return store;
  }

  /**
   * True once connected and ready; false if not within `timeout_ms` or as soon as a connection attempt
   * fails (reconnection goes on in the background).
   */
  async ready(timeout_ms: number): Promise<boolean> {
    if (this.redis.status === 'ready') return true;
    return new Promise<boolean>((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.redis.off('ready', onReady);
        this.redis.off('error', onError);
        resolve(ok);
      };
      const onReady = () => done(true);
      const onError = () => done(false);
      const timer = setTimeout(() => done(false), timeout_ms);
      this.redis.on('ready', onReady);
      this.redis.on('error', onError);
    });
  }

  async save(record: SnapshotRecord): Promise<void> {
    try {
      const value = JSON.stringify({ ...body(record), check: checksum(record) });
      await this.redis.eval(save_if_newer_lua, 1, this.key(record.stream), value, String(record.seq), String(redis_snapshot_ttl_ms));
    } catch (error) {
      this.failures += 1;
      this.dropStuckConnection(error);
    }
  }

  async load(stream: string): Promise<SnapshotRecord | undefined> {
    let raw: string | null;
    try {
      raw = await this.redis.get(this.key(stream));
    } catch (error) {
      this.loadFailures += 1;
      this.dropStuckConnection(error);
      return undefined;
    }
    if (raw === null) return undefined;
    const record = verify(raw, stream);
    if (record === undefined) {
      this.loadFailures += 1;
      // Gone, so that the next save lands: kept, a value that parses with a high seq would refuse
      // every save until the stream's seq passed it.
      void this.evalQuietly(delete_if_same_lua, this.key(stream), raw);
    }
    return record;
  }

  /**
   * The stored snapshot was found not to be of this journal (recovery: no record of the journal ends
   * at its seq and time — a Redis kept while the database was restored from an older backup): it is
   * deleted if it is still that one, so that the next save lands instead of being refused as older.
   */
  async discard(record: Pick<SnapshotRecord, 'stream' | 'seq' | 'at'>): Promise<void> {
    await this.evalQuietly(delete_if_snapshot_lua, this.key(record.stream), String(record.seq), String(record.at));
  }

  /** A clean-up command: its failure is counted as a failed save, never thrown. */
  private async evalQuietly(script: string, key: string, ...args: string[]): Promise<void> {
    try {
      await this.redis.eval(script, 1, key, ...args);
    } catch (error) {
      this.failures += 1;
      this.dropStuckConnection(error);
    }
  }

  /** True when Redis answers a PING within the command timeout. */
  async ping(): Promise<boolean> {
    try {
      return (await this.redis.ping()) === 'PONG';
    } catch (error) {
      this.dropStuckConnection(error);
      return false;
    }
  }

  private droppedAt = 0;

  /**
   * A command that timed out on a connection that is still up means a Redis that stopped answering
   * (stopped, paused, stuck in a long fork or fsync) behind a TCP connection the kernel keeps open:
   * ioredis rejects the caller but keeps the command queued and its bytes buffered, so every later
   * command would queue behind it — memory growing with the traffic, and each load waiting its whole
   * timeout. The connection is dropped instead (what it had queued is not sent again:
   * autoResendUnfulfilledCommands is off) and made again in the background; until Redis answers a new one, commands fail at once (no offline queue) and callers
   * go to SQL without waiting.
   */
  private dropStuckConnection(error: unknown): void {
    if (!(error instanceof Error) || !/timed? ?out/i.test(error.message)) return;
    const now = Date.now();
    if (now - this.droppedAt < redis_drop_interval_ms) return;
    this.droppedAt = now;
    this.redis.disconnect(true);
  }

  async close(): Promise<void> {
    try {
      if (this.redis.status === 'ready') await this.redis.quit();
    } catch {
      // closing anyway
    } finally {
      this.redis.disconnect();
    }
  }

  private key(stream: string): string {
    return this.keyPrefix + stream;
  }
}

/** The record's fields in a fixed order: what the checksum covers. */
function body(r: { stream: unknown; seq: unknown; at: unknown; state: unknown }) {
  return { stream: r.stream, seq: r.seq, at: r.at, state: r.state };
}

function checksum(r: { stream: unknown; seq: unknown; at: unknown; state: unknown }): string {
  return createHash('sha256').update(JSON.stringify(body(r))).digest('hex');
}

/** The record stored for `stream`, or undefined when the value is not one intact (JSON round-trips exactly). */
function verify(raw: string, stream: string): SnapshotRecord | undefined {
  let parsed: StoredSnapshot;
  try {
    parsed = JSON.parse(raw) as StoredSnapshot;
  } catch {
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object') return undefined;
  if (parsed.stream !== stream || typeof parsed.seq !== 'number' || typeof parsed.at !== 'number') return undefined;
  if (parsed.check !== checksum(parsed)) return undefined;
  return { stream, seq: parsed.seq, at: parsed.at, state: parsed.state };
}
