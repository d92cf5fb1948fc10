// `stampede sim replay <file>` and `stampede sim flash-sale [...]`: parse the options, start an
// engine in this process (embedded default, fresh data directory) or reach one at --target, run
// the traffic with a progress bar, judge it, print the table and write the HTML and JSON reports.
// Exit code: 0 when the verdict passed, 1 when an invariant broke, 2 on bad usage.
import { constants as fsConstants, createWriteStream } from 'node:fs';
import { access, readFile, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import type { Rule } from '../engine/rules.ts';
import { decimalInteger } from '../app/config.ts';
import { identifier, isCalendarDate, ruleBody } from '../http/validation.ts';
import { FLASH_SALE_DEFAULTS, generateFlashSale, type FlashSaleOptions, type TrafficShape } from './flash-sale/generator.ts';
import { formatLine, readRecording, RecordingFormatError, type ParsedRecording, type RecordedLine } from './recording/format.ts';
import { HttpTransport } from './replay/transport.ts';
import type { Speed } from './replay/replayer.ts';
import { computeFigures, htmlReport, Progress, terminalReport, toJson } from './report/index.ts';
import { startInProcessEngine, type SimEngine } from './run/in-process-engine.ts';
import { runSimulation } from './run/simulation.ts';

export const SIM_HELP = `stampede sim — replay traffic or rehearse a flash sale, then judge the engine

Usage:
  stampede sim replay <file.jsonl> [options]
  stampede sim flash-sale [options]

Where the engine is:
  --target URL            a running engine (secrets from STAMPEDE_ADMIN_TOKEN, STAMPEDE_USER_JWT_SECRET,
                          STAMPEDE_PAYMENT_SECRET); default: one started in this process on the
                          embedded default, in a fresh temporary directory
  --ttl-ms N              reservation TTL of the in-process engine (default 900000, the engine's); after
                          the traffic its clock is moved past the last expiry, so abandoned
                          reservations expire at once and the verdict sees them released

How the traffic runs:
  --speed N|max           N× the recorded timing (default 1 for replay, max for flash-sale)
  --concurrency N         requests in flight at most (default 256)
  --connections N         HTTP connections to --target (default: the concurrency); each carries one
                          request at a time, so with fewer the concurrency is cut to them (a request
                          queued in the client for a connection would count its wait as latency)
  --settle-ms N           longest wait for deliveries and expiries after the traffic (default 60000)
  --no-wait-expiries      judge at once (default: in process, expire every reservation first; with
                          --target, wait for the expiries when they fall within --settle-ms)

Reports:
  --report FILE           the HTML report (default sim-report.html)
  --json FILE             the figures as JSON (default sim-report.json)

Flash sale:
  --seed N                the same seed and options give the same traffic (default 1)
  --skus N                SKUs on sale (default 3); --card-key-skus N of them sell card keys (default 1)
  --dates D1,D2           travel dates of the ticket SKUs (default 2027-06-01,2027-06-02)
  --stock N               units per SKU/date (default 1000)
  --buyers N              buyers, each ordering once (default 10000)
  --shape pulse|ramp|steady   how buyers arrive (default pulse)
  --duration-ms N         buyers arrive within this span (default 10000)
  --pay F --cancel F      shares of buyers who pay (0.6) and cancel (0.1); the rest abandon
  --duplicates F          share of payments sent twice (0.1)
  --out-of-order F        share of payers whose failed attempt arrives after the success, and of
                          cancellers who pay after cancelling (0.05)
  --retries F             share of buyers who press buy twice with one Idempotency-Key (0.05)
  --poll F                share of payers who then look at their order (0.3)
  --bots N --bot-requests N   bots hammering the hottest SKU/date (5 × 50)
  --qty-max N             each order is for 1..N units (default 2)
  --rules FILE|none       purchase rules (a JSON array; default one rule: 2 units per buyer per SKU/date)
  --write FILE            also write the generated traffic as a recording (replayable)
`;

const options = {
  target: { type: 'string' },
  'ttl-ms': { type: 'string' },
  speed: { type: 'string' },
  concurrency: { type: 'string' },
  connections: { type: 'string' },
  'settle-ms': { type: 'string' },
  'no-wait-expiries': { type: 'boolean' },
  report: { type: 'string' },
  json: { type: 'string' },
  seed: { type: 'string' },
  skus: { type: 'string' },
  'card-key-skus': { type: 'string' },
  dates: { type: 'string' },
  stock: { type: 'string' },
  buyers: { type: 'string' },
  shape: { type: 'string' },
  'duration-ms': { type: 'string' },
  pay: { type: 'string' },
  cancel: { type: 'string' },
  duplicates: { type: 'string' },
  'out-of-order': { type: 'string' },
  retries: { type: 'string' },
  poll: { type: 'string' },
  bots: { type: 'string' },
  'bot-requests': { type: 'string' },
  'qty-max': { type: 'string' },
  rules: { type: 'string' },
  write: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export class UsageError extends Error {
  override name = 'UsageError';
}

type Values = Partial<Record<keyof typeof options, string | boolean>>;

// Decimal digits only (as the engine's configuration): `Number('')` is 0, so `--buyers "$N"` with N
// unset ran a sale of nobody that passed; `0x10`, `1e3` and ` 5` are refused too.
function int(values: Values, name: keyof typeof options, dflt: number, min: number, max: number): number {
  const raw = values[name];
  if (raw === undefined) return dflt;
  const n = decimalInteger(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}`);
  return n;
}

function share(values: Values, name: keyof typeof options, dflt: number): number {
  const raw = values[name];
  if (raw === undefined) return dflt;
  const n = typeof raw === 'string' && /^(0|1)(\.[0-9]{1,6})?$|^\.[0-9]{1,6}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new UsageError(`--${name} must be a share from 0 to 1`);
  return n;
}

/** A file the run will write: refused before the run (not after hours of it) when its folder cannot take it. */
async function writablePath(values: Values, name: 'write' | 'report' | 'json', dflt?: string): Promise<string | undefined> {
  const raw = values[name] ?? dflt;
  if (raw === undefined) return undefined;
  const file = String(raw);
  if (file === '') throw new UsageError(`--${name} must name a file`);
  try {
    await access(dirname(resolve(file)), fsConstants.W_OK);
  } catch {
    throw new UsageError(`--${name} ${file}: its folder does not exist or cannot be written`);
  }
  return file;
}

function speedOf(values: Values, dflt: Speed): Speed {
  const raw = values.speed;
  if (raw === undefined) return dflt;
  if (raw === 'max') return 'max';
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError('--speed must be a positive number or max');
  return n;
}

/** A file the user named, read; one that cannot be read is bad usage (exit 2), said in one line. */
async function readUserFile(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw new UsageError(`${what}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, { cause: error });
  }
}

