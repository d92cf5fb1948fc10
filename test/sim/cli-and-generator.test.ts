// Proves the simulator's command line refuses bad usage with a message (exit code 2 in the
// `stampede` binary) before touching an engine, that a malformed recording is refused naming its
// line, and that the flash-sale generator is a function of its options and seed: the same seed gives
// the same traffic line for line, another seed other traffic, and the traffic is a valid recording
// whose shapes put buyers where they say.
import { Writable } from 'node:stream';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { simCommand, UsageError } from '../../sim/cli.ts';
import { FLASH_SALE_DEFAULTS, generateFlashSale } from '../../sim/flash-sale/generator.ts';
import { formatLine, parseRecording } from '../../sim/recording/format.ts';
import { SECRETS, startEngine } from '../support/engine.ts';
import { Capture } from '../support/capture.ts';


const sink = () =>
  new Writable({
    write(_c, _e, done) {
      done();
    },
  });

const bin = fileURLToPath(new URL('../../bin/stampede.mjs', import.meta.url));

describe('stampede sim: usage', () => {
  it.each([
    [['flash-sale', '--shape', 'wobble'], /--shape must be pulse, ramp or steady/],
    [['flash-sale', '--pay', '0.8', '--cancel', '0.5'], /must not exceed 1/],
    [['flash-sale', '--buyers', '-3'], /Option '--buyers/],
    [['flash-sale', '--buyers=-3'], /--buyers must be an integer from 0/],
    [['flash-sale', '--buyers', '1.5'], /--buyers must be an integer from 0/],
    // An unset shell variable (--buyers "$N") ran a sale of nobody that passed.
    [['flash-sale', '--buyers', ''], /--buyers must be an integer from 0/],
    [['flash-sale', '--buyers', '0x10'], /--buyers must be an integer from 0/],
    [['flash-sale', '--pay', ''], /--pay must be a share from 0 to 1/],
    [['flash-sale', '--pay', '1e-1'], /--pay must be a share from 0 to 1/],
    [['flash-sale', '--buyers', '2000001'], /--buyers must be an integer from 0 to 2000000/],
    [['flash-sale', '--bots', '100', '--bot-requests', '100000'], /--bots × --bot-requests must not exceed/],
    [['flash-sale', '--card-key-skus', '1', '--stock', '3000000'], /--card-key-skus × --stock must not exceed/],
    [['flash-sale', '--dates', '2027-02-30'], /--dates must be distinct calendar dates/],
    [['flash-sale', '--dates', '2027-03-01,2027-03-01'], /--dates must be distinct calendar dates/],
    // Refused before the run, not after it (a run can take hours).
    [['flash-sale', '--buyers', '10', '--report', '/nonexistent-stampede-dir/r.html'], /--report \/nonexistent-stampede-dir\/r\.html: its folder does not exist/],
    [['flash-sale', '--buyers', '10', '--write', '/nonexistent-stampede-dir/s.jsonl'], /--write \/nonexistent-stampede-dir\/s\.jsonl: its folder does not exist/],
    [['flash-sale', '--frobnicate'], /Unknown option '--frobnicate'/],
    [['flash-sale', '--speed', '0'], /--speed must be a positive number or max/],
    [['flash-sale', '--target', 'not a url'], /--target must be a URL/],
    [['replay'], /usage: stampede sim replay/],
    [['dance'], /unknown sim command: dance/],
  ])('refuses %j', async (args, message) => {
    const error = await simCommand(args as string[], sink()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toMatch(message);
  });

  it('refuses a --target it cannot reach or whose admin token is wrong, before sending anything', async () => {
    const saved = { ...process.env };
    try {
      Object.assign(process.env, { STAMPEDE_ADMIN_TOKEN: 'wrong-admin-token-0123456789', STAMPEDE_USER_JWT_SECRET: SECRETS.STAMPEDE_USER_JWT_SECRET, STAMPEDE_PAYMENT_SECRET: SECRETS.STAMPEDE_PAYMENT_SECRET });
      const e = await startEngine({ kind: 'sqlite' });
      try {
        const refused = await simCommand(['flash-sale', '--buyers', '10', '--target', e.url], sink()).catch((x: unknown) => x);
        expect(refused).toBeInstanceOf(UsageError);
        expect((refused as Error).message).toBe(`--target ${e.url}: it refused STAMPEDE_ADMIN_TOKEN`);
        // Nothing was sent: the SKUs of the sale do not exist.
        expect((await e.client.request('GET', '/v1/skus/sim-sku-1')).status).toBe(404);
      } finally {
        await e.stop();
      }
      const unreachable = await simCommand(['flash-sale', '--buyers', '10', '--target', 'http://127.0.0.1:9'], sink()).catch((x: unknown) => x);
      expect(unreachable).toBeInstanceOf(UsageError);
      expect((unreachable as Error).message).toMatch(/^--target http:\/\/127\.0\.0\.1:9: cannot reach it/);
    } finally {
      process.env = saved;
    }
  });

  it('refuses a malformed recording, naming the line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stampede-sim-bad-'));
    const file = join(dir, 'bad.jsonl');
    writeFileSync(file, '{"t":0,"method":"POST","path":"/v1/orders","user":"u1","body":{"skuId":"s","date":"open","qty":1}}\n{"t":5,"method":"POST","path":"/v1/orders/{orderId}/cancel","user":"u1","orderRef":7}\n');
    const error = await simCommand(['replay', file], sink()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toContain('line 2: orderRef 7 is not an earlier POST /v1/orders line');
  });

  it('refuses a payment line that does not go to the payment callback route: exit 2, naming the line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stampede-sim-bad-payment-'));
    const file = join(dir, 'bad-payment.jsonl');
    writeFileSync(
      file,
      '{"t":0,"method":"POST","path":"/v1/orders","user":"u1","body":{"skuId":"s","date":"open","qty":1}}\n' +
        '{"t":5,"method":"POST","path":"/v1/payment/callback","payment":true,"body":{"orderRef":0,"status":"succeeded"}}\n',
    );
    // Reports into the test's folder, should the recording be replayed after all.
    const error = await simCommand(['replay', file, '--report', join(dir, 'r.html'), '--json', join(dir, 'r.json')], sink()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toBe(`${file}: line 2: path: a payment line goes to POST /v1/payments/callback, not POST /v1/payment/callback`);
    const bad = await promisify(execFile)(process.execPath, [bin, 'sim', 'replay', file, '--report', join(dir, 'r.html'), '--json', join(dir, 'r.json')], { env: { ...process.env, NODE_OPTIONS: '', STAMPEDE_SIM_SEMI_SPACE_MIB: '0' } }).catch((e: { code: number; stderr: string }) => e);
    expect((bad as { code: number }).code).toBe(2);
    expect((bad as { stderr: string }).stderr).toContain('line 2: path: a payment line goes to POST /v1/payments/callback');
    // The route as the engine's router takes it (any case, a trailing slash) is the payment route.
    expect(parseRecording(readFileSync(file, 'utf8').replace('/v1/payment/callback', '/V1/Payments/Callback/'))).toHaveLength(2);
    expect(() => parseRecording(readFileSync(file, 'utf8').replace('"method":"POST","path":"/v1/payment/callback"', '"method":"PUT","path":"/v1/payments/callback"'))).toThrow(
      'line 2: path: a payment line goes to POST /v1/payments/callback, not PUT /v1/payments/callback',
    );
  });

  it('replays a recording whose last line a crash cut short, leaving that line out and saying so', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stampede-sim-cut-'));
    const file = join(dir, 'cut.jsonl');
    const lines = [
      '{"t":0,"method":"PUT","path":"/v1/skus/cut","admin":true,"body":{"name":"C","priceCents":100,"merchantId":"m1","delivery":"ticket"}}',
      '{"t":1,"method":"PUT","path":"/v1/skus/cut/stock/2027-06-01","admin":true,"body":{"total":2}}',
      '{"t":2,"method":"POST","path":"/v1/orders","user":"u1","body":{"skuId":"cut","date":"2027-06-01","qty":1}}',
      '{"t":3,"method":"POST","path":"/v1/orders","user":"u2","body":{"skuId":"cut","date":"2027-06-01","qty":1}}',
    ];
    const whole = `${lines.join('\n')}\n`;
    // `head -c -25`: the last line loses its end and its newline.
    writeFileSync(file, whole.slice(0, -25));
    const out = new Capture();
    const result = await simCommand(['replay', file, '--speed', 'max', '--report', join(dir, 'r.html'), '--json', join(dir, 'r.json')], out);
    expect(result?.passed, out.text).toBe(true);
    expect(out.text).toContain(`${file}: line 4 is cut short (not JSON, and no newline ends the file, as a crash mid-write leaves it): left out`);
    const figures = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8'));
    expect(figures.totals.lines).toBe(3);
    expect(figures.options.cut_last_line).toBe(1);
    // Only the last line, and only when no newline follows it: anything else is a malformed recording.
    expect(() => parseRecording(`${whole.slice(0, -25)}\n`)).toThrow('line 4: not JSON');
    expect(() => parseRecording(`${lines[0]}\n{"t":1,"meth\n${lines[2]}`)).toThrow('line 2: not JSON');
    expect(() => parseRecording(`${lines[0]}\n{"t":1,"method":"PATCH","path":"/v1/x"}`)).toThrow('line 2: method');
  });

  it('refuses a malformed --rules file and a missing recording as bad usage: exit 2, one line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stampede-sim-usage-'));
    const notJson = join(dir, 'not-json.json');
    writeFileSync(notJson, '[{"id":"x"');
    const notRules = join(dir, 'not-rules.json');
    writeFileSync(notRules, '[{"id":"x","max":{}}]');
    const cases: [string[], RegExp][] = [
      [['flash-sale', '--rules', notJson], /^--rules .*not-json\.json: not JSON/],
      [['flash-sale', '--rules', notRules], /^--rules .*not-rules\.json: rule 1 \(x\): max: max needs at least one of units/],
      [['flash-sale', '--rules', join(dir, 'absent.json')], /^--rules .*absent\.json: cannot read it \(ENOENT/],
      [['replay', join(dir, 'absent.jsonl')], /^.*absent\.jsonl: cannot read it \(ENOENT/],
    ];
    const run = promisify(execFile);
    for (const [args, message] of cases) {
      const error = await simCommand(args, sink()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UsageError);
      expect((error as Error).message).toMatch(message);
    }
    for (const [args, message] of [cases[0]!, cases[3]!]) {
      const bad = await run(process.execPath, [bin, 'sim', ...args], { env: { ...process.env, NODE_OPTIONS: '', STAMPEDE_SIM_SEMI_SPACE_MIB: '0' } }).catch((e: { code: number; stderr: string }) => e);
      expect((bad as { code: number }).code).toBe(2);
      const stderr = (bad as { stderr: string }).stderr;
      expect(stderr.trim().split('\n'), stderr).toHaveLength(1);
      expect(stderr).toMatch(message);
    }
  });

  it('starts the simulator with 32 MiB semi-spaces from the binary, or with Node\'s default when asked, and passes its exit code on', async () => {
    const run = promisify(execFile);
    const dir = mkdtempSync(join(tmpdir(), 'stampede-sim-heap-'));
    const sale = (name: string, env: Record<string, string>) =>
      run(process.execPath, [bin, 'sim', 'flash-sale', '--buyers', '100', '--stock', '10', '--json', join(dir, `${name}.json`), '--report', join(dir, `${name}.html`)], {
        env: { ...process.env, NODE_OPTIONS: '', ...env },
      });
    const semiSpace = (name: string) => (JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as { options: { semi_space: string } }).options.semi_space;
    expect((await sale('tuned', {})).stdout).toContain('VERDICT: PASS');
    expect(semiSpace('tuned')).toBe('32 MiB');
    await sale('plain', { STAMPEDE_SIM_SEMI_SPACE_MIB: '0' });
    expect(semiSpace('plain')).toBe("Node's default");
    // A size that is no size is refused as bad usage, before anything runs.
    const badSize = await run(process.execPath, [bin, 'sim', 'flash-sale', '--buyers', '10'], { env: { ...process.env, NODE_OPTIONS: '', STAMPEDE_SIM_SEMI_SPACE_MIB: 'lots' } }).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect((badSize as { code: number }).code).toBe(2);
    expect((badSize as { stderr: string }).stderr).toContain('STAMPEDE_SIM_SEMI_SPACE_MIB must be an integer from 0 to 1024');
    // The restarted simulator's exit code is the command's.
    const bad = await run(process.execPath, [bin, 'sim', 'flash-sale', '--buyers', 'many'], { env: { ...process.env, NODE_OPTIONS: '' } }).catch((e: { code: number }) => e);
    expect((bad as { code: number }).code).toBe(2);
  });

  it('exits 2 from the binary on bad usage, 0 for --help', async () => {
    const run = promisify(execFile);
    const bad = await run(process.execPath, [bin, 'sim', 'flash-sale', '--shape', 'wobble']).catch((e: { code: number; stderr: string }) => e);
    expect((bad as { code: number }).code).toBe(2);
    expect((bad as { stderr: string }).stderr).toContain('--shape must be pulse, ramp or steady');
    const help = await run(process.execPath, [bin, 'sim', '--help']);
    expect(help.stdout).toContain('stampede sim flash-sale [options]');
  });
});

