// One actor per SKU/date. It sequences commands through the pure ledger (engine/inventory.ts),
// makes their events durable by group commit, and replies only once they are. While one journal
// write of this stream is in flight, the events of the commands decided meanwhile gather into the
// next one. A failed write fails every command waiting on it and discards this incarnation, so the
// next message recovers from durable state. Settled orders are kept in memory until the projector
// has written them, so a read never finds an order older than what it was told.

import {
  available,
  decide,
  evolve,
  toSnapshot,
  type InventoryCommand,
  type InventoryEvent,
  type InventoryReply,
  type InventorySnapshot,
  type InventoryState,
  type OrderFacts,
  type ReleaseReason,
} from '../engine/index.ts';
import { IDEMPOTENCY_ANSWER_MS, type IdempotencyRow, type JournalRecord, type JournalStore, type LiveEvents, type OutboxEvent, type SnapshotStore } from '../persistence/ports.ts';
import { JournalConflictError } from '../persistence/errors.ts';
import { UnavailableError } from './errors.ts';
import type { InDoubtStreams } from './in-doubt-streams.ts';
import { encodeEvent, type EncodedEvent } from './inventory-codec.ts';
import type { GroupCommitter, WithRecords } from './group-commit.ts';
import { asStreamOrder, outboxKindOf, projectEvent, type ProjectedEvent, type StreamContext } from './inventory-projection.ts';
import { outboxRangeRow, outboxRangeRows, rangeEvents } from './journal-outbox.ts';
import type { Projector } from './projector.ts';
import { recoverInventory, type RecoveredInventory } from './recovery.ts';
import { AgedMap } from '../engine/aged-map.ts';
import { splitStream } from '../engine/shard.ts';
import type { ActorContext, Behavior, Envelope } from './runtime/index.ts';
import type { Semaphore } from './semaphore.ts';

export interface InventoryLimits {
  /** Events decided but not yet handed to a write, per actor; past it a command is refused as overloaded. */
  pending_events_max: number;
  snapshot_every_events: number;
  snapshot_every_ms: number;
  /**
   * A snapshot holds every live reservation; past this many it is not taken (recovery replays the
   * journal from the previous one instead), so a snapshot stays one bounded row.
   */
  snapshot_reservations_max: number;
  /** Reservations released by one expiry pass at most. */
  expire_batch_max: number;
  /** Expiry passes are at least this far apart. */
  expiry_delay_min_ms: number;
  /** The expiry timer looks again at least this often (an injected clock may jump). */
  expiry_check_ms_max: number;
}

/**
 * How long a SKU/date still answers an Idempotency-Key itself after the read model took the answer in:
 * far past a durable-answer lookup's latency, which a retry's lookup may have missed it by.
 */
export const IDEMPOTENCY_AFTER_PROJECTION_MS = 10_000;

export interface InventoryObserver {
  reservation(outcome: string): void;
  recovered(stream: string, ms: number, source: string, events: number): void;
  snapshotFailed(store: string, error: unknown): void;
  /** The live available count after each durable change (feeds the storefront's cache). */
  availability(stream: string, available: number): void;
  /** A reservation whose usage a limit actor holds ended (cancelled or expired), durably. */
  limitedReleased(userId: string, orderId: string, reason: ReleaseReason): void;
  /** A reservation whose usage a limit actor holds was sold, durably (the buyer's hold now counts for good). */
  limitedSold(userId: string, orderId: string): void;
  /** Such a reservation's release or sale was in a write that failed: whether it ended is not known here. */
  limitedInDoubt(userId: string, orderId: string): void;
  /**
   * This incarnation was discarded (a failed write, a crash) holding work that no request may come
   * for: live reservations whose expiry timer went with it, changes in doubt. The SKU/date must be
   * woken (`$wake`) to recover and carry on, even if no buyer asks.
   */
  discardedWithWork(stream: string): void;
  /** A recovery failed (the caller was told 503); a SKU/date being woken for its work is woken again later. */
  recoveryFailed(stream: string): void;
  /** A write of this SKU/date was durable. */
  committed(stream: string): void;
  /**
   * Recovered holding no live reservation: nothing of it can wait for a wake any more (its next
   * write may never come; a SKU/date being woken for its work is done).
   */
  recoveredIdle(stream: string): void;
}

export interface InventoryDeps {
  journal: JournalStore;
  snapshots: readonly { name: string; store: SnapshotStore }[];
  committer: GroupCommitter;
  projector: Projector;
  /** Publishes a durable write's events at once, ahead of the relay (with NATS). */
  live?: LiveEvents | undefined;
  recoveries: Semaphore;
  /**
   * SKU/dates whose journal may still take a write of unknown outcome (an earlier incarnation's that
   * failed on a deadline or a lost connection; after a start on MySQL, the previous process's). Their
   * next incarnation fences the journal before it serves anything (see the `fenced` event); shared by
   * every incarnation of the kind.
   */
  inDoubt: InDoubtStreams;
  /**
   * Reservations made without an Idempotency-Key in a write whose outcome is unknown, by SKU/date:
   * their callers were told the request failed (503), and no retry can name them. The next
   * incarnation cancels those its recovered journal holds (see cancelUnanswered); shared by every
   * incarnation of the kind.
   */
  unanswered: Map<string, { orderId: string; userId: string }[]>;
  now: () => number;
  /** The SKU's merchant, naming the subject of its events. */
  merchantOf: (skuId: string) => string;
  limits: InventoryLimits;
  observer: InventoryObserver;
}

