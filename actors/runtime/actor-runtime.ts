// Why: the only place that touches nact. One actor per key (an SKU/date), spawned lazily, with the
// guarantees nact does not give: a registry of our own (nact silently drops a message sent to a
// stopped actor), bounded mailboxes (nact's are unbounded), asks correlated by our own ids and swept by
// one timer (nact's `query` can cross replies and arms a timer per call), crash handling that fails the
// affected asks and recreates the actor (nact's default supervision just stops it), explicit names
// (nact's anonymous names collide around 100k actors), passivation of idle actors, and a stop() that
// stops every child (nact's stop never reaches children: it looks them up by a reference they lack).
//
// What nact does, read from node_modules/nact/lib/actor.js: `dispatch` runs the actor function in a
// setImmediate, awaits it if it returns a promise, and only then takes the next mailbox message, so a
// key's batches are processed one at a time, in order, async included.
//
// A key's messages are buffered by the runtime and handed to nact as one message (a batch) at a time:
// at most one batch per key is ever in nact's hands. Everything that arrives while a batch is being
// received accumulates and becomes the next batch: one tick's worth when the actor keeps up, more
// while an async receive is running (which is what a group commit wants).

import { dispatch, spawn, start, stop as nactStop } from 'nact';
import type { Ref } from 'nact';
import { shardOf } from '../../engine/shard.ts';
import { Coalescer } from './coalescer.ts';
import { DeadlineSweeper, type AskHolder, type PendingAsk } from './deadline-sweeper.ts';
import { ActorCrashedError, OverloadedError, ShuttingDownError } from './errors.ts';

export interface RuntimeOptions {
  /** Keys hash onto shards with engine/shard.ts `shardOf`; each shard is one nact parent actor. */
  shards: number;
  /** Per actor: messages accepted but not yet handed to the behaviour. */
  mailboxMax: number;
  /** Passivate an actor idle this long (and whose behaviour says canPassivate()). */
  idleMs: number;
  /** Default deadline of an ask. */
  askTimeoutMs: number;
  /** E.g. 'node-1', shown by stats. */
  nodeId: string;
  /** Injected clock for idle/deadline decisions (default Date.now). */
  now?: () => number;
  /**
   * Clock of ask deadlines only (default `now`). An ask's timeout is about liveness (a stuck actor),
   * not business time: a node whose business clock is moved on (tests, the simulator's jump past
   * every expiry) gives it real elapsed time, so asks in flight at the jump do not all time out.
   */
  askNow?: () => number;
  /**
   * Live actors the idle sweep looks at in one turn of the event loop (default IDLE_SWEEP_PER_TURN):
   * a sweep over more resumes on the next turn instead of holding the loop for all of them.
   */
  idleSweepPerTurn?: number;
}

/**
 * Live actors looked at per turn by the idle sweep. Passivating 100,000 idle actors of a hosted kind
 * (a sale's buyers) held the event loop for 42 ms in one turn, a stall for every request queued
 * behind it; in turns of this many the longest turn was 2.8 ms (`bench/idle-sweep.ts`, on a slow
 * hour of this machine).
 */
export const IDLE_SWEEP_PER_TURN = 2_048;

/** Opaque reply handle of an ask. */
export interface ReplyHandle {
  readonly id: number;
}

export interface Envelope<M> {
  readonly msg: M;
  /** Opaque; null for a tell or a self() message. Pass the envelope to ctx.reply / ctx.fail. */
  readonly handle: ReplyHandle | null;
}

export interface ActorContext<M> {
  readonly key: string;
  /** Sends a message to this same actor incarnation (e.g. the result of an async write); dropped if this incarnation has crashed or stopped. Bypasses the mailbox bound. */
  self(msg: M): void;
  /** Resolves that ask (no-op for a tell or an ask already answered, failed or timed out). */
  reply(env: Envelope<M>, value: unknown): void;
  /** Rejects that ask (same no-op rules as reply). */
  fail(env: Envelope<M>, error: Error): void;
  /**
   * Whether that ask is settled already (answered, failed, or past its deadline: its caller has its
   * answer). False for a tell. A behaviour that held a batch a long time (a recovery) skips such asks
   * rather than act for a caller that was told it failed.
   */
  answered(env: Envelope<M>): boolean;
  /** Delivers msg to this incarnation after ms; returns a cancel function. Cancelled on crash/passivation. The timer is unref'd. */
  schedule(ms: number, msg: M): () => void;
  /**
   * Discards this incarnation now (e.g. after a failed write it wants a fresh recovery): the asks it
   * holds are rejected with ActorCrashedError, stopped() is called, and the messages not yet handed to
   * it go to a new incarnation made by the factory, which may start at once. So the behaviour must do
   * nothing more after it: not handle the rest of the batch it is receiving, not write (its state is
   * the discarded one).
   */
  restart(): void;
}

