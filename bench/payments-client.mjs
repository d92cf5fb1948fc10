// The payment provider and the merchant's subscriber of `npm run bench:payments`, on a worker thread
// of their own: a provider's callbacks and a merchant's event consumer are other machines, so they
// must not queue behind the engine's event loop (nor take its time). Sharing the engine's thread, the
// client sent up to ~20 ms late and the subscriber stamped deliveries late whenever the engine was
// busy, and undici and the subscriber took ~8% of the engine's thread.
//
// Times sent back are on the main thread's clock (its performance.now()): a worker's clock has its
// own origin, so each time is shifted by the difference of the two `performance.timeOrigin`s.
//
// Messages from the main thread:
//   { type: 'subscribe', id, natsUrl, subjects } → connects, subscribes, answers { type: 'subscribed', id }
//     once the server has the subscriptions; then forwards every message, in batches of one turn:
//     { type: 'events', items: [{ subject, at, data }] }
//   { type: 'loop', id, url, path, connections, timeout_ms, requests: [{ raw, signature }], due_ms: number[] }
//     → sends request k at t0 + due_ms[k] (open loop), answers { type: 'loop_done', id, outcome }
//   { type: 'close', id } → drains the NATS connection, answers { type: 'closed', id }
import { parentPort, workerData } from 'node:worker_threads';
import { connect } from 'nats';
import { Pool } from 'undici';

const shift = performance.timeOrigin - workerData.mainTimeOrigin;
const now = () => performance.now() + shift;

let nc;
let pending = [];
let flushScheduled = false;

function forward(subject, data) {
  pending.push({ subject, at: now(), data: Buffer.from(data).toString('utf8') });
  if (flushScheduled) return;
  flushScheduled = true;
  setImmediate(() => {
    flushScheduled = false;
    const items = pending;
    pending = [];
    parentPort.postMessage({ type: 'events', items });
  });
}

async function subscribe(natsUrl, subjects) {
  nc = await connect({ servers: natsUrl, name: 'bench-payments-subscriber' });
  for (const subject of subjects) {
    nc.subscribe(subject, { callback: (error, msg) => !error && forward(subject, msg.data) });
  }
  await nc.flush(); // the subscriptions are registered with the server before the first payment
}

/** Sends each request at its due time whatever the answers do; undici queues what exceeds its connections. */
async function openLoop({ url, path, connections, timeout_ms, requests, due_ms }) {
  const pool = new Pool(url, { connections, pipelining: 1, headersTimeout: timeout_ms, bodyTimeout: timeout_ms });
  const n = requests.length;
  const out = {
    t0: 0,
    dispatched: new Float64Array(n).fill(Number.NaN),
    answered: new Float64Array(n).fill(Number.NaN),
    status: new Uint16Array(n),
    orderStatus: new Array(n).fill(''),
    errors: 0,
    firstError: undefined,
  };
  // Open every connection before t0, so connecting is not measured.
  await Promise.all(Array.from({ length: connections }, () => pool.request({ path: '/healthz', method: 'GET' }).then((r) => r.body.dump())));
  try {
    await new Promise((resolve) => {
      let next = 0;
      let open = 0;
      const t0 = (out.t0 = now() + 10);
      const fire = (k) => {
        open++;
        out.dispatched[k] = now();
        const r = requests[k];
        pool
          .request({ path, method: 'POST', headers: { 'content-type': 'application/json', 'stampede-signature': r.signature }, body: r.raw })
          .then(async (res) => {
            const text = await res.body.text();
            out.answered[k] = now();
            out.status[k] = res.statusCode;
            if (res.statusCode === 200) out.orderStatus[k] = JSON.parse(text).status;
            else {
              out.errors++;
              out.firstError ??= `${res.statusCode} ${text.slice(0, 200)}`;
            }
          })
          .catch((error) => {
            out.answered[k] = now();
            out.errors++;
            out.firstError ??= String(error);
          })
          .finally(() => {
            open--;
            if (next >= n && open === 0) resolve();
          });
      };
      const tick = () => {
        const t = now();
        while (next < n && t0 + due_ms[next] <= t) fire(next++);
        if (next < n) setTimeout(tick, Math.max(0, t0 + due_ms[next] - now()));
        else if (open === 0) resolve();
      };
      setTimeout(tick, Math.max(0, t0 - now()));
    });
  } finally {
    await pool.close();
  }
  return out;
}

parentPort.on('message', (m) => {
  const done = (answer) => parentPort.postMessage({ ...answer, id: m.id });
  const failed = (error) => done({ type: 'failed', error: String(error?.stack ?? error) });
  if (m.type === 'subscribe') subscribe(m.natsUrl, m.subjects).then(() => done({ type: 'subscribed' }), failed);
  else if (m.type === 'loop') openLoop(m).then((outcome) => done({ type: 'loop_done', outcome }), failed);
  else if (m.type === 'close') (nc ? nc.drain() : Promise.resolve()).then(() => done({ type: 'closed' }), failed);
});
