// One actor per buyer: checks the purchase rules and holds the order's usage atomically (the pure
// core is engine/buyer.ts), so 100 parallel orders of one buyer can never pass a limit. Commands are
// decided one after the other against the buyer's state; the events of every command handled in one
// batch go to the buyer's journal stream `@b/<userId>` in one write (group commit: while it is in
// flight, the next commands gather in the mailbox), and the replies leave once it is durable. Holds
// and releases are journaled in the order they were decided, so a release can never be overtaken by
// its own hold (and a release that comes first leaves a tombstone the hold then respects).
//
// Crash at any step of the purchase saga (hold -> reserve -> confirm | release): a hold whose order
// the inventory never reserved, or whose reservation ended while the release was lost, is resolved
// when the actor is next loaded: it asks the order's SKU/date what became of it, unless that order's
// saga is still running in this process. A passivated actor that leaves nothing undecided hands its
// state to its next incarnation instead (actors/warm-buyers.ts): no read, no holds to resolve.
//
// The journal stays short: every COMPACT_AFTER_EVENTS events the actor writes its whole state as one
// `restored` record and drops the records before it (see compactAfterReplies), unless that record
// would be over BUYER_SNAPSHOT_BYTES_MAX (engine/buyer.ts): then the journal stays whole, and the
// compaction is tried again only once the journal has grown as much again.

import {
  buyerToSnapshot,
  decideBuyer,
  emptyBuyer,
  evolveBuyer,
  type BuyerCommand,
  type BuyerEvent,
  type BuyerOrderFacts,
  type BuyerReleaseReason,
  type BuyerReply,
  type BuyerSnapshot,
  type BuyerState,
  type RuleSet,
  type RuleUsage,
  usageByRule,
} from '../engine/index.ts';
import type { JournalStore } from '../persistence/ports.ts';
import { within } from '../persistence/bus/waits.ts';
import { UnavailableError } from './errors.ts';
import type { BuyerStreams } from './buyer-streams.ts';
import type { GroupCommitter, WithRecords } from './group-commit.ts';
import type { ActorContext, Behavior, Envelope } from './runtime/index.ts';
import type { WarmBuyers } from './warm-buyers.ts';

export const BUYER_STREAM_PREFIX = '@b/';
/** After a failed ask about an unresolved hold, the next is not made before this many ms. */
export const UNRESOLVED_RETRY_MS = 1_000;
/** How long a batch waits for the answers about its unresolved holds, at most. */
export const UNRESOLVED_RETRY_WAIT_MS = 200;

/** A buyer state with at least this many orders, tombstones and no-shows is pruned (see prune below). */
export const PRUNE_AT_ENTRIES = 64;
/**
 * A limit actor prunes with its first batch after a load, then at most this often while in memory.
 * The time is not kept across a load (a limit actor idle for 3 s is passivated: app/node.ts): a
 * prune that drops nothing writes nothing, and is one pass over the state, as its load was.
 */
export const PRUNE_EVERY_MS = 60 * 60 * 1000;
/**
 * After this many events since the last compaction (or the stream's start), the actor writes its
 * whole state as one `restored` record and drops the records before it, so loading a buyer reads at
 * most about this many events, however long the buyer has been buying.
 */
export const COMPACT_AFTER_EVENTS = 256;
/**
 * A compaction refused because the state's snapshot is over BUYER_SNAPSHOT_BYTES_MAX is tried again
 * once the journal has grown by as many events again as it had (the state may have shrunk, by a
 * prune or releases), and at least this often in events: trying after every batch rebuilt and
 * measured a snapshot of megabytes each time, for nothing.
 */
export const COMPACT_RETRY_EVENTS_MAX = 16_384;

/**
 * A buyer's state handed from one limit actor to the next (actors/warm-buyers.ts) is taken up only
 * this long after it was last loaded from the journal: a buyer who keeps coming back is still loaded,
 * and its holds asked about, now and then (the repair of a settlement that never reached it).
 */