export interface Behavior<M> {
  /** Everything that arrived for this key since the previous batch was handed over, in arrival order (one tick's worth, or more if the previous receive was still running). Never empty. May be async: the next batch waits for it. Throwing or rejecting crashes this incarnation. */
  receive(batch: Envelope<M>[], ctx: ActorContext<M>): void | Promise<void>;
  /** False while it holds work that must not be dropped (e.g. writes in flight, live reservations with timers). Default true. */
  canPassivate?(): boolean;
  /** Called once when this incarnation is discarded (crash, restart, passivation, shutdown). */
  stopped?(): void;
}

export interface RuntimeStats {
  nodeId: string;
  shards: { shard: number; node: string; actors: number; mailbox: number }[];
  actors: number;
  byKind: Record<string, number>;
}

/** Internal envelope: `handle` is the PendingAsk itself; `self` marks messages from ctx.self/schedule. */
interface Env<M> extends Envelope<M> {
  readonly handle: PendingAsk | null;
  /** Not held to the mailbox bound (a message to self, a notify, a tellAlways to a live key). */
  readonly self: boolean;
  /**
   * A self message that must still reach the next incarnation when this one is discarded (a
   * tellAlways: a settlement another actor depends on). Other self messages are the dying
   * incarnation's own (its timers, its notices) and go with it.
   */
  readonly keep?: true;
}

type DiscardReason = 'crash' | 'restart' | 'passivate' | 'shutdown';

interface KindState<M> {
  readonly name: string;
  readonly safeName: string;
  readonly factory: (key: string) => Behavior<M>;
  readonly live: Map<string, Incarnation<M>>;
  /** This kind's idle time before passivation (else the runtime's idleMs). */
  readonly idleMs: number | undefined;
  /** Its actors' batches go through their shard's host nact actor (see KindOptions.hosted). */
  readonly hosted: boolean;
}

/** Per-kind options of define(). */
export interface KindOptions {
  /** Passivate this kind's actors idle this long (e.g. shorter for actors that are cheap to load and numerous). */
  idleMs?: number;
  /**
   * For kinds with very many short-lived actors (one per buyer, one per order): instead of a nact actor
   * spawned and stopped per key, each key's batches are dispatched through one long-lived nact host
   * actor per shard (all the keys of a shard that are ready in one tick go in one nact message). A key
   * keeps everything else: its own registry entry, bounded mailbox, one batch at a time in order
   * (the runtime sequences it: the host does not wait for one key's receive before starting another
   * key's), crash handling and passivation. Measured: a nact actor costs ~1.5 KiB and a spawn + stop
   * per activation; a million buyers activate a million times.
   */
  hosted?: boolean;
}

/** One nact message to a shard's host actor: the ready batches of its hosted keys. */
type HostedBatches = { inc: Incarnation<any>; batch: Env<any>[] }[];

const noop = (): void => {};
const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));

/** What `new Promise(captureSettlers)` was handed, taken by the caller right after (see ask). */
let capturedResolve: ((value: unknown) => void) | undefined;
let capturedReject: ((error: Error) => void) | undefined;
function captureSettlers(resolve: (value: unknown) => void, reject: (error: Error) => void): void {
  capturedResolve = resolve;
  capturedReject = reject;
}

/** One live actor for one key; it is also the ActorContext handed to its behaviour. */
class Incarnation<M> implements ActorContext<M>, AskHolder {
  /** Accepted, not yet dispatched to nact. */
  buffer: Env<M>[] = [];
  /** Dispatched to nact, not yet handed to receive. */
  inflight: Env<M>[] | null = null;
  /** External (ask/tell) messages in buffer + inflight: what mailboxMax bounds. */
  mailbox = 0;
  /** A batch is dispatched or being received. */
  running = false;
  /** In the coalescer's list for the next flush. */
  marked = false;
  dead = false;
  lastActive: number;
  /** Asks handed to receive and not yet settled (the sweeper counts them; see DeadlineSweeper.heldBy). */
  heldAsks = 0;
  heldFirst: PendingAsk | null = null;
  timers: Set<NodeJS.Timeout> | null = null;
  /** Its own nact actor (a hosted kind has none: its shard's host actor runs its batches). */
  ref: Ref<Env<M>[]> | undefined;
  behaviour!: Behavior<M>;

