// Proves the per-key queue: a key's work runs one at a time in the order it came, a failure does not
// hold up the work after it, other keys are not held up, and a key is forgotten once it is idle.
import { describe, expect, it } from 'vitest';
import { KeyedQueue } from '../../actors/keyed-queue.ts';

describe('KeyedQueue', () => {
  it('runs a key\'s work in order, one at a time, past a failure, without holding other keys', async () => {
    const q = new KeyedQueue();
    const log: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const first = q.run('a', async () => {
      log.push('a1 start');
      await held;
      log.push('a1 end');
      throw new Error('a1 failed');
    });
    const second = q.run('a', async () => {
      log.push('a2');
      return 2;
    });
    expect(await q.run('b', async () => (log.push('b1'), 'b'))).toBe('b');
    release();
    await expect(first).rejects.toThrow('a1 failed');
    expect(await second).toBe(2);
    expect(log).toEqual(['a1 start', 'b1', 'a1 end', 'a2']);
    await new Promise((r) => setTimeout(r, 0));
    expect((q as unknown as { tails: Map<string, unknown> }).tails.size).toBe(0);
  });
});
