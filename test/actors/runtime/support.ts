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

export function runtime(opts: Partial<RuntimeOptions> = {}): ActorRuntime {
  return new ActorRuntime({ shards: 4, mailboxMax: 1000, idleMs: 60_000, askTimeoutMs: 5_000, nodeId: 'test-node', ...opts });
}