export type InventoryMessage =
  | InventoryCommand
  /**
   * confirm_sold, and if it sells, `record` (the order stream's `paid`) is written in the same
   * transaction as the `sold` event: the payment's answer waits for one commit instead of two. If a
   * record of that write was refused for a taken seq (a stale order actor), the write is made again
   * without the records, and a `sold` answer says `unrecorded`: the order writes its `paid` itself.
   */
  | { type: 'sell'; orderId: string; paymentId: string; record: JournalRecord }
  | { type: 'inspect' }
  /** Recover (if not in memory) and do nothing else: brings back a SKU/date discarded with work. */
  | { type: '$wake' }
  | { type: 'get_order'; orderId: string }
  /**
   * The answer this SKU/date decided for an Idempotency-Key and not yet handed to the read model
   * (replay, or idempotency_key_reused for another request's hash), once durable; `unknown` if none.
   * Decides nothing (unlike a reserve probe, which records a sold-out refusal for the key).
   */
  | { type: 'idempotency_answer'; userId: string; key: string; hash: string }
  /** Ops listing: the live reservations and the settled orders not yet in the read model, by id. */
  | { type: 'list_orders'; afterOrderId: string; limit: number }
  /** `withRecords` 'refused': the sells' records were not written (see `sell`). */
  | { type: '$committed'; withRecords?: WithRecords }
  | { type: '$commit_failed'; error: unknown }
  | { type: '$projected'; seq: number }
  | { type: '$expire' };

/** What `inspect` answers (ops). */
export interface InventoryInspection {
  total: number;
  reserved: number;
  sold: number;
  /**
   * Sold units as of `journalSeq` (the durable journal): `sold` less what decisions still being
   * written sold. What the read model can hold once `projectedSeq` reaches `journalSeq`.
   */
  durableSold: number;
  available: number;
  journalSeq: number;
  snapshotSeq: number;
  projectedSeq: number;
  liveReservations: number;
  pendingEvents: number;
  writeInFlight: boolean;
  /** The earliest expiry among live reservations (null if none): reconciliation checks it is not long past. */
  oldestExpiresAt: number | null;
}

/** An order as this actor knows it: live, or settled and not yet in the read model. */
export interface LiveOrder extends OrderFacts {
  userId: string;
  /** The payment that paid a sold order. */
  paymentId?: string | null;
  /** When it was settled (settled orders only). */
  updatedAt?: number;
  /**
   * A live reservation made by this incarnation of the actor, after its recovery: nothing about the
   * order can have been journaled before this incarnation began (see OrderService.freshReservation).
   */
  fresh?: true;
}

/** The reply of a command that carried an idempotency key already answered but not yet projected. */
export type ReplayReply = { outcome: 'replay'; idempotency: IdempotencyRow } | { outcome: 'idempotency_key_reused' };

interface Waiter {
  env: Envelope<InventoryMessage>;
  reply: unknown;
}

interface Batch {
  events: unknown[];
  /** Records of other streams written with this batch (see `sell`). */
  attached: JournalRecord[];
  /**
   * Limited reservations this batch releases or sells (`sold`): their buyers' limit actors hear of it
   * once durable — from here, not from the asker, whose ask may have timed out while the write still
   * committed (a sale's buyer then kept a paid order as a hold until its next load).
   */
  limitedSettled: { userId: string; orderId: string; reason: ReleaseReason | 'sold' }[];
  /** Cancels of this actor's own (cancelUnanswered): told again to the next incarnation if this batch fails. */
  ownCancels: { orderId: string; userId: string }[];
  /** OUTBOX_KIND bits of the batch's events (which ones the outside world hears of). */
  kinds: number;
  projected: ProjectedEvent[];
  waiters: Waiter[];
  firstSeq: number;
  /** Live reservations once this batch is applied (set when it is sealed). */
  liveAfter: number;
  /** Units available once this batch is applied (set when it is sealed): what its commit makes durable. */
  availableAfter: number;
}

interface Settled {
  order: LiveOrder;
  seq: number;
}