  constructor(
    private readonly core: Core,
    readonly kind: KindState<M>,
    readonly key: string,
    readonly shard: number,
    readonly id: number,
  ) {
    this.lastActive = core.now();
  }

  self(msg: M): void {
    if (this.dead) return;
    this.core.enqueue(this, { msg, handle: null, self: true }, false);
  }

  reply(env: Envelope<M>, value: unknown): void {
    const p = (env as Env<M>).handle;
    if (p) this.core.pending.resolve(p, value);
  }

  fail(env: Envelope<M>, error: Error): void {
    const p = (env as Env<M>).handle;
    if (p) this.core.pending.reject(p, error);
  }

  answered(env: Envelope<M>): boolean {
    return (env as Env<M>).handle?.settled === true;
  }

  schedule(ms: number, msg: M): () => void {
    if (this.dead) return noop;
    const timers = (this.timers ??= new Set());
    const t = setTimeout(() => {
      timers.delete(t);
      this.self(msg);
    }, ms);
    t.unref();
    timers.add(t);
    return () => {
      if (timers.delete(t)) clearTimeout(t);
    };
  }

  restart(): void {
    this.core.discard(this, 'restart');
  }
}

/** All the machinery; ActorRuntime and ActorKind are thin façades over it. */
class Core {
  readonly now: () => number;
  readonly pending: DeadlineSweeper;
  private readonly system: Ref<never>;
  private readonly shardRefs: Ref<unknown>[] = [];
  /** Per shard: the nact actor that runs the batches of hosted kinds, and what waits for its next message. */
  private readonly hostRefs: Ref<HostedBatches>[] = [];
  private readonly hostPending: (HostedBatches | null)[] = [];
  private readonly shardActors: number[];
  private readonly shardMailbox: number[];
  private readonly kinds = new Map<string, KindState<any>>();
  private readonly coalescer: Coalescer<Incarnation<any>>;
  private idleTimer: NodeJS.Timeout | undefined;
  /** The idle sweep under way (it resumes turn after turn: see sweepSome), if any. */
  private sweep: { kinds: Iterator<KindState<any>>; kind: KindState<any> | undefined; live: Iterator<Incarnation<any>> | undefined } | undefined;
  private readonly sweepPerTurn: number;
  private nextIncarnation = 1;
  closed = false;
  private stopping: Promise<void> | undefined;

  constructor(readonly opts: RuntimeOptions) {
    const { shards, mailboxMax, idleMs, askTimeoutMs } = opts;
    if (!Number.isInteger(shards) || shards < 1) throw new RangeError(`shards must be an integer >= 1, got ${shards}`);
    if (!Number.isInteger(mailboxMax) || mailboxMax < 1) throw new RangeError(`mailboxMax must be an integer >= 1, got ${mailboxMax}`);
    if (!(idleMs >= 0) || !Number.isFinite(idleMs)) throw new RangeError(`idleMs must be a finite number >= 0, got ${idleMs}`);
    if (!(askTimeoutMs > 0) || !Number.isFinite(askTimeoutMs)) throw new RangeError(`askTimeoutMs must be > 0, got ${askTimeoutMs}`);
    this.now = opts.now ?? Date.now;
    this.sweepPerTurn = opts.idleSweepPerTurn ?? IDLE_SWEEP_PER_TURN;
    if (!Number.isInteger(this.sweepPerTurn) || this.sweepPerTurn < 1) throw new RangeError(`idleSweepPerTurn must be an integer >= 1, got ${this.sweepPerTurn}`);
    this.shardActors = new Array<number>(shards).fill(0);
    this.shardMailbox = new Array<number>(shards).fill(0);
    this.system = start();
    for (let i = 0; i < shards; i++) {
      const shardRef = spawn(this.system, (state: undefined) => state, `shard-${i}`);
      this.shardRefs.push(shardRef);
      this.hostRefs.push(
        spawn(shardRef, (state: undefined, batches: HostedBatches) => {
          // Not awaited: a hosted key's async receive must not hold up the other keys of its shard
          // (run() sequences each key and settles its crashes itself). Should the runtime itself throw
          // for one key, that incarnation is discarded and the other keys of the message still run.
          for (const { inc, batch } of batches) {
            try {
              void this.run(inc, batch);
            } catch (error) {
              this.discard(inc, 'crash', error);
            }
          }
          return state;
        }, `host-${i}`, { onCrash: (_msg, _error, ctx) => ctx.resume }),
      );
      this.hostPending.push(null);
    }
    this.coalescer = new Coalescer((inc) => this.flushOne(inc));
    this.pending = new DeadlineSweeper(opts.askNow ?? this.now, clamp(Math.floor(askTimeoutMs / 2), 5, 50));
    this.idleTimer = setInterval(() => this.sweepIdle(), clamp(Math.floor(idleMs / 2), 5, 1000));
    this.idleTimer.unref();
  }

