// The `stampede` command line: `serve` runs a node; `ops` queries a running node's ops routes.

import { IDENTIFIER_PATTERN } from '../http/validation.ts';
import { parseArgs } from 'node:util';
import { decimalInteger, loadConfig } from './config.ts';
import { mintHs256 } from '../sim/replay/credentials.ts';
import { StampedeNode, StoppedWhileStartingError } from './node.ts';

const HELP = `stampede — a purchase engine for flash sales

Usage:
  stampede serve                       run a node (configuration from STAMPEDE_* variables; see README)
  stampede sim replay <file> [...]     replay recorded traffic against an engine and judge it
  stampede sim flash-sale [...]        rehearse a synthetic flash sale and judge it (stampede sim --help)
  stampede ops inventory <skuId> <date>
  stampede ops order <orderId>
  stampede ops buyer <userId>
  stampede ops reconcile               compare actors, orders, deliveries and card keys; repair what is safe
  stampede ops shards                  query a running node (STAMPEDE_URL, default http://127.0.0.1:3000,
                                       and STAMPEDE_ADMIN_TOKEN)
  stampede ops no-shows                record the no-shows of dates that have ended, now
  stampede token <userId> [--ttl-s N]  print a buyer JWT for userId (signed with STAMPEDE_USER_JWT_SECRET)
  stampede --help
`;

export async function main(argv: string[]): Promise<void> {
  // The command is the first word that is no option; before it, only --help (a misspelt or unknown
  // option was ignored, and `stampede --port 4000 serve` ran on the configured port without a word).
  const at = argv.findIndex((arg) => !arg.startsWith('-'));
  const before = at < 0 ? argv : argv.slice(0, at);
  const command = at < 0 ? undefined : argv[at];
  const rest = at < 0 ? [] : argv.slice(at + 1);
  const unknown = before.find((arg) => arg !== '--help' && arg !== '-h');
  if (unknown !== undefined) return usageError(`unknown option: ${unknown}`);
  // The simulator parses its own options (and its own --help): hand it everything after `sim`.
  if (command === 'sim') return sim(rest);
  if (before.length > 0 || command === undefined || command === 'help') {
    process.stdout.write(HELP);
    return;
  }
  // `stampede serve --help`, `stampede ops order --help`, `stampede token --help`: the help, not a
  // request. After `--` an argument is only an argument (`stampede ops buyer -- -h` asks for buyer -h).
  const options = rest.indexOf('--') < 0 ? rest : rest.slice(0, rest.indexOf('--'));
  if (options.some((arg) => arg === '--help' || arg === '-h')) {
    process.stdout.write(HELP);
    return;
  }
  if (command === 'serve') {
    // Configured by STAMPEDE_* variables only: an argument (`serve --port 4000`) would be ignored.
    if (rest.length > 0) return usageError(`stampede serve takes no arguments (${rest.join(' ')}): it is configured by STAMPEDE_* variables (see README)`);
    return serve();
  }
  if (command === 'ops') return ops(rest);
  if (command === 'token') return token(rest);
  usageError(`unknown command: ${command}`);
}

/** A command line the CLI cannot run: one line and the usage on stderr, exit code 2. */
function usageError(message: string): void {
  process.stderr.write(`${message}\n\n${HELP}`);
  process.exitCode = 2;
}

