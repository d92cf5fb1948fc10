// Proves that against --target no request waits in the HTTP client's queue for a connection (where
// its wait would be timed as the engine's latency): a stand-in engine holds the order requests until
// as many are open at once as --concurrency, and sees them all, so the default opens one connection
// per request in flight; with fewer --connections the concurrency is cut to them, and the report says so.
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simCommand } from '../../sim/cli.ts';
import { Capture } from '../support/capture.ts';
import { SECRETS } from '../support/engine.ts';

/** The run's --concurrency. */
const CONCURRENCY = 100;
/** A held request is answered after this at the latest, so a run that never opens as many still ends. */
const HOLD_MAX_MS = 200;

/**
 * Answers order requests 409 sold_out (nothing refers to them then), holding them until `heldTo` are
 * open; the operator's setup 200; the verdict's reads 404 (the verdict fails, which is not the point).
 */
function standIn(heldTo: number) {
  let held: (() => void)[] = [];
  const seen = { openMax: 0 };
  let open = 0;
  const server = createServer((req, res) => {
    const answer = (res: ServerResponse, status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    req.resume();
    req.on('end', () => {
      if (req.method === 'GET') return answer(res, req.url === '/ops/shards' ? 200 : 404, req.url === '/ops/shards' ? {} : { error: 'not_found' });
      if (req.url !== '/v1/orders') return answer(res, 200, {});
      open++;
      seen.openMax = Math.max(seen.openMax, open);
      let answered = false;
      const release = () => {
        if (answered) return;
        answered = true;
        open--;
        answer(res, 409, { error: 'sold_out', message: 'sold out' });
      };
      held.push(release);
      if (held.length >= heldTo) {
        const all = held;
        held = [];
        for (const r of all) r();
      } else {
        setTimeout(release, HOLD_MAX_MS);
      }
    });
  });
  return { server, seen };
}

describe('a run against --target', () => {
  const saved = { ...process.env };
  const dir = mkdtempSync(join(tmpdir(), 'stampede-sim-connections-'));
  beforeAll(() => {
    Object.assign(process.env, { STAMPEDE_ADMIN_TOKEN: SECRETS.STAMPEDE_ADMIN_TOKEN, STAMPEDE_USER_JWT_SECRET: SECRETS.STAMPEDE_USER_JWT_SECRET, STAMPEDE_PAYMENT_SECRET: SECRETS.STAMPEDE_PAYMENT_SECRET });
  });
  afterAll(() => {
    process.env = saved;
  });

  async function run(heldTo: number, extra: string[]) {
    const { server, seen } = standIn(heldTo);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const json = join(dir, `r-${extra.join('')}.json`);
      // Every buyer arrives in the first 100 ms and pays (if at all) later: the first lines are orders.
      const args = ['flash-sale', '--target', url, '--buyers', '400', '--duration-ms', '100', '--bots', '0', '--concurrency', String(CONCURRENCY), '--settle-ms', '0', '--no-wait-expiries'];
      await simCommand([...args, ...extra, '--report', join(dir, 'r.html'), '--json', json], new Capture());
      return { seen, options: JSON.parse(readFileSync(json, 'utf8')).options };
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  }

  it('opens a connection per request in flight by default, so every request it sends reaches the engine', async () => {
    const { seen, options } = await run(CONCURRENCY, []);
    expect(seen.openMax).toBe(CONCURRENCY);
    expect(options).toMatchObject({ concurrency: CONCURRENCY, connections: CONCURRENCY });
  });

  it('cuts the concurrency to --connections when given fewer', async () => {
    const { seen, options } = await run(10, ['--connections', '10']);
    expect(seen.openMax).toBe(10);
    expect(options).toMatchObject({ concurrency: 10, connections: 10 });
  });
});