  define<M>(name: string, factory: (key: string) => Behavior<M>, options: KindOptions = {}): KindState<M> {
    if (this.closed) throw new ShuttingDownError();
    if (this.kinds.has(name)) throw new Error(`actor kind '${name}' is already defined`);
    if (options.idleMs !== undefined && !(options.idleMs >= 0 && Number.isFinite(options.idleMs))) {
      throw new RangeError(`idleMs of kind '${name}' must be a finite number >= 0, got ${options.idleMs}`);
    }
    const safeName = name.toLowerCase().replace(/[^a-z0-9_.-]/g, '_') || 'kind';
    const kind: KindState<M> = { name, safeName, factory, live: new Map(), idleMs: options.idleMs, hosted: options.hosted === true };
    this.kinds.set(name, kind);
    return kind;
  }

  // ---- sending ----

  ask<M, A>(kind: KindState<M>, key: string, msg: M, timeoutMs: number | undefined, map: ((reply: any, arg: A) => unknown) | null = null, mapArg?: A): Promise<unknown> {
    if (this.closed) return Promise.reject(new ShuttingDownError());
    let inc = kind.live.get(key);
    if (inc && inc.mailbox >= this.opts.mailboxMax) {
      return Promise.reject(new OverloadedError(`${kind.name}:${key} mailbox full (${this.opts.mailboxMax})`));
    }
    if (!inc) {
      try {
        inc = this.activate(kind, key);
      } catch (cause) {
        return Promise.reject(new ActorCrashedError(`${kind.name}:${key} could not be created`, { cause }));
      }
    }
    const timeout = timeoutMs !== undefined && timeoutMs > 0 && Number.isFinite(timeoutMs) ? timeoutMs : this.opts.askTimeoutMs;
    const target = inc;
    // The promise's executor is one shared function (no closure made per ask, on the hottest path).
    const promise = new Promise(captureSettlers);
    const resolve = capturedResolve!;
    const reject = capturedReject!;
    capturedResolve = capturedReject = undefined;
    try {
      const p = this.pending.add(key, timeout, resolve, reject, map, mapArg);
      this.enqueue(target, { msg, handle: p, self: false }, true);
    } catch (error) {
      reject(error instanceof Error ? error : new Error(String(error)));
    }
    return promise;
  }

  tell<M>(kind: KindState<M>, key: string, msg: M): boolean {
    if (this.closed) return false;
    let inc = kind.live.get(key);
    if (inc && inc.mailbox >= this.opts.mailboxMax) return false;
    if (!inc) {
      try {
        inc = this.activate(kind, key);
      } catch {
        return false;
      }
    }
    this.enqueue(inc, { msg, handle: null, self: false }, true);
    return true;
  }

  notify<M>(kind: KindState<M>, key: string, msg: M, keep = false): boolean {
    const inc = kind.live.get(key);
    if (this.closed || !inc || inc.dead) return false;
    this.enqueue(inc, keep ? { msg, handle: null, self: true, keep } : { msg, handle: null, self: true }, false);
    return true;
  }

  enqueue<M>(inc: Incarnation<M>, env: Env<M>, external: boolean): void {
    inc.buffer.push(env);
    if (external) this.addMailbox(inc, 1);
    if (!inc.running && !inc.marked) {
      inc.marked = true;
      this.coalescer.mark(inc);
    }
  }

  private flushOne(inc: Incarnation<any>): void {
    inc.marked = false;
    if (inc.dead || inc.running || inc.buffer.length === 0) return;
    this.send(inc);
  }