async function serve(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(2);
  }
  const node = new StampedeNode(config);
  // Set before the start: a signal during a long recovery (the node listens meanwhile) stops it the
  // same graceful way, and the start then ends at its next step.
  let stoppingSince: number | undefined;
  let starting: Promise<void> | undefined;
  const shutdown = (signal: string) => {
    if (stoppingSince !== undefined) {
      // A second signal a while later: the operator does not want to wait for the graceful stop. (One
      // Ctrl-C under `npm start` can arrive twice at once: the terminal's and npm's forwarded copy.)
      if (performance.now() - stoppingSince < REPEAT_SIGNAL_MS) return;
      node.log.warn({ signal }, 'stopping at once (a second signal during the graceful stop)');
      process.exit(1);
    }
    stoppingSince = performance.now();
    node.log.info({ signal }, 'stopping');
    node.stop().then(
      // A start that failed on its own (not cut short by this stop) still exits 1, once serve() logged it.
      async () => process.exit((await startFailed(starting)) ? 1 : 0),
      async (error: unknown) => {
        node.log.error({ err: error }, 'stop failed');
        // A start that failed meanwhile is logged by serve() first.
        await startFailed(starting);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  try {
    // Listening from the moment the storage is this node's: probes answer during the recovery, and a
    // port that is taken (another node?) fails the start before it.
    starting = node.start({ listen: true });
    await starting;
  } catch (error) {
    if (!(error instanceof StoppedWhileStartingError)) node.log.fatal({ err: error, host: config.http.host, port: config.http.port }, 'could not start');
    // Stopped by a signal while it started (or failing while a signal stops it): the shutdown above ends the process.
    if (stoppingSince !== undefined) return;
    await node.stop().catch(() => undefined);
    process.exit(1);
  }
  if (stoppingSince !== undefined) return;
  const url = node.url!;
  const backend = config.mysqlUrl ? 'MySQL' : `SQLite under ${config.dataDir}`;
  const lines = [`Stampede is listening on ${url}  (storage: ${backend}${config.redisUrl ? ', Redis snapshots' : ''})`];
  if (config.generatedSecrets.length > 0) {
    lines.push('No secrets were configured, so these were generated for this session only:');
    const names = { adminToken: 'STAMPEDE_ADMIN_TOKEN', userJwtSecret: 'STAMPEDE_USER_JWT_SECRET', paymentSecret: 'STAMPEDE_PAYMENT_SECRET', cardKeySecret: 'STAMPEDE_CARD_KEY_SECRET' };
    for (const name of config.generatedSecrets) lines.push(`  ${names[name]}=${config.secrets[name]}`);
  }
  const kept = node.keptCardKeySecret;
  if (kept) {
    lines.push(
      kept.source === 'new'
        ? `No STAMPEDE_CARD_KEY_SECRET was configured: one was generated and kept in ${kept.path}, for the card keys stored under ${config.dataDir} (keep the file with them).`
        : `No STAMPEDE_CARD_KEY_SECRET was configured: the one kept in ${kept.path} seals the card keys.`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** True when the start failed for a reason of its own (not cut short by a stop). */
async function startFailed(start: Promise<void> | undefined): Promise<boolean> {
  if (!start) return false;
  return start.then(
    () => false,
    (error: unknown) => !(error instanceof StoppedWhileStartingError),
  );
}

/** A signal repeated within this long of the first is the same one delivered twice, not an operator's second. */
const REPEAT_SIGNAL_MS = 1_000;

async function sim(args: string[]): Promise<void> {
  // Loaded only for `sim`: the server does not need the simulator.
  const { simCommand, UsageError } = await import('../sim/cli.ts');
  try {
    const result = await simCommand(args);
    process.exitCode = result === undefined || result.passed ? 0 : 1;
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`${(error as Error).message}\n`);
      process.exitCode = 2;
      return;
    }
    throw error;
  }
}

/** `stampede ops <what> [ids]`: the route, its method, and the arguments it needs. */
const OPS_COMMANDS: Record<string, { usage: string; method: 'GET' | 'POST'; path(ids: string[]): string; timeout_ms?: number }> = {
  inventory: { usage: '<skuId> <date>', method: 'GET', path: ([sku, date]) => `/ops/inventory/${encodeURIComponent(sku!)}/${encodeURIComponent(date!)}` },
  order: { usage: '<orderId>', method: 'GET', path: ([id]) => `/ops/orders/${encodeURIComponent(id!)}` },
  buyer: { usage: '<userId>', method: 'GET', path: ([id]) => `/ops/buyers/${encodeURIComponent(id!)}` },
  shards: { usage: '', method: 'GET', path: () => '/ops/shards' },
  // A reconciliation pass may look at thousands of orders.
  reconcile: { usage: '', method: 'POST', path: () => '/ops/reconcile', timeout_ms: 300_000 },
  'no-shows': { usage: '', method: 'POST', path: () => '/ops/no-shows', timeout_ms: 300_000 },
};

async function ops(args: string[]): Promise<void> {
  // `--` ends the options: what follows is ids even if it looks like one (`-h`).
  const [what, ...ids] = args.filter((arg, i) => !(arg === '--' && i === args.indexOf('--')));
  // Own properties only: `constructor` or `toString` are no ops commands.
  const command = what && Object.hasOwn(OPS_COMMANDS, what) ? OPS_COMMANDS[what] : undefined;
  if (!command) {
    process.stderr.write(`${what ? `unknown ops command: ${what}` : 'stampede ops: which query?'}\n\n${HELP}`);
    process.exitCode = 2;
    return;
  }
  // Exactly the arguments the query takes, none empty: an extra one (a typo, a second id) was ignored.
  const arity = command.usage === '' ? 0 : command.usage.split(' ').length;
  if (ids.length !== arity || ids.some((id) => id === '')) {
    process.stderr.write(`usage: stampede ops ${what}${command.usage ? ` ${command.usage}` : ''}\n`);
    process.exitCode = 2;
    return;
  }
  const path = command.path(ids);
  const base = process.env.STAMPEDE_URL ?? 'http://127.0.0.1:3000';
  let res: Response;
  let text: string;
  try {
    res = await fetch(new URL(path, base), {
      method: command.method,
      headers: { authorization: `Bearer ${process.env.STAMPEDE_ADMIN_TOKEN ?? ''}` },
      signal: AbortSignal.timeout(command.timeout_ms ?? 10_000),
    });
    // The body is read within the same deadline: a node that stops mid-answer is the same error.
    text = await res.text();
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    process.stderr.write(`cannot reach the node at ${base} (STAMPEDE_URL): ${cause?.code ?? cause?.message ?? (error as Error).message}\n`);
    process.exitCode = 1;
    return;
  }
  process.stdout.write(`${text}\n`);
  if (res.status === 401 && !process.env.STAMPEDE_ADMIN_TOKEN) process.stderr.write('set STAMPEDE_ADMIN_TOKEN to the admin token the node printed at start\n');
  if (!res.ok) process.exitCode = 1;
  // A pass the node cut short as it stopped (reconcile, no-shows): not a whole pass.
  else if (stoppedPass(text)) {
    process.stderr.write('the node stopped during this pass: it did not finish; run it again\n');
    process.exitCode = 1;
  } else if (failedChecks(text) > 0) {
    // A reconciliation whose checks could not all run (a store down, a SKU/date that cannot recover)
    // did not check everything: a cron or a script must not take it for a clean pass.
    process.stderr.write(`${failedChecks(text)} check(s) of this pass could not run (check_failed): run it again once the node's dependencies answer\n`);
    process.exitCode = 1;
  }
}

/** The `check_failed` findings of a reconciliation report (0 for any other body). */
function failedChecks(text: string): number {
  try {
    const findings = (JSON.parse(text) as { findings?: unknown } | null)?.findings;
    return Array.isArray(findings) ? findings.filter((f) => (f as { kind?: unknown } | null)?.kind === 'check_failed').length : 0;
  } catch {
    return 0;
  }
}

/** The longest `stampede token --ttl-s` (a year): a token for trying the storefront by hand. */
const TOKEN_TTL_MAX_S = 365 * 86_400;

/** `stampede token <userId> [--ttl-s N]`: a buyer JWT (HS256, sub, iat, exp) signed with STAMPEDE_USER_JWT_SECRET. */
function token(args: string[]): void {
  const usage = (): void => {
    process.stderr.write('usage: stampede token <userId> [--ttl-s N]   (userId matching ^[A-Za-z0-9._:-]{1,64}$; N seconds from 1 to 31536000, default 3600)\n');
    process.exitCode = 2;
  };
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, options: { 'ttl-s': { type: 'string' } } });
  } catch (error) {
    if (!(error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) throw error;
    process.stderr.write(`${(error as Error).message}\n`);
    return usage();
  }
  const { positionals, values } = parsed;
  const [userId] = positionals;
  const secret = process.env.STAMPEDE_USER_JWT_SECRET;
  // Decimal digits, as the configuration's numbers (`Number` took "1e3", "0x10" and " 60"), at most a year.
  const rawTtl = values['ttl-s'];
  const ttl_s = rawTtl === undefined ? 3_600 : decimalInteger(rawTtl);
  // The engine refuses a token whose subject is no identifier (http/auth.ts): none is minted.
  if (!userId || positionals.length !== 1 || !IDENTIFIER_PATTERN.test(userId) || !Number.isSafeInteger(ttl_s) || ttl_s < 1 || ttl_s > TOKEN_TTL_MAX_S) return usage();
  if (!secret) {
    process.stderr.write('set STAMPEDE_USER_JWT_SECRET to the buyer-JWT secret the node printed at start (or was given)\n');
    process.exitCode = 2;
    return;
  }
  process.stdout.write(`${mintHs256(secret, userId, Math.floor(Date.now() / 1000), ttl_s)}\n`);
}

/** Whether an ops answer is the report of a pass the node cut short as it stopped (`"stopped": true`). */
function stoppedPass(text: string): boolean {
  try {
    return (JSON.parse(text) as { stopped?: unknown } | null)?.stopped === true;
  } catch {
    return false;
  }
}