export const WARM_RELOAD_AFTER_MS = 10 * 60_000;

/** When a limit actor loads, the fates of its holds it asks for at once. */
export const RESOLVE_ASKS_IN_FLIGHT = 16;

/** The commit option of a compaction's record (one object, not one per write). */
const ALONE = { alone: true } as const;
/** A compaction record this large (JSON bytes) or more goes in a journal write of its own (see compactAfterReplies). */
export const COMPACTION_ALONE_BYTES_MIN = 256 * 1024;

export function buyerStream(userId: string): string {
  return `${BUYER_STREAM_PREFIX}${userId}`;
}

export type LimitMessage =
  | { type: 'hold'; order: BuyerOrderFacts }
  | { type: 'confirm'; orderId: string }
  | { type: 'release'; orderId: string; reason: BuyerReleaseReason }
  | { type: 'no_show'; order: BuyerOrderFacts; at: number }
  /**
   * An order placed while no rule existed, taken in as the first rule arrives (actors/rule-adoption.ts).
   * A held one is then settled by what its SKU/date knows (as `resolve` does): its sale or release may
   * have been told to this actor before the adoption arrived.
   */
  | { type: 'adopt'; order: BuyerOrderFacts; status: 'held' | 'counted' }
  /** The saga of this hold lost track of its reservation (an ask failed): settle the hold by what its SKU/date knows. */
  | { type: 'resolve'; orderId: string }
  | { type: 'inspect' };

/** What became of an order a hold was taken for, as its SKU/date knows it. */
export type HoldFate = 'in_flight' | 'reserved' | 'paid' | 'ended' | 'unknown';

export interface LimitDeps {
  journal: JournalStore;
  committer: GroupCommitter;
  now: () => number;
  /** The rules in force (the rule book): read at each hold, so a change applies to the next order. */
  rules: () => RuleSet;
  /** What became of the order of a hold (resolving holds after a crash). */
  fateOf: (orderId: string) => Promise<HoldFate>;
  /** Which buyers have a journal stream (actors/buyer-streams.ts); without it, every buyer may. */
  streams?: BuyerStreams;
  /** Told of each compaction refused as too large (a warning and a metric, app/node.ts). */
  compactionSkipped?: (userId: string, bytes: number, max: number) => void;
  /** States of passivated limit actors, for their next incarnation (actors/warm-buyers.ts). */
  warm?: WarmBuyers;
}

/** The live limit state of a buyer (GET /ops/buyers/{userId}, `stampede.ops.buyer.get`). */
export interface BuyerInspection {
  userId: string;
  /** Orders held: reserved, not yet paid (they count). */
  holds: BuyerSnapshot['orders'];
  /** Orders counted for good: paid or delivered. */
  counted: BuyerSnapshot['orders'];
  noShows: BuyerSnapshot['noShows'];
  /** What every rule counts for this buyer now, per group. */
  usage: RuleUsage[];
  journalSeq: number;
}

/** What one batch of a limit actor decided so far (LimitActor.receive). */
interface BatchDecisions {
  now: number;
  rules: RuleSet;
  events: BuyerEvent[];
  replies: [Envelope<LimitMessage>, unknown][];
  /** Messages answered with a failure (503) instead (see `unresolved`). */
  failures: [Envelope<LimitMessage>, Error][];
  /** Only refused holds' releases were decided in this batch (they need no write of their own). */
  deferrable: boolean;
  /** The reply of an adoption waiting for its hold to be settled (decideResolution). */
  adoptReply: BuyerReply | undefined;
}