  /** Hands the whole buffer to nact as one message. Only called when no batch is running. */
  private send<M>(inc: Incarnation<M>): void {
    const batch = inc.buffer;
    inc.buffer = [];
    inc.inflight = batch;
    inc.running = true;
    if (inc.ref) {
      dispatch(inc.ref, batch);
      return;
    }
    // Hosted: every batch of this shard made ready in this tick goes to its host in one message.
    const pending = this.hostPending[inc.shard];
    if (pending) {
      pending.push({ inc, batch });
      return;
    }
    const batches: HostedBatches = [{ inc, batch }];
    this.hostPending[inc.shard] = batches;
    queueMicrotask(() => {
      this.hostPending[inc.shard] = null;
      if (!this.closed) dispatch(this.hostRefs[inc.shard]!, batches);
    });
  }

  // ---- receiving (called by nact, one batch at a time per actor) ----

  private run<M>(inc: Incarnation<M>, batch: Env<M>[]): void | Promise<void> {
    if (inc.dead || inc.inflight !== batch) return; // discarded meanwhile: the batch went to the next incarnation
    inc.inflight = null;
    let external = 0;
    let expired = 0;
    for (const env of batch) {
      if (env.self) continue;
      external++;
      const p = env.handle;
      if (!p) continue;
      if (p.settled) {
        expired++; // timed out before reaching the behaviour: never handed over
      } else {
        this.pending.hold(p, inc);
      }
    }
    this.addMailbox(inc, -external);
    const handed = expired === 0 ? batch : batch.filter((e) => !e.handle || !e.handle.settled);
    if (handed.length === 0) return this.done(inc);
    let result: void | Promise<void>;
    try {
      result = inc.behaviour.receive(handed, inc);
    } catch (error) {
      this.discard(inc, 'crash', error);
      return;
    }
    if (result && typeof (result as Promise<void>).then === 'function') {
      return (result as Promise<void>).then(
        () => this.done(inc),
        (error: unknown) => this.discard(inc, 'crash', error),
      );
    }
    this.done(inc);
  }

  private done(inc: Incarnation<any>): void {
    if (inc.dead) return;
    inc.running = false;
    inc.lastActive = this.now();
    if (inc.buffer.length > 0) this.send(inc);
  }

  // ---- lifecycle ----

  private activate<M>(kind: KindState<M>, key: string): Incarnation<M> {
    const shard = shardOf(key, this.opts.shards);
    const inc = new Incarnation<M>(this, kind, key, shard, this.nextIncarnation++);
    inc.behaviour = kind.factory(key);
    inc.ref = kind.hosted ? undefined : spawn(
      this.shardRefs[shard]!,
      (state: undefined, batch: Env<M>[]) => this.run(inc, batch) as unknown as undefined,
      `${kind.safeName}-${inc.id}`,
      {
        // Unreachable unless the runtime itself throws; even then the incarnation is discarded properly
        // instead of nact's default (log and stop, leaving it in our registry).
        onCrash: (_msg, error, ctx) => {
          this.discard(inc, 'crash', error);
          return ctx.stop;
        },
      },
    );
    kind.live.set(key, inc);
    this.shardActors[shard]!++;
    return inc;
  }

  /** Removes the incarnation synchronously; the messages not yet handed to it go to a new one. */
  discard<M>(inc: Incarnation<M>, reason: DiscardReason, cause?: unknown): void {
    if (inc.dead) return;
    inc.dead = true;
    const { kind, key } = inc;
    if (kind.live.get(key) === inc) kind.live.delete(key);
    this.shardActors[inc.shard]!--;
    if (inc.timers) {
      for (const t of inc.timers) clearTimeout(t);
      inc.timers = null;
    }
    if (inc.heldAsks > 0) {
      const err =
        reason === 'shutdown'
          ? new ShuttingDownError()
          : new ActorCrashedError(`${kind.name}:${key} ${reason === 'restart' ? 'restarted' : 'crashed'}`, { cause });
      for (const p of this.pending.heldBy(inc)) this.pending.reject(p, err);
    }
    const undelivered = (inc.inflight ? inc.inflight.concat(inc.buffer) : inc.buffer).filter((e) => !e.self || e.keep === true);
    inc.inflight = null;
    inc.buffer = [];
    this.addMailbox(inc, -inc.mailbox);
    try {
      if (inc.ref) nactStop(inc.ref);
    } catch {
      // already gone
    }
    try {
      inc.behaviour.stopped?.();
    } catch {
      // a failing stopped() must not stop the discard
    }
    if (undelivered.length > 0) this.redeliver(kind, key, undelivered);
  }

