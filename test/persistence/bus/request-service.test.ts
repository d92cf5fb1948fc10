// Proves serveRequests answers each request once through its queue group, turns a throwing handler
// into the contract's `unavailable` reply without its message, answers `overloaded` beyond its
// in-flight bound (checked after the caller's admission), stops answering after stop(), and answers no reply subject that is not a
// requester's inbox (the engine's own inboxes included), on the shared NATS server.
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveRequests } from '../../../persistence/bus/request-service.ts';
import { nats_url, uniqueSuffix, waitFor } from './support.ts';

const subjectBase = `stampede_test_${uniqueSuffix().toLowerCase()}.cmd`;
const decoder = new TextDecoder();

describe('request/reply services on NATS', () => {
  let server: NatsConnection;
  let client: NatsConnection;
  beforeAll(async () => {
    server = await connect({ servers: nats_url, timeout: 2_000 });
    client = await connect({ servers: nats_url, timeout: 2_000 });
  });
  afterAll(async () => {
    await Promise.all([server?.close(), client?.close()]);
  });

  const ask = async (subject: string, body: string) => decoder.decode((await client.request(subject, body, { timeout: 2_000 })).data);

  it('answers through one member of the queue group, with the handler reply as bytes or text', async () => {
    const subject = `${subjectBase}.m1.echo`;
    const handled: string[] = [];
    const a = serveRequests(server, `${subjectBase}.*.echo`, 'echo', async (data, subj) => {
      handled.push('a');
      return `a:${subj}:${decoder.decode(data)}`;
    });
    const b = serveRequests(server, `${subjectBase}.*.echo`, 'echo', async (data) => {
      handled.push('b');
      return new TextEncoder().encode(`b::${decoder.decode(data)}`);
    });
    await server.flush();
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => ask(subject, `hi${i}`)));
    for (const [i, reply] of replies.entries()) expect(reply).toMatch(new RegExp(`^(a:${subject.replaceAll('.', '\\.')}|b:):hi${i}$`));
    expect(handled).toHaveLength(20); // each request handled once, not once per member
    await Promise.all([a.stop(), b.stop()]);
  });

  it('answers unavailable when the handler throws, and overloaded beyond its bound', async () => {
    const failing = serveRequests(server, `${subjectBase}.fail`, 'fail', async () => {
      throw new Error('secret detail');
    });
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    let running = 0;
    const slow = serveRequests(
      server,
      `${subjectBase}.slow`,
      'slow',
      async () => {
        running += 1;
        await gate;
        return '{"ok":true}';
      },
      { inFlightMax: 2 },
    );
    await server.flush();
    const failed = JSON.parse(await ask(`${subjectBase}.fail`, '{}')) as Record<string, unknown>;
    expect(failed).toMatchObject({ ok: false, error: 'unavailable' });
    expect(JSON.stringify(failed)).not.toContain('secret detail');

    const held = [ask(`${subjectBase}.slow`, '1'), ask(`${subjectBase}.slow`, '2')];
    await waitFor('two in flight', () => running === 2);
    expect(JSON.parse(await ask(`${subjectBase}.slow`, '3'))).toMatchObject({ ok: false, error: 'overloaded', retryAfter_s: 1 });
    release();
    expect(await Promise.all(held)).toEqual(['{"ok":true}', '{"ok":true}']);
    await Promise.all([failing.stop(), slow.stop()]);
  });

  it("checks the caller's admission (a per-key bound) before its own bound: requests the admission refuses take none of its places", async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const inFlight = new Map<string, number>();
    const keyOf = (subject: string) => subject.split('.').at(-2)!;
    const service = serveRequests(
      server,
      `${subjectBase}.admit.*.q`,
      'admit',
      async (data) => {
        await gate;
        return `done ${decoder.decode(data)}`;
      },
      {
        inFlightMax: 2,
        admission: {
          enter: (subject) => {
            const n = inFlight.get(keyOf(subject)) ?? 0;
            if (n >= 1) return '{"ok":false,"error":"overloaded","message":"this key"}';
            inFlight.set(keyOf(subject), n + 1);
            return undefined;
          },
          leave: (subject) => inFlight.set(keyOf(subject), inFlight.get(keyOf(subject))! - 1),
        },
      },
    );
    await server.flush();
    // One key floods; another key's request comes right behind.
    const flood = Array.from({ length: 10 }, (_, i) => ask(`${subjectBase}.admit.a.q`, `a${i}`));
    const other = ask(`${subjectBase}.admit.b.q`, 'b');
    const refused = await Promise.all(flood.slice(1));
    expect(refused.every((r) => r.includes('this key'))).toBe(true);
    release();
    expect(await Promise.all([flood[0], other])).toEqual(['done a0', 'done b']);
    // Each answered request left its key's count: the key is admitted again.
    expect(await ask(`${subjectBase}.admit.a.q`, 'again')).toBe('done again');
    expect([...inFlight.values()]).toEqual([0, 0]);
    await service.stop();
  });

  it('stops answering after stop(), letting the request in flight finish', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    let started = false;
    const service = serveRequests(server, `${subjectBase}.stop`, 'stop', async () => {
      started = true;
      await gate;
      return 'done';
    });
    await server.flush();
    const inFlight = ask(`${subjectBase}.stop`, 'x');
    await waitFor('the request to start', () => started);
    const stopping = service.stop();
    release();
    await stopping;
    expect(await inFlight).toBe('done');
    await expect(client.request(`${subjectBase}.stop`, 'y', { timeout: 1_000 })).rejects.toThrow();
  });

  it("answers internal when the handler's reply is over the broker's max_payload, instead of leaving the requester waiting", async () => {
    const big = 'x'.repeat(server.info!.max_payload + 1);
    const service = serveRequests(server, `${subjectBase}.big`, 'big', async () => big);
    await server.flush();
    expect(JSON.parse(await ask(`${subjectBase}.big`, 'q'))).toMatchObject({ ok: false, error: 'internal' });
    await service.stop();
  });

  it('publishes no reply to a reply subject that is not an inbox ($JS API, the engine\'s subjects), and still answers an inbox', async () => {
    const refused: string[] = [];
    let handled = 0;
    const service = serveRequests(
      server,
      `${subjectBase}.guarded`,
      'guarded',
      async () => {
        handled++;
        return '{"ok":false,"error":"invalid_request"}';
      },
      { onRefusedReply: (reply) => refused.push(reply) },
    );
    await server.flush();
    // Where a hostile requester would aim the engine's answer, each watched by a subscriber.
    const targets = [`$JS.API.STREAM.INFO.${subjectBase.replaceAll('.', '_')}`, `stampede.evt.victim_${subjectBase.split('.')[0]}.order.paid`, `${subjectBase}.wild.*`];
    const seen: string[] = [];
    const watchers = targets.map((t) => client.subscribe(t, { callback: (_e, m) => seen.push(m.subject) }));
    await client.flush();
    for (const t of targets) client.publish(`${subjectBase}.guarded`, 'junk', { reply: t });
    await client.flush();
    // A plain inbox is still answered (and this request, sent after them, is handled after them).
    expect(await ask(`${subjectBase}.guarded`, 'junk')).toBe('{"ok":false,"error":"invalid_request"}');
    await new Promise((r) => setTimeout(r, 100));
    expect(seen).toEqual([]);
    expect(refused).toEqual(targets);
    expect(handled).toBe(1);
    for (const w of watchers) w.unsubscribe();
    await service.stop();
  });

  it("publishes no reply under the engine's own inbox prefixes (where its JetStream acks come back), and still answers other inboxes", async () => {
    const engineInboxes = `_INBOX.${subjectBase.replaceAll('.', '_')}_engine`;
    const refused: string[] = [];
    let handled = 0;
    const service = serveRequests(
      server,
      `${subjectBase}.own`,
      'own',
      async () => {
        handled++;
        return '{"ok":false,"error":"invalid_request"}';
      },
      { engineInboxPrefixes: [engineInboxes], onRefusedReply: (reply) => refused.push(reply) },
    );
    await server.flush();
    const seen: string[] = [];
    const watcher = client.subscribe(`${engineInboxes}.>`, { callback: (_e, m) => seen.push(m.subject) });
    // The prefix's own tokens only: a longer token that begins the same is another inbox.
    const neighbour = `${engineInboxes}x.abc`;
    const answered: string[] = [];
    const neighbourWatch = client.subscribe(neighbour, { callback: (_e, m) => answered.push(decoder.decode(m.data)) });
    await client.flush();
    const targets = [`${engineInboxes}.pub.7`, `${engineInboxes}.AbC123.0`];
    for (const t of targets) client.publish(`${subjectBase}.own`, '', { reply: t });
    client.publish(`${subjectBase}.own`, '', { reply: neighbour });
    await client.flush();
    // Sent after them, so handled after them.
    expect(await ask(`${subjectBase}.own`, '')).toBe('{"ok":false,"error":"invalid_request"}');
    await client.flush();
    expect(seen).toEqual([]);
    expect(refused).toEqual(targets);
    expect(answered).toEqual(['{"ok":false,"error":"invalid_request"}']);
    expect(handled).toBe(2);
    watcher.unsubscribe();
    neighbourWatch.unsubscribe();
    await service.stop();
  });
});