export class InventoryActor implements Behavior<InventoryMessage> {
  private phase: 'new' | 'recovering' | 'ready' = 'new';
  private state!: InventoryState;
  /** Last seq decided (speculative: may not be durable yet). */
  private seq = 0;
  private durableSeq = 0;
  private projectedSeq = 0;
  private snapshotSeq = 0;
  private lastSnapshotAt = 0;
  /** The state at `seq`, the end of the record written at `at`; saved once durable and projected. */
  private snapshotCandidate: { seq: number; at: number; state: InventorySnapshot; durable: boolean } | undefined;
  private pending: Batch = { events: [], attached: [], limitedSettled: [], ownCancels: [], kinds: 0, projected: [], waiters: [], firstSeq: 1, liveAfter: 0, availableAfter: 0 };
  private inFlight: Batch | undefined;
  private readonly settled = new Map<string, Settled>();
  /** Keyless reservations whose callers were answered 503, to cancel as the pending bound allows (cancelUnanswered). */
  private readonly toCancel: { orderId: string; userId: string }[] = [];
  /** Where the cancels not decided yet begin in `toCancel` (a queue: taken from the head). */
  private toCancelHead = 0;
  /** The orders in `toCancel` from its head, each with how many times it is there. */
  private readonly toCancelIds = new Map<string, number>();
  /** Asks about an order in `toCancel` (get_order): handled once its cancel is decided, answered once durable. */
  private readonly awaitingCancel = new Map<string, Envelope<InventoryMessage>[]>();
  private readonly unprojectedIdempotency = new Map<string, { row: IdempotencyRow; seq: number }>();
  /**
   * Answers of keys the read model took in lately, each kept IDEMPOTENCY_AFTER_PROJECTION_MS after it
   * did: a retry whose durable-answer lookup missed the row by a read's latency still gets its answer
   * here. Aged by generations, never walked (engine/aged-map.ts: a Map trimmed from its start walked
   * past every key trimmed since its table was last rebuilt, on every projection).
   */
  private readonly projectedIdempotency = new AgedMap<string, IdempotencyRow>(IDEMPOTENCY_AFTER_PROJECTION_MS);
  /** Reservations created after this time were made by this incarnation's decisions (set at recovery). */
  private freshAfter = Infinity;
  private cancelExpiry: (() => void) | undefined;
  private expiryAt = Infinity;
  private readonly skuId: string;
  private readonly date: string;
  private readonly context: StreamContext;

  constructor(
    private readonly stream: string,
    private readonly deps: InventoryDeps,
  ) {
    [this.skuId, this.date] = splitStream(stream);
    this.context = { stream, skuId: this.skuId, date: this.date, merchantId: deps.merchantOf(this.skuId) };
  }

  /** Restarted (ctx.restart): the rest of the batch being received is not handled, nothing is written. */
  private discarded = false;
  /** The write in flight was refused for its seq (a definite failure: it committed nothing, no fence needed). */
  private writeRefused = false;

  canPassivate(): boolean {
    // Never received a batch (every ask that woke it ran out of time before it was handed over, e.g.
    // behind a long turn of the event loop): nothing recovered, nothing held. Kept, it would stay in
    // memory for ever, and count as live to the lookups of order ids the read model lacks.
    if (this.phase === 'new') return true;
    return (
      this.phase === 'ready' &&
      this.inFlight === undefined &&
      this.pending.events.length === 0 &&
      this.state.reservations.size === 0 &&
      this.toCancelIds.size === 0 &&
      this.settled.size === 0 &&
      this.unprojectedIdempotency.size === 0 &&
      this.snapshotCandidate === undefined
    );
  }

  stopped(): void {
    this.cancelExpiry?.();
    // Passivation never reaches here with work (canPassivate); a shutdown's wake is ignored.
    // Also with settled orders or answers not yet in the read model: until it recovers (and hands
    // them over again), only a SKU/date being woken is asked about orders the read model lacks.
    if (
      this.phase === 'ready' &&
      (this.state.reservations.size > 0 || this.inFlight !== undefined || this.pending.events.length > 0 || this.settled.size > 0 || this.unprojectedIdempotency.size > 0)
    ) {
      this.deps.observer.discardedWithWork(this.stream);
    }
    // Discarded with a write in flight (failed, or a crash meanwhile): it may have committed, or still
    // commit, and its `$committed` will not reach a discarded incarnation, so the releases of limited
    // reservations it holds are in doubt. Their buyers' limit actors settle those holds now by what the
    // recovered SKU/date says, rather than at their next load.
    for (const r of this.inFlight?.limitedSettled ?? []) this.deps.observer.limitedInDoubt(r.userId, r.orderId);
    // ... and the next incarnation fences the journal before it answers anything (see recoverFenced),
    // then cancels the keyless reservations of that write if it did commit: their callers were failed.
    if (this.inFlight !== undefined && !this.writeRefused) {
      this.deps.inDoubt.add(this.stream);
      const keyless = InventoryActor.keyless(this.inFlight.waiters);
      if (keyless.length > 0) this.rememberToCancel(keyless);
    }
    // Its own cancels not known to be durable are the next incarnation's to make (a second cancel of
    // one that did commit finds nothing to cancel).
    const cancels = [...(this.inFlight?.ownCancels ?? []), ...this.pending.ownCancels, ...this.toCancel.slice(this.toCancelHead)];
    if (cancels.length > 0) this.rememberToCancel(cancels);
  }

  /**
   * The reservations among `waiters` that no one can ever name: made without an Idempotency-Key (a
   * keyed retry gets its order back instead), their callers told the request failed.
   */
  private static keyless(waiters: readonly Waiter[]): { orderId: string; userId: string }[] {
    const found: { orderId: string; userId: string }[] = [];
    for (const w of waiters) {
      const msg = w.env.msg;
      const reply = w.reply as InventoryReply;
      if (msg.type === 'reserve' && msg.idempotency === undefined && reply.outcome === 'reserved') {
        found.push({ orderId: reply.reservation.orderId, userId: reply.reservation.userId });
      }
    }
    return found;
  }

  /** For the next incarnation to cancel after its recovery (deps.unanswered). */
  private rememberToCancel(orders: { orderId: string; userId: string }[]): void {
    const known = this.deps.unanswered.get(this.stream);
    if (known) known.push(...orders);
    else this.deps.unanswered.set(this.stream, orders);
  }