export class LimitActor implements Behavior<LimitMessage> {
  private loaded = false;
  private state: BuyerState = emptyBuyer();
  private seq = 0;
  /** When this incarnation last pruned (0: not yet). */
  private prunedAt = 0;
  /**
   * Releases of holds whose reservation was refused (sold out: most orders of a flash sale), applied
   * to the state but not journaled yet: they go with this buyer's next write, or never. Lost (a
   * passivation, a crash), the hold is durable and is settled when the actor next loads (its order
   * was never reserved: released then), before any command of the buyer is decided.
   */
  private unjournaled: BuyerEvent[] = [];
  /**
   * Holds whose order's fate could not be learnt (its SKU/date did not answer: its recovery failing,
   * the database away, its mailbox full). They stay held — never fewer orders than the buyer has —
   * and are asked again before a batch (at most every UNRESOLVED_RETRY_MS) until they are settled;
   * meanwhile a hold the rules refuse only with them counted is answered 503 (retry), not 403: the
   * refusal may be theirs.
   */
  private readonly unresolved = new Set<string>();
  /** Not before this time are the unresolved holds asked about again (a SKU/date that fails may take an ask's whole deadline). */
  private unresolvedRetryAt = 0;
  /** Seq of the journal's last `restored` record (0: none); the events after it are what a load replays. */
  private compactedSeq = 0;
  /**
   * No compaction is tried before the journal reaches this seq: set when one was refused as too
   * large (see COMPACT_RETRY_EVENTS_MAX). Kept in memory only (handed on with the state, see
   * actors/warm-buyers.ts): an incarnation loaded from the journal tries once more (as costly as its
   * load, which reads that whole journal).
   */
  private compactRetrySeq = 0;
  /** A batch is being received (its decisions may not be durable yet). */
  private receiving = false;
  /** When the state was last loaded from the journal (by this incarnation or one it took it from). */
  private loadedAt = 0;
  private readonly stream: string;

  constructor(
    private readonly userId: string,
    private readonly deps: LimitDeps,
  ) {
    this.stream = buyerStream(userId);
  }

  /**
   * Passivated (or stopped) between batches with nothing undecided: every event applied is journaled
   * and no hold's fate is unknown, so the state is exactly the journal's; the next incarnation starts
   * from it (actors/warm-buyers.ts) instead of reading the journal.
   */
  stopped(): void {
    const warm = this.deps.warm;
    if (!warm || !this.loaded || this.receiving || this.unjournaled.length > 0 || this.unresolved.size > 0 || this.pendingFates.size > 0) return;
    warm.put(this.userId, { state: this.state, seq: this.seq, compactedSeq: this.compactedSeq, compactRetrySeq: this.compactRetrySeq, loadedAt: this.loadedAt });
  }

  async receive(batch: Envelope<LimitMessage>[], ctx: ActorContext<LimitMessage>): Promise<void> {
    this.receiving = true;
    try {
      if (!this.loaded) await this.load();
      const b = this.startBatch();
      if (this.unresolved.size > 0 && b.now >= this.unresolvedRetryAt) await this.retryUnresolved(b);
      // Decided one after the other against the state with the batch's earlier events applied (one
      // buyer, one sequence), synchronously, except where a hold must be settled by what its SKU/date
      // knows (a resolve, an adoption): there the next decision waits for that answer. (The deciding
      // is in methods of its own so that this frame, which waits for the write, stays small: it is
      // kept alive for every hold in flight.)
      for (let i = this.decideUntilResolution(batch, 0, b); i < batch.length; i = this.decideUntilResolution(batch, i + 1, b)) {
        await this.decideResolution(batch[i]!, b);
      }
      if (b.events.length > 0 && b.deferrable) {
        this.unjournaled.push(...b.events);
      } else if (b.events.length > 0) {
        // Journaled in the order decided: the deferred releases first.
        await this.write(this.unjournaled.length > 0 ? [...this.unjournaled, ...b.events] : b.events);
        this.unjournaled = [];
      }
      for (const [env, reply] of b.replies) ctx.reply(env, reply);
      for (const [env, error] of b.failures) ctx.fail(env, error);
      if (this.seq - this.compactedSeq >= COMPACT_AFTER_EVENTS && this.seq >= this.compactRetrySeq && this.unjournaled.length === 0) await this.compactAfterReplies();
    } catch (error) {
      // Nothing of this batch is known durable: fail it, and start again from the journal.
      const failure = error instanceof UnavailableError ? error : new UnavailableError(`limits of ${this.userId}: ${(error as Error)?.message ?? error}`, { cause: error });
      for (const env of batch) ctx.fail(env, failure);
      this.loaded = false;
      this.prunedAt = 0;
    } finally {
      this.receiving = false;
    }
  }