async function rulesOf(values: Values): Promise<Rule[]> {
  const raw = values.rules;
  if (raw === undefined) return FLASH_SALE_DEFAULTS.rules;
  if (raw === 'none') return [];
  const what = `--rules ${String(raw)}`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readUserFile(String(raw), what));
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`${what}: not JSON (${(error as Error).message})`, { cause: error });
  }
  if (!Array.isArray(parsed)) throw new UsageError(`${what}: must hold a JSON array of rules`);
  // Each rule as the engine takes it (PUT /v1/limit-rules/{id}, the id in the path): a rule the engine
  // would refuse is a mistake in the file, better said now than as a refused setup line.
  return parsed.map((rule: unknown, i) => {
    const id = (rule as { id?: unknown } | null)?.id;
    const label = `rule ${i + 1}${typeof id === 'string' ? ` (${id})` : ''}`;
    const idChecked = identifier.safeParse(id);
    if (!idChecked.success) throw new UsageError(`${what}: ${label}: id: ${idChecked.error.issues[0]!.message}`);
    const checked = ruleBody.safeParse(rule);
    if (!checked.success) {
      const issue = checked.error.issues[0]!;
      throw new UsageError(`${what}: ${label}: ${issue.path.join('.') || 'rule'}: ${issue.message}`);
    }
    return rule as Rule;
  });
}