  /**
   * After a recovery: the keyless reservations of an earlier incarnation's write whose outcome was
   * unknown (their callers were told 503) are cancelled if that write did commit (the fence made the
   * recovered journal final about it) — held, they would keep stock from the sale and count against
   * their buyers' purchase rules until they expired, for orders no buyer ever heard of. Also a
   * reservation whose caller's ask ran out of time before its write committed (onCommitted).
   */
  private cancelUnanswered(orders: readonly { orderId: string; userId: string }[], ctx: ActorContext<InventoryMessage>): void {
    for (const o of orders) this.queueCancel(o);
    this.cancelSome(ctx);
  }

  private queueCancel(o: { orderId: string; userId: string }): void {
    this.toCancel.push(o);
    this.toCancelIds.set(o.orderId, (this.toCancelIds.get(o.orderId) ?? 0) + 1);
  }

  /** Whether the order waits in `toCancel` (its cancel not decided yet: no room under the pending bound). */
  private cancelWaiting(orderId: string): boolean {
    return this.toCancelIds.has(orderId);
  }

  /**
   * Decides the cancels waiting in `toCancel` while the next write has room under the pending bound
   * (the rest wait for the writes after it: no write may hold more than one INSERT takes).
   */
  private cancelSome(ctx: ActorContext<InventoryMessage>): void {
    const room = this.deps.limits.pending_events_max;
    while (this.toCancelHead < this.toCancel.length && this.pending.events.length < room) {
      const o = this.toCancel[this.toCancelHead++]!;
      if (this.toCancelHead === this.toCancel.length) {
        this.toCancel.length = 0;
        this.toCancelHead = 0;
      }
      const n = this.toCancelIds.get(o.orderId) ?? 1;
      if (n > 1) this.toCancelIds.set(o.orderId, n - 1);
      else this.toCancelIds.delete(o.orderId);
      if (this.state.reservations.get(o.orderId)?.userId === o.userId) {
        this.apply(undefined, { type: 'cancel', orderId: o.orderId, userId: o.userId }, ctx);
        this.pending.ownCancels.push(o);
      }
      const asks = this.awaitingCancel.get(o.orderId);
      if (asks && !this.cancelWaiting(o.orderId)) {
        this.awaitingCancel.delete(o.orderId);
        for (const env of asks) this.handle(env, ctx);
      }
    }
  }

  receive(batch: Envelope<InventoryMessage>[], ctx: ActorContext<InventoryMessage>): void | Promise<void> {
    if (this.phase === 'new') return this.recoverThenReceive(batch, ctx);
    for (const env of batch) {
      // Restarted by a message before this one (a failed write): this incarnation is discarded, its
      // state may hold decisions that are not durable (a cancel whose write failed), and it must
      // decide and write nothing more. The runtime has failed the asks of this batch.
      if (this.discarded) return;
      this.handle(env, ctx);
    }
    this.commitIfIdle(ctx);
  }

  /**
   * The first batch: the SKU/date recovers, then the batch is handled. Until then this receive is
   * running, so the runtime keeps what arrives meanwhile (within the mailbox bound: past it, 503
   * overloaded) and drops the asks whose deadline passes before they are handed over; the asks of this
   * batch that passed theirs during the recovery are skipped too. Their callers were told the request
   * failed, so no reservation may be made for them (it would hold stock for a whole TTL).
   */
  private async recoverThenReceive(batch: Envelope<InventoryMessage>[], ctx: ActorContext<InventoryMessage>): Promise<void> {
    this.phase = 'recovering';
    const started = this.deps.now();
    let recovered: Awaited<ReturnType<typeof recoverInventory>>;
    try {
      const projected = this.deps.projector.checkpoint(this.stream);
      recovered = await this.deps.recoveries.run(() => this.recoverFenced(projected));
    } catch (error) {
      const failure = new UnavailableError(`recovery of ${this.stream} failed`, { cause: error });
      for (const env of batch) ctx.fail(env, failure);
      this.discarded = true;
      ctx.restart();
      this.deps.observer.recoveryFailed(this.stream);
      return;
    }
    this.deps.observer.recovered(this.stream, this.deps.now() - started, recovered.source, recovered.events_replayed);
    this.onRecovered(recovered, ctx);
    this.receive(
      batch.filter((env) => !ctx.answered(env)),
      ctx,
    );
  }

  /**
   * Recovery. After a write of the previous incarnation whose outcome is unknown (or of the previous
   * process: actors/in-doubt-streams.ts), the journal is fenced first: a `fenced` record at the next
   * seq, written before anything is answered. Without
   * it a write that commits after its deadline (a stalled database, the SQLite writer's queue) would
   * land behind this incarnation's back: it would answer from a state without that write (an order
   * "unknown", so its buyer's hold released) until its own first write failed on the taken seq. If
   * the fence finds the seq taken, that write did commit: recovered again, it is in the state.
   */
  private async recoverFenced(projected: number): Promise<RecoveredInventory> {
    const r = await recoverInventory(this.context, this.deps.journal, this.deps.snapshots, projected);
    if (!this.deps.inDoubt.has(this.stream)) return r;
    const at = this.deps.now();
    const fence: InventoryEvent = { type: 'fenced', at };
    try {
      await this.deps.journal.append([{ stream: this.stream, seq: r.seq + 1, lastSeq: r.seq + 1, at, events: [encodeEvent(fence)] }]);
    } catch (error) {
      if (!(error instanceof JournalConflictError)) throw error;
      this.deps.inDoubt.delete(this.stream);
      return recoverInventory(this.context, this.deps.journal, this.deps.snapshots, projected);
    }
    this.deps.inDoubt.delete(this.stream);
    evolve(r.state, fence);
    return { ...r, seq: r.seq + 1 };
  }

