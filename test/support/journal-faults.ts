// A fault-injecting wrapper around a live node's JournalStore: it counts appends and can hold each
// one until the test releases it (then the real store writes it), fail it (nothing is written), or
// delay it. It replaces `append` on the store object itself, which the GroupCommitter holds.
import { afterEach } from 'vitest';
import type { JournalRecord, JournalStore } from '../../persistence/ports.ts';

export interface HeldAppend {
  records: readonly JournalRecord[];
  /** Lets the real store write it; resolves once the wrapper's append has resolved. */
  release(): Promise<void>;
  /** Rejects the append with `error`; the real store never sees it. */
  fail(error: Error): Promise<void>;
}

export interface JournalFaults {
  /** Every append, in call order (held, failed and passed alike). */
  readonly calls: (readonly JournalRecord[])[];
  /** Appends waiting for the test (only while `hold` is on). */
  readonly held: HeldAppend[];
  /** Hold every append until released or failed. */
  hold: boolean;
  /** Delay every passed-through append by this many ms. */
  delay_ms: number;
  /** Called right after the real store's append resolved, before the wrapper's promise resolves. */
  onDurable: ((records: readonly JournalRecord[]) => void) | undefined;
  /** Appends to streams not matching this are passed straight through, uncounted. */
  only: ((stream: string) => boolean) | undefined;
  restore(): void;
}

export function injectJournalFaults(journal: JournalStore): JournalFaults {
  const original = journal.append;
  const write = (records: readonly JournalRecord[]) => original.call(journal, records);
  const f: JournalFaults = {
    calls: [],
    held: [],
    hold: false,
    delay_ms: 0,
    onDurable: undefined,
    only: undefined,
    restore: () => {
      journal.append = original;
    },
  };
  journal.append = async (records) => {
    if (f.only && !records.every((r) => f.only!(r.stream))) return write(records);
    f.calls.push(records);
    let finished: (() => void) | undefined;
    if (f.hold) {
      let open!: () => void;
      let refuse!: (error: Error) => void;
      const gate = new Promise<void>((resolve, reject) => ((open = resolve), (refuse = reject)));
      const done = new Promise<void>((r) => (finished = r));
      f.held.push({
        records,
        release: () => (open(), done),
        fail: (error) => (refuse(error), done),
      });
      try {
        await gate;
      } catch (error) {
        finished!();
        throw error;
      }
    }
    try {
      if (f.delay_ms > 0) await new Promise((r) => setTimeout(r, f.delay_ms));
      await write(records);
      f.onDurable?.(records);
    } finally {
      finished?.();
    }
  };
  return f;
}

/** Polls `check` until true; throws after `timeout_ms`. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeout_ms = 10_000, what = 'condition'): Promise<void> {
  const until = Date.now() + timeout_ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A test's cleanup: lets every held append through, puts the journal back, stops the engine. */
export async function releaseAndStop(faults: JournalFaults | undefined, engine: { stop(): Promise<void> } | undefined): Promise<void> {
  if (faults) for (const h of faults.held) void h.release();
  faults?.restore();
  await engine?.stop();
}

/**
 * A test's engine and journal faults, released and stopped after each test (it registers the
 * afterEach): `const t = engineUnderTest<TestEngine>(); ... const e = (t.engine = await startEngine(...)); t.faults = injectJournalFaults(...)`.
 */
export function engineUnderTest<E extends { stop(): Promise<void> }>(): { engine: E | undefined; faults: JournalFaults | undefined } {
  const slot: { engine: E | undefined; faults: JournalFaults | undefined } = { engine: undefined, faults: undefined };
  afterEach(async () => {
    await releaseAndStop(slot.faults, slot.engine);
    slot.engine = undefined;
    slot.faults = undefined;
  });
  return slot;
}

/** Records the stream of every `readAfter` of `journal` whose stream starts with `prefix` (from now on). */
export function watchReads(journal: JournalStore, prefix: string): string[] {
  const original = journal.readAfter;
  const reads: string[] = [];
  journal.readAfter = (stream, afterSeq) => {
    if (stream.startsWith(prefix)) reads.push(stream);
    return original.call(journal, stream, afterSeq);
  };
  return reads;
}