/** Buyers of one generated sale at most (1,000,000 measured: ~390 MiB of heap, 12 s to generate). */
export const FLASH_SALE_BUYERS_MAX = 2_000_000;
/** Bot requests of one generated sale at most. */
export const FLASH_SALE_BOT_LINES_MAX = 2_000_000;
/** Card keys one generated sale uploads at most. */
export const FLASH_SALE_CARD_KEYS_MAX = 2_000_000;

export function flashSaleOptions(values: Values, rules: Rule[]): FlashSaleOptions {
  const shape = (values.shape ?? FLASH_SALE_DEFAULTS.shape) as TrafficShape;
  if (!['pulse', 'ramp', 'steady'].includes(shape)) throw new UsageError('--shape must be pulse, ramp or steady');
  const dates = values.dates === undefined ? FLASH_SALE_DEFAULTS.dates : String(values.dates).split(',').map((d) => d.trim()).filter(Boolean);
  // Real calendar dates, each once: the engine refuses 2027-02-30 (its buyers would all get 400).
  if (dates.length === 0 || dates.some((d) => !isCalendarDate(d)) || new Set(dates).size !== dates.length) {
    throw new UsageError('--dates must be distinct calendar dates YYYY-MM-DD[,YYYY-MM-DD...]');
  }
  const skus = int(values, 'skus', FLASH_SALE_DEFAULTS.skus, 1, 1_000);
  const o: FlashSaleOptions = {
    seed: int(values, 'seed', FLASH_SALE_DEFAULTS.seed, 0, 2 ** 32 - 1),
    skus,
    cardKeySkus: int(values, 'card-key-skus', Math.min(FLASH_SALE_DEFAULTS.cardKeySkus, skus), 0, skus),
    dates,
    stock: int(values, 'stock', FLASH_SALE_DEFAULTS.stock, 0, 10_000_000),
    buyers: int(values, 'buyers', FLASH_SALE_DEFAULTS.buyers, 0, FLASH_SALE_BUYERS_MAX),
    shape,
    duration_ms: int(values, 'duration-ms', FLASH_SALE_DEFAULTS.duration_ms, 0, 86_400_000),
    pay: share(values, 'pay', FLASH_SALE_DEFAULTS.pay),
    cancel: share(values, 'cancel', FLASH_SALE_DEFAULTS.cancel),
    duplicates: share(values, 'duplicates', FLASH_SALE_DEFAULTS.duplicates),
    outOfOrder: share(values, 'out-of-order', FLASH_SALE_DEFAULTS.outOfOrder),
    retries: share(values, 'retries', FLASH_SALE_DEFAULTS.retries),
    poll: share(values, 'poll', FLASH_SALE_DEFAULTS.poll),
    bots: int(values, 'bots', FLASH_SALE_DEFAULTS.bots, 0, 100_000),
    botRequests: int(values, 'bot-requests', FLASH_SALE_DEFAULTS.botRequests, 0, 1_000_000),
    qtyMax: int(values, 'qty-max', FLASH_SALE_DEFAULTS.qtyMax, 1, 100),
    rules,
    priceCents: FLASH_SALE_DEFAULTS.priceCents,
  };
  if (o.pay + o.cancel > 1) throw new UsageError('--pay and --cancel together must not exceed 1');
  // The generated sale is held in memory whole (~400 bytes a line): bounded where it was measured.
  if (o.bots * o.botRequests > FLASH_SALE_BOT_LINES_MAX) throw new UsageError(`--bots × --bot-requests must not exceed ${FLASH_SALE_BOT_LINES_MAX}`);
  if (o.cardKeySkus * o.stock > FLASH_SALE_CARD_KEYS_MAX) throw new UsageError(`--card-key-skus × --stock must not exceed ${FLASH_SALE_CARD_KEYS_MAX} card keys`);
  return o;
}

/** HTTP connections to --target at most (one socket each, and the engine's own limits behind them). */
export const TARGET_CONNECTIONS_MAX = 10_000;