  private redeliver<M>(kind: KindState<M>, key: string, carried: Env<M>[]): void {
    // Asks whose caller already gave up would never reach a behaviour: no incarnation is made for
    // them alone (one that never received a batch may never be ready to passivate).
    const envs = carried.filter((e) => e.handle === null || !e.handle.settled);
    if (envs.length === 0) return;
    let inc = this.closed ? undefined : kind.live.get(key);
    if (!inc && !this.closed) {
      try {
        inc = this.activate(kind, key);
      } catch (cause) {
        const err = new ActorCrashedError(`${kind.name}:${key} could not be created`, { cause });
        for (const e of envs) if (e.handle) this.pending.reject(e.handle, err);
        return;
      }
    }
    if (!inc) {
      for (const e of envs) if (e.handle) this.pending.reject(e.handle, new ShuttingDownError());
      return;
    }
    inc.buffer = envs.concat(inc.buffer);
    let counted = 0;
    for (const e of envs) if (!e.self) counted++;
    this.addMailbox(inc, counted);
    if (!inc.running && !inc.marked) {
      inc.marked = true;
      this.coalescer.mark(inc);
    }
  }

  /** Every idle timer tick starts a sweep over every live actor, unless the last one is still under way. */
  private sweepIdle(): void {
    if (this.sweep || this.closed) return;
    this.sweep = { kinds: this.kinds.values(), kind: undefined, live: undefined };
    this.sweepSome();
  }

  /**
   * Looks at up to `sweepPerTurn` live actors and passivates those idle longer than their kind's
   * idleMs (nothing queued, running or held, and canPassivate()); resumes on the next turn while any
   * are left. An actor activated meanwhile is looked at too (a Map's iterator visits what is added
   * during the iteration), and is not idle; one discarded meanwhile is not visited.
   */
  private sweepSome(): void {
    const sweep = this.sweep;
    if (!sweep || this.closed) {
      this.sweep = undefined;
      return;
    }
    const now = this.now();
    let budget = this.sweepPerTurn;
    while (budget > 0) {
      if (!sweep.live || !sweep.kind) {
        const next = sweep.kinds.next();
        if (next.done) {
          this.sweep = undefined;
          return;
        }
        sweep.kind = next.value;
        sweep.live = next.value.live.values();
      }
      const step = sweep.live.next();
      if (step.done) {
        sweep.live = undefined;
        continue;
      }
      budget--;
      const inc = step.value;
      if (inc.running || inc.buffer.length > 0 || inc.mailbox > 0 || inc.heldAsks > 0) continue;
      if (now - inc.lastActive <= (sweep.kind.idleMs ?? this.opts.idleMs)) continue;
      let ok: boolean;
      try {
        ok = inc.behaviour.canPassivate ? inc.behaviour.canPassivate() : true;
      } catch (error) {
        this.discard(inc, 'crash', error);
        continue;
      }
      if (ok) this.discard(inc, 'passivate');
    }
    setImmediate(() => this.sweepSome()).unref();
  }

  private addMailbox(inc: Incarnation<any>, n: number): void {
    inc.mailbox += n;
    this.shardMailbox[inc.shard]! += n;
  }

  stats(): RuntimeStats {
    const byKind: Record<string, number> = {};
    let actors = 0;
    for (const kind of this.kinds.values()) {
      byKind[kind.name] = kind.live.size;
      actors += kind.live.size;
    }
    const node = this.opts.nodeId;
    return {
      nodeId: node,
      shards: this.shardActors.map((n, shard) => ({ shard, node, actors: n, mailbox: this.shardMailbox[shard]! })),
      actors,
      byKind,
    };
  }

  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    this.closed = true;
    this.pending.close();
    if (this.idleTimer) clearInterval(this.idleTimer);
    this.idleTimer = undefined;
    this.coalescer.close();
    this.pending.rejectAll((p) => new ShuttingDownError(`runtime stopped before '${p.actorKey}' replied`));
    for (const kind of this.kinds.values()) {
      for (const inc of [...kind.live.values()]) this.discard(inc, 'shutdown');
    }
    // nact's stop() does not reach children, so every actor was stopped above, one by one.
    for (const ref of this.hostRefs) nactStop(ref);
    for (const ref of this.shardRefs) nactStop(ref);
    this.hostRefs.length = 0;
    nactStop(this.system);
    this.shardRefs.length = 0;
    // nact runs each stopped actor's afterStop in a setImmediate: let those go before resolving.
    this.stopping = new Promise((resolve) => setImmediate(resolve));
    return this.stopping;
  }
}

