// Proves the `stampede` command line's helpers for operators and newcomers: `stampede token` prints a
// buyer JWT the node accepts (and refuses without a secret or a user), and `stampede ops` answers a
// node that is not there, a missing argument and an unknown query with one line and exit codes 1 / 2
// instead of a stack trace; `ops no-shows` reaches its route — against a real node (embedded SQLite);
// and that `ops reconcile` exits 1 for a pass that did not check everything (a stand-in node's report).
import { execFile } from 'node:child_process';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SECRETS, startEngine, type TestEngine } from '../support/engine.ts';

const BIN = fileURLToPath(new URL('../../bin/stampede.mjs', import.meta.url));

function stampede(args: string[], env: Record<string, string | undefined>): Promise<{ code: number; stdout: string; stderr: string }> {
  const clean = { ...process.env };
  for (const k of Object.keys(clean)) if (k.startsWith('STAMPEDE_')) delete clean[k];
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...clean, ...env }, timeout: 30_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** A stand-in node answering POST /ops/reconcile with `body` (what the CLI makes of a report, whatever the pass found). */
async function answering(body: unknown): Promise<{ url: string; close(): Promise<void> }> {
  const server = createHttpServer((req, res) => {
    res.writeHead(req.method === 'POST' && req.url === '/ops/reconcile' ? 200 : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe('stampede ops reconcile, by what the pass reports', () => {
  it('exits 0 for a whole pass, 1 for one cut short by a stop or with checks that could not run', async () => {
    const finding = (kind: string) => ({ kind, id: 'x', detail: 'd', action: 'reported' });
    for (const [body, code] of [
      [{ findings: [], repaired: 0 }, 0],
      [{ findings: [finding('stock_mismatch')], repaired: 0 }, 0],
      [{ findings: [finding('check_failed'), finding('stock_mismatch')], repaired: 0 }, 1],
      [{ findings: [], repaired: 0, stopped: true }, 1],
    ] as const) {
      const node = await answering(body);
      try {
        const run = await stampede(['ops', 'reconcile'], { STAMPEDE_URL: node.url, STAMPEDE_ADMIN_TOKEN: 'stand-in-admin-token' });
        expect([run.code, JSON.parse(run.stdout)], JSON.stringify(body)).toEqual([code, body]);
      } finally {
        await node.close();
      }
    }
  });
});

describe('the stampede command line', () => {
  let e: TestEngine;
  beforeAll(async () => {
    e = await startEngine({ kind: 'sqlite' });
  });
  afterAll(() => e.stop());

  it('prints a buyer token the node accepts', async () => {
    const minted = await stampede(['token', 'cli-buyer'], { STAMPEDE_USER_JWT_SECRET: SECRETS.STAMPEDE_USER_JWT_SECRET });
    expect(minted.code).toBe(0);
    const token = minted.stdout.trim();
    await e.client.sku('cli-sku', '2027-07-01', 3);
    const placed = await e.client.request('POST', '/v1/orders', { body: { skuId: 'cli-sku', date: '2027-07-01', qty: 1 }, auth: token });
    expect(placed.status).toBe(201);
    expect((await e.client.buyer('cli-buyer', 'GET', `/v1/orders/${placed.body.orderId}`)).status).toBe(200);

    const noSecret = await stampede(['token', 'cli-buyer'], {});
    expect(noSecret.code).toBe(2);
    expect(noSecret.stderr).toContain('STAMPEDE_USER_JWT_SECRET');
    expect((await stampede(['token'], { STAMPEDE_USER_JWT_SECRET: 'x' })).code).toBe(2);
    expect((await stampede(['token', 'u', '--ttl-s', '0'], { STAMPEDE_USER_JWT_SECRET: 'x' })).code).toBe(2);
    // Decimal digits only, up to a year ("1e3" and "0x10" were taken; a huge one minted a token for ever).
    for (const ttl of ['1e3', '0x10', ' 60', '31536001']) {
      expect((await stampede(['token', 'u', '--ttl-s', ttl], { STAMPEDE_USER_JWT_SECRET: 'x' })).code, ttl).toBe(2);
    }
    expect((await stampede(['token', 'u', '--ttl-s', '31536000'], { STAMPEDE_USER_JWT_SECRET: 'x' })).code).toBe(0);
    // An unknown option is a usage error, not a stack trace; a subject the node would refuse is not minted.
    const unknownOption = await stampede(['token', 'u', '--foo'], { STAMPEDE_USER_JWT_SECRET: 'x' });
    expect([unknownOption.code, unknownOption.stderr]).toEqual([2, expect.stringContaining("Unknown option '--foo'")]);
    expect(unknownOption.stderr).not.toContain('    at ');
    const badSubject = await stampede(['token', 'bad id!'], { STAMPEDE_USER_JWT_SECRET: 'x' });
    expect([badSubject.code, badSubject.stdout]).toEqual([2, '']);
  });

  it('answers ops queries, and a node that is not there or a missing argument in one line', async () => {
    const admin = { STAMPEDE_URL: e.url, STAMPEDE_ADMIN_TOKEN: SECRETS.STAMPEDE_ADMIN_TOKEN };
    const sweep = await stampede(['ops', 'no-shows'], admin);
    expect(sweep.code).toBe(0);
    expect(JSON.parse(sweep.stdout)).toMatchObject({ noShows: 0 });

    // A port nothing listens on (taken and let go).
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    const gone = await stampede(['ops', 'shards'], { STAMPEDE_URL: `http://127.0.0.1:${port}`, STAMPEDE_ADMIN_TOKEN: 'x' });
    expect(gone.code).toBe(1);
    expect(gone.stderr.trim()).toBe(`cannot reach the node at http://127.0.0.1:${port} (STAMPEDE_URL): ECONNREFUSED`);

    const missing = await stampede(['ops', 'inventory', 'only-sku'], admin);
    expect(missing.code).toBe(2);
    expect(missing.stderr.trim()).toBe('usage: stampede ops inventory <skuId> <date>');
    // An extra argument (a typo, a second id) is a usage error, not ignored.
    const extra = await stampede(['ops', 'inventory', 'sku', '2027-07-01', 'more'], admin);
    expect([extra.code, extra.stderr.trim(), extra.stdout]).toEqual([2, 'usage: stampede ops inventory <skuId> <date>', '']);
    const extraShards = await stampede(['ops', 'shards', 'all'], admin);
    expect([extraShards.code, extraShards.stderr.trim()]).toEqual([2, 'usage: stampede ops shards']);
    const unknown = await stampede(['ops', 'nonsense'], admin);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown ops command: nonsense');
    // Not an ops command either, though every object has one by that name.
    const inherited = await stampede(['ops', 'constructor'], admin);
    expect([inherited.code, inherited.stderr]).toEqual([2, expect.stringContaining('unknown ops command: constructor')]);

    const noToken = await stampede(['ops', 'shards'], { STAMPEDE_URL: e.url });
    expect(noToken.code).toBe(1);
    expect(noToken.stderr).toContain('set STAMPEDE_ADMIN_TOKEN');
  });

  it('refuses arguments serve would ignore, and unknown options before the command, starting nothing', async () => {
    // Configured by STAMPEDE_* variables only: `serve --port 4000` ran on the configured port without a word.
    const cases = [['serve', '--port', '4000'], ['serve', 'now'], ['--port', '4000', 'serve'], ['--verbose']];
    const answers = await Promise.all(cases.map((args) => stampede(args, { STAMPEDE_HTTP_PORT: '0' })));
    for (const [i, refused] of answers.entries()) {
      const args = cases[i]!;
      expect([refused.code, refused.stdout], args.join(' ')).toEqual([2, '']);
      expect(refused.stderr, args.join(' ')).toMatch(/^(stampede serve takes no arguments|unknown option: --)/);
      expect(refused.stderr).toContain('Usage:');
    }
    const help = await stampede(['--help'], {});
    expect([help.code, help.stdout]).toEqual([0, expect.stringContaining('stampede serve')]);
    // --help after a command is the help too, not an argument, an ops query or a request.
    const helps = await Promise.all([['serve', '--help'], ['ops', '--help'], ['ops', 'order', '--help'], ['token', '-h']].map((args) => stampede(args, { STAMPEDE_URL: 'http://127.0.0.1:9' })));
    for (const h of helps) expect([h.code, h.stdout, h.stderr]).toEqual([0, expect.stringContaining('stampede serve'), '']);
    // After `--`, `-h` is an argument: here a user id for a token.
    const dashed = await stampede(['token', '--', '-h'], { STAMPEDE_USER_JWT_SECRET: 'x' });
    expect([dashed.code, dashed.stdout.split('.').length]).toEqual([0, 3]);
  });
});