async function engineFor(values: Values, ttl_ms: number, connections: number): Promise<SimEngine> {
  const target = values.target;
  if (target === undefined) {
    return startInProcessEngine({ env: { STAMPEDE_RESERVATION_TTL_MS: String(int(values, 'ttl-ms', ttl_ms, 1_000, 7 * 86_400_000)) } });
  }
  let url: URL;
  try {
    url = new URL(String(target));
  } catch {
    throw new UsageError('--target must be a URL such as http://127.0.0.1:3000');
  }
  const env = process.env;
  const missing = ['STAMPEDE_ADMIN_TOKEN', 'STAMPEDE_USER_JWT_SECRET', 'STAMPEDE_PAYMENT_SECRET'].filter((k) => !env[k]);
  if (missing.length > 0) throw new UsageError(`--target needs the engine's secrets: set ${missing.join(', ')}`);
  const transport = new HttpTransport(url.origin, { connections, timeout_ms: 30_000 });
  // Before any traffic: the engine answers, and takes the admin token the verdict will read with.
  const probe = await transport
    .send({ method: 'GET', path: '/ops/shards', headers: { authorization: `Bearer ${env.STAMPEDE_ADMIN_TOKEN}` } })
    .catch((error: unknown) => error as Error);
  if (probe instanceof Error || probe.status !== 200) {
    await transport.close();
    const why = probe instanceof Error ? `cannot reach it (${probe.message})` : probe.status === 401 || probe.status === 403 ? 'it refused STAMPEDE_ADMIN_TOKEN' : `GET /ops/shards answered ${probe.status}`;
    throw new UsageError(`--target ${url.origin}: ${why}`);
  }
  return {
    transport,
    secrets: { adminToken: env.STAMPEDE_ADMIN_TOKEN!, userJwtSecret: env.STAMPEDE_USER_JWT_SECRET!, paymentSecret: env.STAMPEDE_PAYMENT_SECRET! },
    description: url.origin,
    stop: () => transport.close(),
  };
}

export interface SimCommandResult {
  passed: boolean;
  reportFile: string;
  jsonFile: string;
}

/**
 * The V8 semi-space size this process was started with (bin/stampede.mjs starts the simulator with
 * 32 MiB), shown with the run's options because the figures depend on it.
 */
function semiSpace(): string {
  for (const arg of [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)]) {
    const m = /^--max-semi-space-size=(\d+)$/.exec(arg);
    if (m) return `${m[1]} MiB`;
  }
  return "Node's default";
}