  private onRecovered(r: RecoveredInventory, ctx: ActorContext<InventoryMessage>): void {
    this.state = r.state;
    this.seq = this.durableSeq = r.seq;
    this.snapshotSeq = r.snapshotSeq;
    this.lastSnapshotAt = this.deps.now();
    this.projectedSeq = r.snapshotSeq;
    this.pending.firstSeq = r.seq + 1;
    // Recovered reservations are not fresh, even if the clock stepped back since they were made.
    this.freshAfter = Math.max(this.deps.now(), this.state.reservations.latestCreatedAt() ?? -Infinity);
    // What the read model lacks (the events after its checkpoint) is handed to the projector again (idempotent), and what it
    // settled is kept for reads until the projector confirms it.
    this.trackProjected(r.reprojected);
    for (const e of r.reprojected) this.rememberAnswer(e);
    this.deps.projector.enqueue(this.stream, r.reprojected, r.seq, this.state.reservations.size, this.recoveredOutboxRanges(r.outboxFromSeq, r.seq, r.outboxKinds));
    this.phase = 'ready';
    this.deps.observer.availability(this.stream, available(this.state));
    const unanswered = this.deps.unanswered.get(this.stream);
    if (unanswered) {
      this.deps.unanswered.delete(this.stream);
      this.cancelUnanswered(unanswered, ctx);
    }
    if (this.state.reservations.size === 0) this.deps.observer.recoveredIdle(this.stream);
    this.armExpiry(ctx, 0);
  }

  private handle(env: Envelope<InventoryMessage>, ctx: ActorContext<InventoryMessage>): void {
    const msg = env.msg;
    switch (msg.type) {
      case 'inspect':
        ctx.reply(env, this.inspect());
        return;
      case '$wake':
        return;
      case 'idempotency_answer': {
        const seen = this.knownAnswer(msg.userId, msg.key);
        const reply: ReplayReply | { outcome: 'unknown' } = !seen
          ? { outcome: 'unknown' }
          : seen.row.requestHash === msg.hash
            ? { outcome: 'replay', idempotency: seen.row }
            : { outcome: 'idempotency_key_reused' };
        this.answer(env, reply, ctx);
        return;
      }
      // An order settled by a decision whose write has not committed (e.g. an expiry meeting a
      // payment) is in neither the reservations nor `settled` yet (settlingOrders): answers that
      // include one leave once it is durable (answer), never saying "unknown" meanwhile.
      case 'get_order': {
        if (this.cancelWaiting(msg.orderId)) {
          const asks = this.awaitingCancel.get(msg.orderId);
          if (asks) asks.push(env);
          else this.awaitingCancel.set(msg.orderId, [env]);
          return;
        }
        const known = this.order(msg.orderId);
        if (known) {
          // A reservation whose write is still pending or in flight is answered once durable: who
          // asks (a limit actor settling a hold whose reserve ask timed out) must not take a
          // reservation that a failed write then undoes for a real one.
          if (known.status === 'reserved' && this.undurableReservation(msg.orderId)) this.answer(env, known, ctx);
          else ctx.reply(env, known);
          return;
        }
        let settling: LiveOrder | undefined;
        for (const o of this.settlingOrders()) if (o.orderId === msg.orderId) settling = o;
        if (settling) this.answer(env, settling, ctx);
        else ctx.reply(env, undefined);
        return;
      }
      case 'list_orders':
        this.answer(env, this.listOrders(msg.afterOrderId, msg.limit), ctx);
        return;
      case '$committed':
        this.onCommitted(ctx, msg.withRecords === 'refused');
        return;
      case '$commit_failed':
        this.onCommitFailed(msg.error, ctx);
        return;
      case '$projected':
        this.onProjected(msg.seq);
        return;
      case '$expire':
        // Told from outside (the reconciler), the armed timer is still pending: cancelled, or it
        // would fire and start a second chain of expiry passes (no-op for the timer that fired).
        this.cancelExpiry?.();
        this.expiryAt = Infinity;
        this.cancelExpiry = undefined;
        // No more releases than the pending bound leaves room for (no write may hold more than one INSERT
        // takes); a pass cut short re-arms itself at once (its nextExpiresAt is now).
        this.apply(undefined, { type: 'expire_due', max_orders: Math.max(1, Math.min(this.deps.limits.expire_batch_max, this.deps.limits.pending_events_max - this.pending.events.length)) }, ctx);
        return;
      case 'sell':
        this.apply(env, { type: 'confirm_sold', orderId: msg.orderId, paymentId: msg.paymentId }, ctx, msg.record);
        return;
      default:
        this.apply(env, msg, ctx);
    }
  }