describe('the flash-sale generator', () => {
  const options = { ...FLASH_SALE_DEFAULTS, buyers: 2_000, stock: 200, duration_ms: 10_000 };

  it('gives the same traffic for the same seed and other traffic for another', () => {
    const a = generateFlashSale({ ...options, seed: 5 }).map(formatLine).join('');
    const b = generateFlashSale({ ...options, seed: 5 }).map(formatLine).join('');
    const c = generateFlashSale({ ...options, seed: 6 }).map(formatLine).join('');
    expect(a).toBe(b);
    expect(a).not.toBe(c);
  });

  it('writes a valid recording: setup first, every reference to an earlier order line', () => {
    const lines = generateFlashSale({ ...options, seed: 9 });
    const parsed = parseRecording(lines.map(formatLine).join(''));
    expect(parsed).toEqual(lines);
    const firstBuyer = lines.findIndex((l) => l.user !== undefined);
    expect(lines.slice(0, firstBuyer).every((l) => l.admin === true)).toBe(true);
    expect(lines.filter((l) => l.path === '/v1/orders' && l.user?.startsWith('buyer-') && l.idempotencyKey !== undefined).length).toBeGreaterThanOrEqual(2_000);
    expect(lines.some((l) => l.payment === true)).toBe(true);
    expect(lines.some((l) => l.path.endsWith('/cancel'))).toBe(true);
    expect(lines.filter((l) => l.user?.startsWith('bot-')).length).toBe(options.bots * options.botRequests);
  });

  it('puts most buyers early in a pulse, late in a ramp, evenly in a steady stream', () => {
    const firstOrderTimes = (shape: 'pulse' | 'ramp' | 'steady') => {
      const seen = new Set<string>();
      const times: number[] = [];
      for (const l of generateFlashSale({ ...options, shape, bots: 0, seed: 3 })) {
        if (l.path === '/v1/orders' && l.user && !seen.has(l.user)) {
          seen.add(l.user);
          times.push(l.t);
        }
      }
      return times.filter((t) => t < options.duration_ms / 2).length / times.length;
    };
    expect(firstOrderTimes('pulse')).toBeGreaterThan(0.95);
    expect(firstOrderTimes('ramp')).toBeGreaterThan(0.2);
    expect(firstOrderTimes('ramp')).toBeLessThan(0.3);
    expect(firstOrderTimes('steady')).toBeGreaterThan(0.45);
    expect(firstOrderTimes('steady')).toBeLessThan(0.55);
  });
});