/** Runs `sim <args>`: the verdict and the reports written (undefined for --help). Throws UsageError on bad usage. */
export async function simCommand(args: string[], out: NodeJS.WritableStream = process.stdout): Promise<SimCommandResult | undefined> {
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    // node:util's messages name the option: "Option '--buyers <value>' argument is ambiguous ...".
    throw new UsageError((error as Error).message, { cause: error });
  }
  const { positionals, values } = parsed;
  const [mode, file, ...extra] = positionals;
  if (values.help) {
    out.write(SIM_HELP);
    return undefined;
  }
  if (mode === undefined) {
    out.write(SIM_HELP);
    throw new UsageError('no sim command given');
  }
  let lines: RecordedLine[];
  let title: string;
  let shown: Record<string, string | number | boolean>;
  let defaults: { speed: Speed; ttl_ms: number };
  if (mode === 'replay') {
    if (file === undefined || extra.length > 0) throw new UsageError('usage: stampede sim replay <file.jsonl> [options]');
    let recording: ParsedRecording;
    try {
      // Read as it is parsed (never one string of the whole file: Node cannot hold one past ~512 MiB).
      recording = await readRecording(file);
    } catch (error) {
      if (error instanceof RecordingFormatError) throw new UsageError(`${file}: ${error.message}`);
      if ((error as NodeJS.ErrnoException).code !== undefined) {
        throw new UsageError(`${file}: cannot read it (${(error as NodeJS.ErrnoException).code})`, { cause: error });
      }
      throw error;
    }
    lines = recording.lines;
    title = `replay ${file}`;
    defaults = { speed: 1, ttl_ms: 900_000 };
    shown = { file };
    if (recording.cut) {
      // What a crash mid-write leaves (the recorder writes whole lines, in one write per batch).
      out.write(`${file}: line ${recording.cut.line + 1} is cut short (not JSON, and no newline ends the file, as a crash mid-write leaves it): left out\n`);
      shown.cut_last_line = 1;
    }
  } else if (mode === 'flash-sale') {
    if (file !== undefined) throw new UsageError('usage: stampede sim flash-sale [options]');
    const sale = flashSaleOptions(values, await rulesOf(values));
    lines = generateFlashSale(sale);
    title = `flash sale, seed ${sale.seed}`;
    defaults = { speed: 'max', ttl_ms: 900_000 };
    const { rules, dates, ...rest } = sale;
    shown = { ...rest, dates: dates.join(','), rules: rules.map((r) => r.id).join(',') || 'none' };
    const writeTo = await writablePath(values, 'write');
    if (writeTo !== undefined) {
      // A line at a time: one string of the whole sale passed Node's limit (~512 MiB) at 2,000,000 buyers.
      await writeLines(writeTo, lines);
      out.write(`wrote the traffic (${lines.length} lines) to ${writeTo}\n`);
    }
  } else {
    throw new UsageError(`unknown sim command: ${mode}`);
  }
  const speed = speedOf(values, defaults.speed);
  let concurrency_max = int(values, 'concurrency', 256, 1, 100_000);
  // Over HTTP a request is timed from when the replayer hands it to the client; past the connections
  // (one request at a time each) it would wait in the client's queue and that wait would read as the
  // engine's latency (4x the server's time at the old default of 256 over 64). So one connection per
  // request in flight by default, and never more in flight than connections.
  const target = values.target !== undefined;
  const connections = int(values, 'connections', Math.min(concurrency_max, TARGET_CONNECTIONS_MAX), 1, TARGET_CONNECTIONS_MAX);
  if (target) concurrency_max = Math.min(concurrency_max, connections);
  const settle_timeout_ms = int(values, 'settle-ms', 60_000, 0, 3_600_000);
  const reportFile = (await writablePath(values, 'report', 'sim-report.html'))!;
  const jsonFile = (await writablePath(values, 'json', 'sim-report.json'))!;

  const engine = await engineFor(values, defaults.ttl_ms, connections);
  // Every line to start with; the lines the replay skips are taken off as it finds them.
  const progress = new Progress({ total: lines.length, label: mode });
  let outcome;
  try {
    outcome = await runSimulation({
      title,
      lines,
      engine,
      speed,
      concurrency_max,
      // In process the engine's clock is moved past the expiries; against --target the run waits for
      // them when they fall within --settle-ms (runSimulation).
      waitForExpiries: values['no-wait-expiries'] !== true,
      settle_timeout_ms,
      options: { ...shown, speed: String(speed), concurrency: concurrency_max, ...(target ? { connections } : {}), semi_space: semiSpace() },
      onAnswer: () => progress.tick(),
      // A skipped line is never sent: off the total, so the bar still ends full, and not a request.
      onSkip: () => progress.skip(),
      onSettling: (what) => progress.done(what),
    });
  } finally {
    progress.done();
    await engine.stop();
  }
  const figures = computeFigures(outcome.record);
  out.write(terminalReport(figures, { color: (out as NodeJS.WriteStream).isTTY === true }));
  if (outcome.log.compared > 0) {
    const { compared, mismatched, mismatches } = outcome.log;
    out.write(`\nOutcomes as recorded: ${compared - mismatched} of ${compared} lines answered as in the recording\n`);
    for (const m of mismatches.slice(0, 10)) {
      out.write(`  line ${m.line}: recorded ${m.recorded.status} ${m.recorded.error ?? ''}, replayed ${m.replayed.status} ${m.replayed.error ?? ''}\n`);
    }
  }
  await writeFile(reportFile, htmlReport(figures));
  await writeFile(jsonFile, toJson(figures));
  out.write(`\nReports: ${reportFile} (open it in a browser), ${jsonFile}\n`);
  return { passed: outcome.record.verdict?.passed === true, reportFile, jsonFile };
}

/** Writes the recording line by line, waiting when the stream's buffer is full. */
async function writeLines(file: string, lines: readonly RecordedLine[]): Promise<void> {
  const stream = createWriteStream(file);
  const failed = once(stream, 'error').then(([error]) => Promise.reject(error as Error));
  failed.catch(() => undefined);
  for (const line of lines) {
    if (!stream.write(formatLine(line))) await Promise.race([once(stream, 'drain'), failed]);
  }
  stream.end();
  await Promise.race([once(stream, 'finish'), failed]);
}