  /** `attached`: a record written with this decision's events if it sells (see `sell`). */
  private apply(env: Envelope<InventoryMessage> | undefined, command: InventoryCommand, ctx: ActorContext<InventoryMessage>, attached?: JournalRecord): void {
    if (this.pending.events.length >= this.deps.limits.pending_events_max) {
      if (env) ctx.reply(env, { outcome: 'overloaded' });
      // An expiry pass refused now must still happen: look again shortly.
      if (command.type === 'expire_due') this.armExpiry(ctx, this.deps.now() + this.deps.limits.expiry_delay_min_ms);
      return;
    }
    if (command.type === 'reserve' && command.idempotency) {
      const seen = this.knownAnswer(command.userId, command.idempotency.key);
      if (seen) {
        const reply: ReplayReply =
          seen.row.requestHash === command.idempotency.hash ? { outcome: 'replay', idempotency: seen.row } : { outcome: 'idempotency_key_reused' };
        this.answer(env, reply, ctx);
        return;
      }
    }
    const now = this.deps.now();
    const decision = decide(this.state, command, now);
    for (const event of decision.events) {
      this.seq++;
      const projected = projectEvent(this.state, event, this.seq, this.context);
      if ((event.type === 'released' || event.type === 'sold') && this.state.reservations.get(event.orderId)?.limited) {
        this.pending.limitedSettled.push({ userId: event.userId, orderId: event.orderId, reason: event.type === 'sold' ? 'sold' : event.reason });
      }
      evolve(this.state, event);
      this.pending.events.push(encodeEvent(event));
      this.pending.kinds |= outboxKindOf(event);
      if (projected) {
        this.pending.projected.push(projected);
        // Known from the decision on, not from the commit: a retry of the same key that arrives while
        // this write is pending or in flight (its first ask timed out, say) gets this answer once it
        // is durable, instead of making a second reservation. A failed write discards it with the
        // incarnation.
        this.rememberAnswer(projected);
      }
    }
    if (attached && decision.reply.outcome === 'sold') this.pending.attached.push(attached);
    // A probe that found stock is no answer to the buyer yet: its reservation counts when made.
    if (command.type === 'reserve' && decision.reply.outcome !== 'hold_required') this.deps.observer.reservation(decision.reply.outcome);
    if (command.type === 'expire_due') {
      const next = (decision.reply as Extract<InventoryReply, { outcome: 'expired' }>).nextExpiresAt;
      if (next !== undefined) this.armExpiry(ctx, next);
      return;
    }
    this.answer(env, decision.reply, ctx);
    if (command.type === 'reserve' && decision.reply.outcome === 'reserved') this.armExpiry(ctx, decision.reply.reservation.expiresAt);
  }

  /** A reply leaves only once everything it was decided on is durable. */
  private answer(env: Envelope<InventoryMessage> | undefined, reply: unknown, ctx: ActorContext<InventoryMessage>): void {
    if (!env) return;
    if (this.pending.events.length > 0) this.pending.waiters.push({ env, reply });
    else if (this.inFlight) this.inFlight.waiters.push({ env, reply });
    else ctx.reply(env, reply);
  }

  private commitIfIdle(ctx: ActorContext<InventoryMessage>): void {
    if (this.discarded || this.phase !== 'ready' || this.inFlight || this.pending.events.length === 0) return;
    const batch = this.pending;
    const lastSeq = batch.firstSeq + batch.events.length - 1;
    batch.liveAfter = this.state.reservations.size;
    batch.availableAfter = available(this.state);
    this.pending = { events: [], attached: [], limitedSettled: [], ownCancels: [], kinds: 0, projected: [], waiters: [], firstSeq: lastSeq + 1, liveAfter: 0, availableAfter: 0 };
    this.inFlight = batch;
    const now = this.deps.now();
    /** The record's time, as the journal keeps it (whole ms): a snapshot ending with it names it so. */
    const recordAt = Math.floor(now);
    const due =
      lastSeq - this.snapshotSeq >= this.deps.limits.snapshot_every_events || now - this.lastSnapshotAt >= this.deps.limits.snapshot_every_ms;
    if (due && this.snapshotCandidate === undefined && this.state.reservations.size <= this.deps.limits.snapshot_reservations_max) {
      // The state now holds exactly the events up to lastSeq: this is the snapshot at lastSeq.
      this.snapshotCandidate = { seq: lastSeq, at: recordAt, state: toSnapshot(this.state), durable: false };
      this.lastSnapshotAt = now;
    }
    this.deps.committer.commit({ stream: this.stream, seq: batch.firstSeq, lastSeq, at: recordAt, events: batch.events }, batch.attached.length > 0 ? batch.attached : undefined).then(
      (withRecords) => ctx.self(withRecords === undefined ? committed : { type: '$committed', withRecords }),
      (error: unknown) => ctx.self({ type: '$commit_failed', error }),
    );
  }

