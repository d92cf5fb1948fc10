// Proves the idempotency gate keeps an answer in memory for its retention time and no longer, so its
// memory follows recent traffic: within it a key replays its first answer (even one kept only here, a
// 404), past it the entry is gone at the next request and the key runs again (its durable answer, if
// any, comes from the store), and a concurrent request shares one execution; and that one buyer minting
// keys cannot fill it for everyone: past its share that buyer is turned away (busy), others are not.
import { describe, expect, it } from 'vitest';
import { IdempotencyGate, type Answer } from '../../http/idempotency.ts';

describe('idempotency gate', () => {
  it('replays within its retention, forgets after it, and shares one execution between concurrent requests', async () => {
    let now = 1_000_000;
    const gate = new IdempotencyGate({ entries_max: 1_000, keep_min_ms: 60_000, retain_ms: 600_000, now: () => now });
    let executions = 0;
    const run = (user: string, key: string, status = 404): Promise<Answer | 'reused' | 'busy'> =>
      gate.run(user, key, 'h', async () => undefined, async () => ({ status, body: { n: ++executions } }));

    const [a, b] = await Promise.all([run('u1', 'k1'), run('u1', 'k1')]);
    expect(a).toEqual({ status: 404, body: { n: 1 } });
    expect(b).toEqual(a);
    now += 599_000;
    expect(await run('u1', 'k1')).toEqual({ status: 404, body: { n: 1 } });
    expect(gate.size).toBe(1);
    expect(await gate.run('u1', 'k1', 'other-hash', async () => undefined, async () => ({ status: 201, body: {} }))).toBe('reused');

    // Past the retention: the next request (any key) drops it, and the key runs again.
    now += 2_000;
    expect(await run('u2', 'k2')).toEqual({ status: 404, body: { n: 2 } });
    expect(gate.size).toBe(1);
    expect(await run('u1', 'k1')).toEqual({ status: 404, body: { n: 3 } });
    expect(gate.size).toBe(2);
  });

  it('after a 5xx or a throw runs the same body again, but answers another body with the key `reused`', async () => {
    const gate = new IdempotencyGate({ entries_max: 1_000, keep_min_ms: 60_000, retain_ms: 600_000, now: () => 1_000 });
    const answers: Answer[] = [{ status: 503, body: { error: 'unavailable' } }, { status: 201, body: { orderId: 'o1' } }];
    let executions = 0;
    const run = (hash: string) => gate.run('u', 'k', hash, async () => undefined, async () => answers[executions++]!);
    expect(await run('body-a')).toEqual(answers[0]);
    // The first request's outcome is unknown (it may own an order): another body with its key is refused.
    expect(await run('body-b')).toBe('reused');
    expect(executions).toBe(1);
    expect(await run('body-a')).toEqual(answers[1]);
    expect(await run('body-a')).toEqual(answers[1]);
    expect(executions).toBe(2);

    let fail = true;
    const thrown = (hash: string) =>
      gate.run('u', 'k2', hash, async () => undefined, async () => {
        if (fail) throw new Error('injected');
        return { status: 201, body: { orderId: 'o2' } };
      });
    await expect(thrown('body-a')).rejects.toThrow('injected');
    expect(await thrown('body-b')).toBe('reused');
    fail = false;
    expect(await thrown('body-a')).toEqual({ status: 201, body: { orderId: 'o2' } });
  });

  it('full of young answers (keys faster than it holds), makes room with the oldest settled ones, never with a request still running — and never refuses everyone', async () => {
    const now = 1_000_000;
    const gate = new IdempotencyGate({ entries_max: 3, keep_min_ms: 60_000, retain_ms: 600_000, now: () => now });
    let executions = 0;
    const run = (user: string, key: string, hash = 'h', stored: () => Promise<undefined | { status: number; body: unknown; requestHash: string; createdAt: number }> = async () => undefined) =>
      gate.run(user, key, hash, stored, async () => ({ status: 201, body: { n: ++executions } }));
    // One request still running, two settled.
    let finish!: (a: Answer) => void;
    const running = gate.run('slow', 'k', 'h', async () => undefined, () => new Promise<Answer>((r) => (finish = r)));
    for (const u of ['b1', 'b2']) await run(u, 'k');
    expect(gate.size).toBe(3);
    // A new key: the oldest settled entry (b1's) makes room; the running one stays and is shared.
    expect(await run('alice', 'a1')).toEqual({ status: 201, body: { n: 3 } });
    expect(gate.size).toBe(3);
    const twin = gate.run('slow', 'k', 'h', async () => undefined, async () => ({ status: 500, body: {} }));
    finish({ status: 201, body: { slow: true } });
    expect(await running).toEqual({ status: 201, body: { slow: true } });
    expect(await twin).toEqual({ status: 201, body: { slow: true } });
    // b1's retry: its durable answer (the store's), another body 422; it is not run again.
    const durable = async () => ({ status: 201, body: { n: 1 }, requestHash: 'h', createdAt: now });
    expect(await run('b1', 'k', 'h', durable)).toEqual({ status: 201, body: { n: 1 } });
    expect(await run('b1', 'k', 'other', durable)).toBe('reused');
    expect(executions).toBe(3);
    expect(gate.size).toBe(3);
  });

  it('full of requests still running, runs a new key without an entry: its durable answer, or the request', async () => {
    const gate = new IdempotencyGate({ entries_max: 2, keep_min_ms: 60_000, retain_ms: 600_000, now: () => 1_000 });
    const hang = () => new Promise<Answer>(() => {});
    void gate.run('s1', 'k', 'h', async () => undefined, hang);
    void gate.run('s2', 'k', 'h', async () => undefined, hang);
    expect(await gate.run('alice', 'a1', 'h', async () => undefined, async () => ({ status: 201, body: { ok: 1 } }))).toEqual({ status: 201, body: { ok: 1 } });
    expect(gate.size).toBe(2);
  });

  it('turns away a buyer holding too many keys (busy), not the others, until that buyer\'s keys age out', async () => {
    let now = 1_000_000;
    const gate = new IdempotencyGate({ entries_max: 1_000, keep_min_ms: 60_000, retain_ms: 600_000, per_user_max: 50, now: () => now });
    const run = (user: string, key: string) => gate.run(user, key, 'h', async () => undefined, async () => ({ status: 404, body: {} }));
    for (let i = 0; i < 50; i++) expect(await run('bot', `k${i}`)).toEqual({ status: 404, body: {} });
    expect(await run('bot', 'k-one-more')).toBe('busy');
    // A key of its own whose first answer is durable (gone from memory) still gets that answer.
    const stored = async () => ({ status: 201, body: { orderId: 'o-old' }, requestHash: 'h', createdAt: now - 3_600_000 });
    expect(await gate.run('bot', 'k-from-yesterday', 'h', stored, async () => ({ status: 500, body: {} }))).toEqual({ status: 201, body: { orderId: 'o-old' } });
    expect(await gate.run('bot', 'k-from-yesterday', 'other', stored, async () => ({ status: 500, body: {} }))).toMatchObject({ status: 422 });
    // Its own keys still replay, and another buyer is served.
    expect(await run('bot', 'k7')).toEqual({ status: 404, body: {} });
    expect(await run('alice', 'a1')).toEqual({ status: 404, body: {} });
    // Once its keys age out, it is served again.
    now += 601_000;
    for (let i = 0; i < 3; i++) await run('alice', `a-later-${i}`);
    expect(await run('bot', 'k-one-more')).toEqual({ status: 404, body: {} });
  });
});
