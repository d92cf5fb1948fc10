// Proves crash handling: when receive throws or rejects (or calls ctx.restart()), every ask the incarnation holds rejects ActorCrashedError with the error as cause, stopped() runs once, its timers and late self() messages are dropped, and the next or already queued messages (a tellAlways among them, a notify not; asks already timed out make no new incarnation) are served by a fresh incarnation from the factory, without nact logging or stopping anything.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ActorCrashedError, type ActorContext, type ActorRuntime, type Envelope } from '../../../actors/runtime/index.ts';
import { deferred, runtime, sleep, until, HOSTINGS } from './support.ts';

type Msg = { t: 'hold' | 'get' | 'boom' | 'asyncBoom' | 'reset' | 'arm' | 'mark' };

describe.each(HOSTINGS)('crash (%s)', (hosting) => {
  let rt: ActorRuntime;
  let logSpy: ReturnType<typeof vi.spyOn>;
  let incarnations: number;
  let stoppedCalls: number[];
  let received: { inc: number; t: string }[];
  let contexts: ActorContext<Msg>[];
  const boomError = new Error('boom');
  let asyncGate = deferred();

  beforeEach(() => {
    logSpy = vi.spyOn(console, 'log');
    incarnations = 0;
    stoppedCalls = [];
    received = [];
    contexts = [];
    asyncGate = deferred();
  });
  afterEach(async () => {
    await rt.stop();
    expect(logSpy).not.toHaveBeenCalled(); // nact's default supervision logs before stopping an actor
    vi.restoreAllMocks();
  });

  function define() {
    return rt.define<Msg>('fragile', () => {
      const inc = ++incarnations;
      const held: Envelope<Msg>[] = [];
      return {
        async receive(batch: Envelope<Msg>[], ctx: ActorContext<Msg>) {
          contexts[inc] = ctx;
          for (const e of batch) {
            received.push({ inc, t: e.msg.t });
            switch (e.msg.t) {
              case 'hold':
                held.push(e);
                break;
              case 'get':
              case 'mark':
                ctx.reply(e, inc);
                break;
              case 'arm':
                ctx.schedule(100, { t: 'mark' });
                ctx.reply(e, inc);
                break;
              case 'boom':
                throw boomError;
              case 'asyncBoom':
                await asyncGate.promise;
                throw boomError;
              case 'reset':
                ctx.restart();
                break;
            }
          }
        },
        stopped() {
          stoppedCalls.push(inc);
        },
      };
    });
  }

  it('rejects held and same-batch asks with ActorCrashedError, then serves from a fresh incarnation', async () => {
    rt = runtime({}, hosting);
    const kind = define();
    const hold = kind.ask('k', { t: 'hold' });
    await until(() => received.length === 1);
    const get1 = kind.ask('k', { t: 'get' });
    const boom = kind.ask('k', { t: 'boom' });
    const get2 = kind.ask('k', { t: 'get' }); // same batch, after the throw: never reached
    expect(await get1).toBe(1);
    for (const p of [hold, boom, get2]) {
      const err = await p.catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ActorCrashedError);
      expect((err as Error).cause).toBe(boomError);
    }
    expect(stoppedCalls).toEqual([1]);
    expect(kind.has('k')).toBe(false);
    expect(await kind.ask('k', { t: 'get' })).toBe(2);
    expect(kind.has('k')).toBe(true);
  });

  it('on an async rejection, hands messages queued behind the crash to the new incarnation and drops the dead one’s timers and late self()', async () => {
    rt = runtime({}, hosting);
    const kind = define();
    expect(await kind.ask('k', { t: 'arm' })).toBe(1); // schedules a 'mark' in 100 ms on incarnation 1
    const dead = contexts[1]!;
    const boom = kind.ask('k', { t: 'asyncBoom' });
    await until(() => received.some((r) => r.t === 'asyncBoom'));
    const queued = kind.ask('k', { t: 'get' }); // arrives while the failing receive is running
    kind.tell('k', { t: 'hold' });
    expect(kind.mailboxDepth('k')).toBe(2);
    asyncGate.resolve();
    await expect(boom).rejects.toBeInstanceOf(ActorCrashedError);
    expect(await queued).toBe(2);
    await until(() => received.length === 4);
    expect(received.filter((r) => r.inc === 2).map((r) => r.t)).toEqual(['get', 'hold']); // in order
    dead.self({ t: 'mark' }); // late self() of the dead incarnation
    await sleep(150); // past the scheduled 'mark'
    expect(received.filter((r) => r.t === 'mark')).toEqual([]);
    expect(stoppedCalls).toEqual([1]);
    expect(rt.stats().actors).toBe(1);
  });

  it('treats ctx.restart() like a crash: held asks rejected, next message gets a new incarnation', async () => {
    rt = runtime({}, hosting);
    const kind = define();
    const hold = kind.ask('k', { t: 'hold' });
    await until(() => received.length === 1);
    kind.tell('k', { t: 'reset' });
    const err = await hold.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ActorCrashedError);
    expect(stoppedCalls).toEqual([1]);
    expect(await kind.ask('k', { t: 'get' })).toBe(2);
  });

  it('hands a tellAlways queued behind a restart to the next incarnation, as it does a tell (a notify goes with the dead one)', async () => {
    rt = runtime({}, hosting);
    const kind = define();
    const boom = kind.ask('k', { t: 'asyncBoom' });
    await until(() => received.length === 1);
    // Queued while the first incarnation is in its receive: a tellAlways to the live key passes the
    // mailbox bound (it is not counted), and must not be lost when that incarnation is discarded.
    expect(kind.tellAlways('k', { t: 'get' })).toBe(true);
    expect(kind.notify('k', { t: 'mark' })).toBe(true);
    expect(kind.tell('k', { t: 'hold' })).toBe(true);
    asyncGate.resolve();
    await expect(boom).rejects.toBeInstanceOf(ActorCrashedError);
    await until(() => received.filter((r) => r.inc === 2).length === 2);
    expect(received.filter((r) => r.inc === 2).map((r) => r.t)).toEqual(['get', 'hold']);
    expect(kind.mailboxDepth('k')).toBe(0);
  });

  it('makes no new incarnation for a discarded one\'s asks whose callers already gave up', async () => {
    rt = runtime({ askTimeoutMs: 100 }, hosting);
    const kind = define();
    const boom = kind.ask('k', { t: 'asyncBoom' }, 1_000);
    await until(() => received.length === 1);
    // Queued behind the crash, and timed out before it: nothing is left for a new incarnation.
    const late = kind.ask('k', { t: 'get' }).catch((e: unknown) => e);
    await sleep(200);
    asyncGate.resolve();
    await expect(boom).rejects.toBeInstanceOf(ActorCrashedError);
    expect((await late as Error).name).toBe('AskTimeoutError');
    await sleep(20);
    expect(incarnations).toBe(1);
    expect(kind.has('k')).toBe(false);
    // The next message gets one.
    expect(await kind.ask('k', { t: 'get' })).toBe(2);
  });

  it('survives a factory that throws', async () => {
    rt = runtime({}, hosting);
    let fail = true;
    const kind = rt.define<Msg>('picky', () => {
      if (fail) throw new Error('no recovery');
      return { receive: (b, ctx) => b.forEach((e) => ctx.reply(e, 'ok')) };
    });
    const err = await kind.ask('k', { t: 'get' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ActorCrashedError);
    expect(((err as Error).cause as Error).message).toBe('no recovery');
    expect(kind.tell('k', { t: 'get' })).toBe(false);
    fail = false;
    expect(await kind.ask('k', { t: 'get' })).toBe('ok');
  });
});