  /** A batch's decisions, starting with a prune when one is due. */
  private startBatch(): BatchDecisions {
    const now = this.deps.now();
    const rules = this.deps.rules();
    const b: BatchDecisions = { now, rules, events: [], replies: [], failures: [], deferrable: true, adoptReply: undefined };
    // Prune: what no rule in force can reach any more goes (engine/buyer.ts decidePrune; a month is
    // always kept), so a long-lived buyer's state and its BUYER_ORDERS_MAX stay about the rules'
    // windows, not about every order ever. Journaled with this batch, before its commands.
    // With no rule in force (the first one being adopted), what a rule reaches is unknown: no prune.
    if (now - this.prunedAt >= PRUNE_EVERY_MS && this.entries() >= PRUNE_AT_ENTRIES && rules.rules.length > 0) {
      this.prunedAt = now;
      const pruned = decideBuyer(this.state, { type: 'prune', rules }, now).events;
      this.apply(b, pruned);
      if (pruned.length > 0) b.deferrable = false;
    }
    return b;
  }

  /**
   * Decides batch[from..] in order until a message whose decision needs what a SKU/date knows (a
   * resolve, or an adoption that took a hold); returns its index (batch.length when none is left).
   */
  private decideUntilResolution(batch: Envelope<LimitMessage>[], from: number, b: BatchDecisions): number {
    for (let i = from; i < batch.length; i++) {
      const env = batch[i]!;
      const msg = env.msg;
      if (msg.type === 'inspect') {
        b.replies.push([env, this.inspect(b.now, this.seq + b.events.length)]);
        continue;
      }
      if (!(msg.type === 'release' && msg.reason === 'not_reserved') || env.handle !== null) b.deferrable = false;
      if (msg.type === 'resolve') return i;
      const command: BuyerCommand = msg.type === 'hold' ? { type: 'hold', order: msg.order, rules: b.rules } : msg;
      const d = decideBuyer(this.state, command, b.now);
      this.apply(b, d.events);
      if (msg.type === 'adopt' && d.events.length > 0) {
        b.adoptReply = d.reply;
        return i;
      }
      if (d.reply.outcome === 'limit_exceeded' && this.unresolved.size > 0) {
        const without = this.decidedWithout(command, b.now);
        if (without.outcome !== 'limit_exceeded') {
          // Refused only because of holds whose fate is unknown: whether it must be is not known yet.
          b.failures.push([env, new UnavailableError(`limits of ${this.userId}: ${this.unresolved.size} held order(s) could not be checked with their SKU/date; retry shortly`)]);
          continue;
        }
        // Refused anyway: the refusal as it stands without them (its rule, its figures).
        b.replies.push([env, without]);
        continue;
      }
      b.replies.push([env, d.reply]);
    }
    return batch.length;
  }

  /** The decision of a resolve, or the rest of an adoption's: its hold settled by what its SKU/date knows. */
  private async decideResolution(env: Envelope<LimitMessage>, b: BatchDecisions): Promise<void> {
    const msg = env.msg;
    if (msg.type === 'resolve') {
      this.apply(b, await this.resolution(msg.orderId, b.now));
      b.replies.push([env, { outcome: 'resolved' }]);
    } else if (msg.type === 'adopt') {
      this.apply(b, await this.resolution(msg.order.orderId, b.now));
      b.replies.push([env, b.adoptReply]);
      b.adoptReply = undefined;
    }
  }