  private onCommitted(ctx: ActorContext<InventoryMessage>, recordsRefused = false): void {
    const batch = this.inFlight;
    if (!batch) return;
    this.inFlight = undefined;
    this.durableSeq = batch.firstSeq + batch.events.length - 1;
    this.deps.observer.committed(this.stream);
    this.trackProjected(batch.projected);
    const range = this.outboxRange(batch.firstSeq, this.durableSeq, batch.kinds);
    if (range && this.deps.live) {
      const { firstSeq, events } = batch;
      const lastSeq = this.durableSeq;
      this.deps.live.offer(range.eventId, events.length, () => rangeEvents(events, firstSeq, this.context, firstSeq, lastSeq));
    }
    this.deps.projector.enqueue(this.stream, batch.projected, this.durableSeq, batch.liveAfter, range);
    if (this.snapshotCandidate && this.snapshotCandidate.seq <= this.durableSeq) this.snapshotCandidate.durable = true;
    // What this write made durable, not the state with the decisions pending meanwhile (their write may fail).
    this.deps.observer.availability(this.stream, batch.availableAfter);
    // An ask whose deadline passed while its write was pending or in flight was answered 503: a
    // keyless reservation of it is cancelled (see cancelUnanswered) — in the write after the one that
    // starts now with what is pending, so that no write holds more than the pending bound (a database
    // stall makes both full: every reservation in flight late, and the next batch at its bound).
    // They are decided before the asks about orders are answered (one about them — a limit actor
    // resolving the hold its 503'd saga left — gets the cancel once durable, not the `reserved` it was
    // decided on, which would count the order against its buyer's next one); every other waiter is
    // answered in the same single pass over the batch.
    let late: Waiter[] | undefined;
    let lookups: Waiter[] | undefined;
    for (const w of batch.waiters) {
      if (ctx.answered(w.env)) (late ??= []).push(w);
      else if (w.env.msg.type === 'get_order') (lookups ??= []).push(w);
      else ctx.reply(w.env, recordsRefused ? unrecorded(w) : w.reply);
    }
    if (late) for (const o of InventoryActor.keyless(late)) this.queueCancel(o);
    if (this.toCancelIds.size > 0) {
      this.commitIfIdle(ctx);
      this.cancelSome(ctx);
    }
    for (const w of lookups ?? []) {
      const orderId = (w.env.msg as Extract<InventoryMessage, { type: 'get_order' }>).orderId;
      // Answered as reserved, and no longer (cancelled since, or its cancel waiting): asked again, answered once that is durable.
      if ((w.reply as LiveOrder | undefined)?.status === 'reserved' && (!this.state.reservations.get(orderId) || this.cancelWaiting(orderId))) this.handle(w.env, ctx);
      else ctx.reply(w.env, w.reply);
    }
    for (const r of batch.limitedSettled) {
      if (r.reason === 'sold') this.deps.observer.limitedSold(r.userId, r.orderId);
      else this.deps.observer.limitedReleased(r.userId, r.orderId, r.reason);
    }
    this.commitIfIdle(ctx);
  }

  private onCommitFailed(error: unknown, ctx: ActorContext<InventoryMessage>): void {
    const failure = new UnavailableError(`journal write of ${this.stream} failed`, { cause: error });
    // Refused for its seq: it committed nothing. Anything else (a deadline, a lost connection) may
    // still commit: the next incarnation fences the journal first.
    if (error instanceof JournalConflictError) this.writeRefused = true;
    else this.deps.inDoubt.add(this.stream);
    for (const w of this.inFlight?.waiters ?? []) ctx.fail(w.env, failure);
    for (const w of this.pending.waiters) ctx.fail(w.env, failure);
    // The in-memory state holds decisions that are not durable: discard it and recover. (stopped()
    // tells the in-doubt releases of the failed write: it may have committed after all.)
    this.discarded = true;
    ctx.restart();
  }

  /** The outbox rows of what recovery found the read model lacks: any length, so in rows of a bounded span. */
  private recoveredOutboxRanges(fromSeq: number, toSeq: number, kinds: number): OutboxEvent[] | undefined {
    if (kinds === 0 || toSeq < fromSeq) return undefined;
    return outboxRangeRows({ stream: this.stream, fromSeq, toSeq, kinds, merchantId: this.context.merchantId }, this.deps.now());
  }

  private outboxRange(fromSeq: number, toSeq: number, kinds: number): OutboxEvent | undefined {
    if (kinds === 0 || toSeq < fromSeq) return undefined;
    return outboxRangeRow({ stream: this.stream, fromSeq, toSeq, kinds, merchantId: this.context.merchantId }, this.deps.now());
  }

  private trackProjected(events: readonly ProjectedEvent[]): void {
    for (const e of events) {
      if (e.change) {
        const row = e.change.row;
        if (row.status === 'reserved') this.settled.delete(row.orderId);
        else this.settled.set(row.orderId, { seq: e.seq, order: { ...row } });
      }
    }
  }

  /** The answer this SKU/date decided for the buyer's key, if it still holds it (unprojected, or projected lately). */
  private knownAnswer(userId: string, key: string): { row: IdempotencyRow } | undefined {
    const k = `${userId}\u0000${key}`;
    const unprojected = this.unprojectedIdempotency.get(k);
    if (unprojected) return unprojected;
    // A first answer is one for 24 hours from when it was made (API.md), however late it was projected.
    const now = this.deps.now();
    const projected = this.projectedIdempotency.get(k, now);
    if (!projected || projected.createdAt <= now - IDEMPOTENCY_ANSWER_MS) return undefined;
    return { row: projected };
  }

  /** An Idempotency-Key's answer, kept until the read model has it (the store answers it then). */
  private rememberAnswer(e: ProjectedEvent): void {
    if (e.idempotency) this.unprojectedIdempotency.set(`${e.idempotency.userId}\u0000${e.idempotency.key}`, { row: e.idempotency, seq: e.seq });
  }

