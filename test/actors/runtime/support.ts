// Small helpers shared by the runtime tests: a manual promise, waiting for a condition, a runtime factory.
import { ActorRuntime, type RuntimeOptions } from '../../../actors/runtime/index.ts';

export interface Deferred<T = void> {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

export const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every few ms; throws if it is still false after `ms`. */
export async function until(cond: () => boolean, ms = 2000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

/** How a kind's actors run on nact: each its own nact actor, or hosted by its shard's nact actor (KindOptions.hosted). */
export type Hosting = 'own nact actor' | 'hosted by shard';
/** Every runtime suite runs once per hosting: both must keep the same guarantees. */
export const HOSTINGS: Hosting[] = ['own nact actor', 'hosted by shard'];

export function runtime(opts: Partial<RuntimeOptions> = {}, hosting: Hosting = 'own nact actor'): ActorRuntime {
  const rt = new ActorRuntime({ shards: 4, mailboxMax: 1000, idleMs: 60_000, askTimeoutMs: 5_000, nodeId: 'test-node', ...opts });
  if (hosting === 'hosted by shard') {
    const define = rt.define.bind(rt);
    rt.define = ((kind, factory, options = {}) => define(kind, factory, { ...options, hosted: true })) as typeof rt.define;
  }
  return rt;
}