  private apply(b: BatchDecisions, events: readonly BuyerEvent[]): void {
    for (const e of events) {
      evolveBuyer(this.state, e);
      b.events.push(e);
    }
    // A hold settled by a message (a release, a confirm) is no longer unresolved.
    if (this.unresolved.size > 0 && events.length > 0) {
      for (const id of this.unresolved) {
        if (this.state.orders.get(id)?.status === 'held') continue;
        this.unresolved.delete(id);
        this.pendingFates.delete(id);
      }
    }
  }

  /** The reply to the hold `command` with the unresolved holds left out (a refusal then is not theirs). */
  private decidedWithout(command: BuyerCommand, now: number): BuyerReply {
    const orders = new Map([...this.state.orders].filter(([id]) => !this.unresolved.has(id)));
    // Without its ledger the decision reads the orders themselves (engine/buyer.ts); nothing is applied.
    return decideBuyer({ ...this.state, orders, ledger: undefined }, command, now).reply;
  }

  private entries(): number {
    return this.state.orders.size + this.state.released.size + this.state.noShows.size;
  }

  private inspect(now: number, journalSeq: number): BuyerInspection {
    const s = buyerToSnapshot(this.state);
    return {
      userId: this.userId,
      holds: s.orders.filter((o) => o.status === 'held'),
      counted: s.orders.filter((o) => o.status === 'counted'),
      noShows: s.noShows,
      usage: usageByRule(this.deps.rules(), this.state, now),
      journalSeq,
    };
  }

  /**
   * Journals `events` after the last record; resolves once durable. The seq moves on at once: until
   * the write settles nothing else of this actor runs (receive awaits it), and a failed write makes
   * the actor load its journal again before its next command. Not an async function: one frame less
   * kept alive per hold while it waits for the group commit.
   */
  private write(events: BuyerEvent[], alone = false): Promise<WithRecords> {
    this.deps.streams?.add(this.stream);
    const first = this.seq + 1;
    this.seq += events.length;
    return this.deps.committer.commit({ stream: this.stream, seq: first, lastSeq: this.seq, at: this.deps.now(), events }, undefined, alone ? ALONE : undefined);
  }

  /**
   * The whole state as one `restored` record (after the replies of the batch that made it due: they
   * do not wait for it), then the records before it dropped. Only when every event the state holds is
   * journaled (no deferred release): the record is exactly the journal up to it. A crash before the
   * drop leaves the old records too, which the load replays and the `restored` event then replaces;
   * a failed drop is left to the next compaction (it drops everything before its own record).
   */
  private async compactAfterReplies(): Promise<void> {
    // The `restored` event is the live state itself: applying it here would only rebuild a copy.
    const d = decideBuyer(this.state, { type: 'compact' }, this.deps.now());
    if (d.reply.outcome === 'snapshot_too_large') {
      // Too large for one record (engine/buyer.ts BUYER_SNAPSHOT_BYTES_MAX): the journal stays as it
      // is, and still rebuilds the buyer; tried again once it has grown as much again.
      const since = this.seq - this.compactedSeq;
      this.compactRetrySeq = this.seq + Math.min(since, COMPACT_RETRY_EVENTS_MAX);
      try {
        this.deps.compactionSkipped?.(this.userId, d.reply.bytes, d.reply.max);
      } catch {
        // a log line or metric that throws is its own bug, not the buyer's
      }
      return;
    }
    try {
      // A large one in a write of its own: up to BUYER_SNAPSHOT_BYTES_MAX, it is no rider for other
      // buyers' and SKU/dates' records (a write fails or succeeds whole), and no one waits for it. A
      // small one (nearly all) rides as any record: a write of its own would take one of the few
      // writes in flight from everyone's group commits.
      await this.write(d.events, d.reply.outcome === 'compacted' && d.reply.bytes >= COMPACTION_ALONE_BYTES_MIN);
    } catch {
      // Whether it was written is unknown (the batch's replies are gone already): load again.
      this.loaded = false;
      this.prunedAt = 0;
      return;
    }
    this.compactedSeq = this.seq;
    try {
      await this.deps.journal.dropBefore(this.stream, this.compactedSeq);
    } catch {
      // The records stay readable and correct; the next compaction drops them.
    }
  }