  private onProjected(seq: number): void {
    if (seq <= this.projectedSeq) return;
    this.projectedSeq = seq;
    for (const [id, s] of this.settled) if (s.seq <= seq) this.settled.delete(id);
    const now = this.deps.now();
    // Decided in seq order, so the projected ones come first.
    for (const [k, s] of this.unprojectedIdempotency) {
      if (s.seq > seq) break;
      this.unprojectedIdempotency.delete(k);
      this.projectedIdempotency.set(k, s.row, now);
    }
    const candidate = this.snapshotCandidate;
    if (candidate && candidate.durable && candidate.seq <= seq) {
      this.snapshotCandidate = undefined;
      this.snapshotSeq = candidate.seq;
      const record = { stream: this.stream, seq: candidate.seq, at: candidate.at, state: candidate.state };
      for (const { name, store } of this.deps.snapshots) {
        store.save(record).catch((error: unknown) => this.deps.observer.snapshotFailed(name, error));
      }
    }
  }

  private armExpiry(ctx: ActorContext<InventoryMessage>, at: number): void {
    if (this.state.reservations.size === 0) return;
    // After recovery: the earliest live reservation.
    if (at === 0) at = this.state.reservations.earliestExpiresAt(this.state.expiryMonotonic) ?? Infinity;
    if (at >= this.expiryAt) return;
    this.cancelExpiry?.();
    this.expiryAt = at;
    const { expiry_delay_min_ms: min, expiry_check_ms_max: max } = this.deps.limits;
    const delay = Math.min(max, Math.max(min, at - this.deps.now()));
    this.cancelExpiry = ctx.schedule(delay, { type: '$expire' });
  }

  private inspect(): InventoryInspection {
    return {
      total: this.state.total,
      reserved: this.state.reserved,
      sold: this.state.sold,
      durableSold: this.state.sold - this.undurableSold(),
      available: available(this.state),
      journalSeq: this.durableSeq,
      snapshotSeq: this.snapshotSeq,
      projectedSeq: this.projectedSeq,
      liveReservations: this.state.reservations.size,
      pendingEvents: this.pending.events.length,
      writeInFlight: this.inFlight !== undefined,
      oldestExpiresAt: this.oldestExpiresAt(),
    };
  }

  private oldestExpiresAt(): number | null {
    return this.state.reservations.earliestExpiresAt(this.state.expiryMonotonic) ?? null;
  }

  /** Units sold by decisions whose write has not committed. */
  private undurableSold(): number {
    let units = 0;
    for (const batch of [this.inFlight, this.pending]) {
      for (const e of batch?.projected ?? []) if (e.change?.row.status === 'paid') units += e.change.row.qty;
    }
    return units;
  }

  /** Orders settled by decisions whose write has not committed, in decision order (a later change wins). */
  private *settlingOrders(): Generator<LiveOrder> {
    for (const batch of [this.inFlight, this.pending]) {
      for (const e of batch?.projected ?? []) {
        const row = e.change?.row;
        if (row && row.status !== 'reserved') yield { ...row };
      }
    }
  }

  /**
   * Orders after `afterOrderId` in id order, at most `limit`: the live reservations, the settled
   * orders not yet projected and those settled by decisions still being written.
   */
  private listOrders(afterOrderId: string, limit: number): LiveOrder[] {
    const byId = new Map<string, LiveOrder>();
    // The first `limit` live reservations after the cursor are all that can be among the first
    // `limit` orders of the union.
    for (const r of this.state.reservations.after(afterOrderId, limit)) byId.set(r.orderId, asStreamOrder(r, this.context, 'reserved'));
    for (const s of this.settled.values()) if (s.order.orderId > afterOrderId) byId.set(s.order.orderId, { ...s.order });
    for (const o of this.settlingOrders()) if (o.orderId > afterOrderId) byId.set(o.orderId, o);
    const out = [...byId.values()].sort((a, b) => (a.orderId < b.orderId ? -1 : a.orderId > b.orderId ? 1 : 0));
    return out.slice(0, limit);
  }

  /** Whether the reservation of `orderId` was decided in a batch not durable yet (a scan: for reads of one order, off the hot path). */
  private undurableReservation(orderId: string): boolean {
    for (const batch of [this.inFlight, this.pending]) {
      if (!batch) continue;
      for (const raw of batch.events) {
        const e = raw as EncodedEvent; // encodeEvent's form (actors/inventory-codec.ts)
        if ((e[0] === 'r' || e[0] === 'R') && e[1] === orderId) return true;
      }
    }
    return false;
  }

  private order(orderId: string): LiveOrder | undefined {
    const r = this.state.reservations.get(orderId);
    if (r) {
      const live: LiveOrder = asStreamOrder(r, this.context, 'reserved');
      if (r.createdAt > this.freshAfter) live.fresh = true;
      return live;
    }
    return this.settled.get(orderId)?.order;
  }
}

/** The message of a commit that wrote all it carried (one object for every such commit). */
const committed: InventoryMessage = { type: '$committed' };

/** A waiter's answer after its write's `sell` records were refused: a `sold` says `unrecorded` (the order writes its `paid` itself). */
function unrecorded(w: Waiter): unknown {
  const reply = w.reply as InventoryReply | undefined;
  return w.env.msg.type === 'sell' && reply?.outcome === 'sold' ? { ...reply, unrecorded: true } : w.reply;
}