/** The actor runtime of one node: define kinds, then ask/tell keys of them. */
export class ActorRuntime {
  readonly #core: Core;

  constructor(opts: RuntimeOptions) {
    this.#core = new Core(opts);
  }

  /** Declares a kind of actor; `factory` makes the behaviour of a key's new incarnation. Names are unique. */
  define<M>(kind: string, factory: (key: string) => Behavior<M>, options: KindOptions = {}): ActorKind<M> {
    return new ActorKind<M>(this.#core, this.#core.define(kind, factory, options));
  }

  stats(): RuntimeStats {
    return this.#core.stats();
  }

  /** Stops every actor (children too), rejects every pending ask with ShuttingDownError, clears the sweeper timers; idempotent. */
  stop(): Promise<void> {
    return this.#core.stop();
  }
}

/** Handle on one kind of actor: its keys are activated on first message. */
export class ActorKind<M> {
  readonly #core: Core;
  readonly #kind: KindState<M>;

  /** @internal Use ActorRuntime.define. */
  constructor(core: Core, kind: KindState<M>) {
    this.#core = core;
    this.#kind = kind;
  }

  get name(): string {
    return this.#kind.name;
  }

  /** Rejects OverloadedError at once when the key's mailbox is at mailboxMax, AskTimeoutError after timeoutMs (default askTimeoutMs), ActorCrashedError if the incarnation holding it is discarded, ShuttingDownError on stop. */
  ask<R>(key: string, msg: M, timeoutMs?: number): Promise<R> {
    return this.#core.ask(this.#kind, key, msg, timeoutMs) as Promise<R>;
  }

  /**
   * ask, resolved with map(reply, arg) instead of the reply (rejected with what map throws), without
   * a second promise and closure waiting on the first: for an ask a hot path waits on long (a group
   * commit), where every object it keeps alive is copied by each scavenge meanwhile. `map` should be
   * a function of its arguments only (no closure allocated per ask).
   */
  askMapped<T, R, A>(key: string, msg: M, map: (reply: T, arg: A) => R, arg: A, timeoutMs?: number): Promise<R> {
    return this.#core.ask(this.#kind, key, msg, timeoutMs, map, arg) as Promise<R>;
  }

  /** False (and dropped) when overloaded or shutting down. */
  tell(key: string, msg: M): boolean {
    return this.#core.tell(this.#kind, key, msg);
  }

  /**
   * A tell that must not be dropped (a settlement another actor depends on, e.g. a buyer's hold
   * released): a live incarnation takes it past the mailbox bound (as notify), otherwise one is
   * activated for it. False only when shutting down or the actor cannot be made. Kept until it is
   * handed to a behaviour's receive: one still queued when its incarnation is discarded goes to the
   * next, but one handed over in a batch whose receive then restarts or crashes before reaching it is
   * not (the runtime cannot tell how far the receive got). A kind that restarts itself mid-batch
   * (inventory, delivery) is therefore sent no tellAlways it cannot have again by other means: the
   * limit actors, which take them, never restart themselves.
   */
  tellAlways(key: string, msg: M): boolean {
    return this.#core.notify(this.#kind, key, msg, true) || this.#core.tell(this.#kind, key, msg);
  }

  /**
   * A control message for the live incarnation of `key` (e.g. "the read model has your events up to
   * seq n"): never activates one, and is not held to the mailbox bound (like a message to self), so a
   * full mailbox cannot drop it. False when no incarnation is live (or shutting down).
   */
  notify(key: string, msg: M): boolean {
    return this.#core.notify(this.#kind, key, msg);
  }

  /** A live incarnation exists. */
  has(key: string): boolean {
    return this.#kind.live.has(key);
  }

  /** The live behaviour object (for ops reads), without activating. */
  behavior(key: string): Behavior<M> | undefined {
    return this.#kind.live.get(key)?.behaviour;
  }

  mailboxDepth(key: string): number {
    return this.#kind.live.get(key)?.mailbox ?? 0;
  }

  /** Keys with a live incarnation. */
  keys(): IterableIterator<string> {
    return this.#kind.live.keys();
  }

  shardOf(key: string): number {
    return shardOf(key, this.#core.opts.shards);
  }
}