  private async load(): Promise<void> {
    // Left by this buyer's previous incarnation with nothing undecided (actors/warm-buyers.ts): what
    // happened to its orders since reaches this one as messages, so its holds need no asking.
    const warm = this.deps.warm?.take(this.userId);
    // (A clock stepped back since that load makes the age negative: loaded again too.)
    const age = warm === undefined ? Number.NaN : this.deps.now() - warm.loadedAt;
    if (warm !== undefined && age >= 0 && age < WARM_RELOAD_AFTER_MS) {
      this.state = warm.state;
      this.loadedAt = warm.loadedAt;
      this.seq = warm.seq;
      this.compactedSeq = warm.compactedSeq;
      this.compactRetrySeq = warm.compactRetrySeq;
      this.unjournaled = [];
      this.unresolved.clear();
      this.pendingFates.clear();
      this.loaded = true;
      return;
    }
    this.loadedAt = this.deps.now();
    const state = emptyBuyer();
    let seq = 0;
    let compactedSeq = 0;
    // A buyer certainly without a stream (most buyers of a flash sale): nothing to read or resolve.
    const records = this.deps.streams?.mayExist(this.stream) === false ? [] : await this.deps.journal.readAfter(this.stream, 0);
    for (const record of records) {
      // The records before a `restored` one may have been dropped (a compaction): it starts the stream.
      const restores = (record.events[0] as BuyerEvent | undefined)?.type === 'restored';
      if (record.seq !== seq + 1 && !(seq === 0 && restores)) throw new UnavailableError(`journal of ${this.stream} is not contiguous at seq ${seq}`);
      if (restores) compactedSeq = record.lastSeq;
      for (const raw of record.events) evolveBuyer(state, raw as BuyerEvent);
      seq = record.lastSeq;
    }
    this.state = state;
    this.seq = seq;
    this.compactedSeq = compactedSeq;
    this.unjournaled = [];
    this.unresolved.clear();
    this.pendingFates.clear();
    this.loaded = true;
    await this.resolveHolds();
    // The load just asked: the first batch does not ask again at once.
    this.unresolvedRetryAt = this.deps.now() + UNRESOLVED_RETRY_MS;
  }

  /** Holds whose saga is over: confirmed if paid, released if the reservation ended or never was. */
  private async resolveHolds(): Promise<void> {
    const held: string[] = [];
    for (const order of this.state.orders.values()) if (order.status === 'held') held.push(order.orderId);
    if (held.length === 0) return;
    // Asked RESOLVE_ASKS_IN_FLIGHT at a time (a buyer may hold thousands: no mailbox is flooded), then
    // settled in hold order.
    const fates: (HoldFate | undefined)[] = [];
    for (let i = 0; i < held.length; i += RESOLVE_ASKS_IN_FLIGHT) {
      fates.push(...(await Promise.all(held.slice(i, i + RESOLVE_ASKS_IN_FLIGHT).map((orderId) => this.fateNow(orderId)))));
    }
    const events: BuyerEvent[] = [];
    const now = this.deps.now();
    held.forEach((orderId, i) => {
      for (const e of this.settle(orderId, fates[i], now)) {
        evolveBuyer(this.state, e);
        events.push(e);
      }
    });
    if (events.length > 0) await this.write(events);
  }

