// Whether the database takes durable writes, for /readyz (`databaseWrites`). A database can answer
// reads and still hold or refuse every write (read-only after a failover, a full disk, a lock held on a
// table): the engine then answers 503 to every command while a read ping says all is well.
//
// A journal commit that succeeded a moment ago is proof enough: under a sale's load nothing else is
// written, so a probe never competes with the purchase path for a pooled connection, and readiness
// does not flap because a probe waited behind the sale's writes. Idle, one small durable write (an
// upsert of the `write_probe` row, SqlDatabase.pingWrite) answers; every check asked meanwhile shares
// it. A failed probe is not made again for a while (5 s, doubling up to 20 s; "down" meanwhile): a
// write held by the database (a lock, a full disk) may go on waiting there after its client gave up
// on it, so probing every second would pile up such writes (and connections) on the server.
import { performance } from 'node:perf_hooks';
import { backoff_ms } from '../persistence/bus/waits.ts';

export interface WriteProbeOptions {
  /** A commit this recent is proof that writes go through. */
  evidence_ms: number;
  /** After a failed probe, the next waits this long (doubling after each failure, up to the max). */
  backoff_min_ms: number;
  backoff_max_ms: number;
}

export const WRITE_PROBE_DEFAULTS: WriteProbeOptions = { evidence_ms: 2_000, backoff_min_ms: 5_000, backoff_max_ms: 20_000 };

export class WriteProbe {
  private lastWrite = Number.NEGATIVE_INFINITY;
  private inFlight: Promise<boolean> | undefined;
  private failedUntil = Number.NEGATIVE_INFINITY;
  private failedAt = Number.NEGATIVE_INFINITY;
  /** Probes failed in a row (the wait after the last one grows with them). */
  private failures = 0;
  /** Probes made (tests). */
  probes = 0;

  constructor(
    private readonly probe: () => Promise<boolean>,
    private readonly options: WriteProbeOptions = WRITE_PROBE_DEFAULTS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * A durable write went through (a journal commit): proof for `evidence_ms`, and "up" for the rest of
   * a wait after a failed probe (the wait itself stays: commits a few seconds apart while only the
   * probe's own row is held must not bring a probe back after each of them).
   */
  written(): void {
    this.lastWrite = this.now();
  }

  /** A write failed in the database (refused, lost, timed out): earlier commits vouch no more. */
  failed(): void {
    this.lastWrite = Number.NEGATIVE_INFINITY;
  }

  /** True when writes go through: a recent commit, else a probe (shared; not repeated soon after a failure). */
  check(): Promise<boolean> {
    const now = this.now();
    if (now - this.lastWrite < this.options.evidence_ms) return Promise.resolve(true);
    if (this.inFlight) return this.inFlight;
    // Waiting after a failed probe: up if a commit went through since it failed (and not long ago),
    // down otherwise.
    if (now < this.failedUntil) return Promise.resolve(this.lastWrite > this.failedAt && now - this.lastWrite < this.options.backoff_min_ms);
    this.probes++;
    const probe = this.probe().then(
      (ok) => this.settle(ok),
      () => this.settle(false),
    );
    this.inFlight = probe;
    return probe;
  }

  private settle(ok: boolean): boolean {
    this.inFlight = undefined;
    if (ok) {
      this.lastWrite = this.now();
      this.failures = 0;
      this.failedUntil = Number.NEGATIVE_INFINITY;
    } else {
      this.failures++;
      this.failedAt = this.now();
      this.failedUntil = this.failedAt + backoff_ms(this.failures, this.options.backoff_min_ms, this.options.backoff_max_ms);
    }
    return ok;
  }
}