  /** Asks again about the holds whose fate could not be learnt; what is settled goes in this batch. */
  private async retryUnresolved(b: BatchDecisions): Promise<void> {
    const ids = [...this.unresolved].slice(0, RESOLVE_ASKS_IN_FLIGHT);
    // Each waited for UNRESOLVED_RETRY_WAIT_MS at most: a SKU/date that hangs would hold the buyer's
    // batch for an ask's whole deadline. An ask still pending is not made again: its answer, when it
    // comes, is what the next retry uses (asking again would only add to a slow SKU/date's mailbox).
    const fates = await Promise.all(ids.map((orderId) => this.lateFate(orderId)));
    if (fates.includes(undefined)) this.unresolvedRetryAt = this.deps.now() + UNRESOLVED_RETRY_MS;
    // Those still unknown go to the back, so that the ones after them get their turn.
    ids.forEach((orderId, i) => {
      if (fates[i] === undefined && this.unresolved.delete(orderId)) this.unresolved.add(orderId);
    });
    ids.forEach((orderId, i) => {
      const events = this.settle(orderId, fates[i], b.now);
      if (events.length > 0) b.deferrable = false;
      this.apply(b, events);
    });
  }

  /**
   * The fate of a held order, or undefined when its SKU/date cannot say now (its recovery keeps
   * failing, the database is away, its mailbox is full): the hold is then `unresolved` — it stays
   * and counts, and is asked again later (retryUnresolved). Failing the batch instead made one bad
   * SKU/date refuse every order of every buyer holding an order there (503), on any SKU, and their
   * ops view too.
   */
  private async fateNow(orderId: string): Promise<HoldFate | undefined> {
    try {
      const fate = await this.deps.fateOf(orderId);
      this.unresolved.delete(orderId);
      this.pendingFates.delete(orderId);
      return fate;
    } catch {
      if (this.state.orders.get(orderId)?.status === 'held') this.unresolved.add(orderId);
      return undefined;
    }
  }

  /** Asks about unresolved holds still pending (one per order), their answers kept until used. */
  private readonly pendingFates = new Map<string, { answer: Promise<HoldFate | undefined>; fate?: HoldFate | undefined; done: boolean }>();

  /** An unresolved hold's fate: a late answer already in, else the pending (or a new) ask, waited for a short while. */
  private async lateFate(orderId: string): Promise<HoldFate | undefined> {
    let pending = this.pendingFates.get(orderId);
    if (pending === undefined) {
      const entry: { answer: Promise<HoldFate | undefined>; fate?: HoldFate | undefined; done: boolean } = { answer: Promise.resolve(undefined), done: false };
      entry.answer = this.deps.fateOf(orderId).then(
        (fate) => ((entry.fate = fate), (entry.done = true), fate),
        () => ((entry.done = true), undefined),
      );
      this.pendingFates.set(orderId, (pending = entry));
    }
    if (!pending.done) await within(pending.answer, UNRESOLVED_RETRY_WAIT_MS, `the fate of ${orderId}`).catch(() => undefined);
    if (!pending.done) return undefined; // still pending: kept for the next retry
    this.pendingFates.delete(orderId);
    if (pending.fate !== undefined) this.unresolved.delete(orderId);
    return pending.fate;
  }

  /** The events that settle a held order by what its SKU/date knows (none while it is reserved or in flight). */
  private async resolution(orderId: string, now: number): Promise<BuyerEvent[]> {
    const held = this.state.orders.get(orderId);
    if (!held || held.status !== 'held') return [];
    return this.settle(orderId, await this.fateNow(orderId), now);
  }

  private settle(orderId: string, fate: HoldFate | undefined, now: number): BuyerEvent[] {
    // Settled meanwhile (a release or confirm in this batch): nothing left to resolve.
    if (this.state.orders.get(orderId)?.status !== 'held') {
      this.unresolved.delete(orderId);
      this.pendingFates.delete(orderId);
      return [];
    }
    let command: BuyerCommand | undefined;
    if (fate === 'paid') command = { type: 'confirm', orderId };
    else if (fate === 'ended' || fate === 'unknown') command = { type: 'release', orderId, reason: fate === 'ended' ? 'expired' : 'not_reserved' };
    return command ? decideBuyer(this.state, command, now).events : [];
  }
}

export type { BuyerReply };
