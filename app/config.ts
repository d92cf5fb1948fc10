// Configuration, read once from the environment (API.md "Running"). Every knob has a named bound
// and a default; a bad value stops the process at start with a message naming the variable.

import { randomBytes } from 'node:crypto';
import { z } from 'zod';

/** A whole number written in decimal digits (no sign, space, exponent or hex: " " is not 0, "9e5" not 900000). */
export const DECIMAL_INTEGER = /^[0-9]{1,16}$/;

/** `raw` read as a number by DECIMAL_INTEGER's rule, else NaN (command-line options read it too). */
export function decimalInteger(raw: unknown): number {
  return typeof raw === 'string' && DECIMAL_INTEGER.test(raw) ? Number(raw) : Number.NaN;
}

const int = (min: number, max: number, dflt: number) =>
  z
    .string()
    .regex(DECIMAL_INTEGER, { message: 'must be a whole number written in decimal digits' })
    .transform(Number)
    .pipe(z.number().int().min(min).max(max))
    .default(dflt);
/** The URL, or undefined when it does not parse (zod runs the refinements after .url() failed too). */
const parsedUrl = (u: string): URL | undefined => {
  try {
    return new URL(u);
  } catch {
    return undefined;
  }
};
const url = (protocols: string[]) =>
  z
    .string()
    .url()
    .refine((u) => protocols.includes(parsedUrl(u)?.protocol ?? ''), { message: `must be a ${protocols.join(' or ')} URL` })
    .refine((u) => (parsedUrl(u)?.hostname ?? '') !== '', { message: 'must name a host' })
    .optional();

const schema = z.object({
  STAMPEDE_HTTP_PORT: int(0, 65535, 3000),
  // Loopback unless told otherwise: `npm start` prints generated secrets for a developer's machine,
  // not for its network (the image and the compose stack set 0.0.0.0).
  STAMPEDE_HTTP_HOST: z.string().min(1).default('127.0.0.1'),
  STAMPEDE_DATA_DIR: z.string().min(1).default('./data'),
  STAMPEDE_MYSQL_URL: url(['mysql:', 'mariadb:']),
  STAMPEDE_REDIS_URL: url(['redis:', 'rediss:']),
  STAMPEDE_NATS_URL: url(['nats:', 'tls:']),
  /** The engine's NATS user (docker/nats/nats.conf); with NODE_ENV=production and a NATS URL, required. */
  STAMPEDE_NATS_USER: z.string().min(1).optional(),
  STAMPEDE_NATS_PASSWORD: z.string().min(1).optional(),
  /** Sent as `Authorization: Bearer <token>`: visible ASCII only (a space or an edge blank could never match). */
  STAMPEDE_ADMIN_TOKEN: z
    .string()
    .regex(/^[\x21-\x7E]+$/, { message: 'must be printable ASCII without spaces (it is sent as a bearer token)' })
    .optional(),
  // Their lengths are checked below (SECRET_LENGTH_MIN): refused in production, a warning elsewhere.
  STAMPEDE_USER_JWT_SECRET: z.string().optional(),
  STAMPEDE_PAYMENT_SECRET: z.string().optional(),
  STAMPEDE_CARD_KEY_SECRET: z.string().optional(),
  STAMPEDE_RESERVATION_TTL_MS: int(1_000, 7 * 86_400_000, 900_000),
  STAMPEDE_SHARDS: int(1, 4096, 64),
  STAMPEDE_MAILBOX_MAX: int(1, 10_000_000, 100_000),
  STAMPEDE_IDLE_MS: int(100, 86_400_000, 60_000),
  STAMPEDE_ASK_TIMEOUT_MS: int(100, 120_000, 10_000),
  STAMPEDE_PENDING_EVENTS_MAX: int(1, 1_000_000, 20_000),
  STAMPEDE_SNAPSHOT_EVERY_EVENTS: int(1, 100_000_000, 50_000),
  STAMPEDE_SNAPSHOT_EVERY_MS: int(100, 86_400_000, 60_000),
  STAMPEDE_WRITES_IN_FLIGHT_MAX: int(1, 64, 4),
  STAMPEDE_COMMIT_EVENTS_MAX: int(1, 100_000, 20_000),
  STAMPEDE_RECOVERY_CONCURRENCY: int(1, 256, 16),
  STAMPEDE_IDEMPOTENCY_CACHE_MAX: int(1_000, 100_000_000, 200_000),
  STAMPEDE_RATE_LIMIT_PER_S: int(0, 1_000_000, 0),
  STAMPEDE_RATE_LIMIT_BURST: int(1, 1_000_000, 20),
  /** Reconciliation runs this often (0: only on demand, `stampede ops reconcile`). */
  STAMPEDE_RECONCILE_INTERVAL_MS: int(0, 86_400_000, 60_000),
  /** A paid order undelivered this long is repaired by reconciliation (in flight before that). */
  STAMPEDE_DELIVERY_GRACE_MS: int(100, 86_400_000, 30_000),
  STAMPEDE_NODE_ID: z.string().regex(/^[A-Za-z0-9._:-]{1,64}$/).default('node-1'),
  STAMPEDE_RECORD: z.string().min(1).optional(),
  /** The recording stops (serving on) at the line that would take its file past this many bytes. */
  STAMPEDE_RECORD_MAX_BYTES: int(1_024, 1_099_511_627_776, 4 * 1024 ** 3),
  STAMPEDE_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  NODE_ENV: z.string().optional(),
});

export type Env = z.infer<typeof schema>;

export interface Secrets {
  adminToken: string;
  userJwtSecret: string;
  paymentSecret: string;
  cardKeySecret: string;
}

export interface Config {
  http: { port: number; host: string };
  dataDir: string;
  mysqlUrl: string | undefined;
  redisUrl: string | undefined;
  natsUrl: string | undefined;
  natsUser: string | undefined;
  natsPassword: string | undefined;
  reconcile_interval_ms: number;
  delivery_grace_ms: number;
  secrets: Secrets;
  /** Names of the secrets made up for this session because none was set. */
  generatedSecrets: (keyof Secrets)[];
  /**
   * STAMPEDE_* variables set that the engine does not know (a typo such as STAMPEDE_PORT, or one for
   * another tool): the node warns of them at start, since each leaves a setting at its default.
   */
  unknownVariables: string[];
  /** Settings the node runs with but warns of at start (a secret shorter than advised, outside production). */
  warnings: string[];
  reservation_ttl_ms: number;
  shards: number;
  mailbox_max: number;
  idle_ms: number;
  ask_timeout_ms: number;
  pending_events_max: number;
  snapshot_every_events: number;
  snapshot_every_ms: number;
  writes_in_flight_max: number;
  commit_events_max: number;
  recovery_concurrency: number;
  idempotency_cache_max: number;
  rate_limit_per_s: number;
  rate_limit_burst: number;
  nodeId: string;
  recordFile: string | undefined;
  record_file_bytes_max: number;
  logLevel: Env['STAMPEDE_LOG_LEVEL'];
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** How the example secrets of docker-compose.yml begin: refused when NODE_ENV=production. */
export const EXAMPLE_SECRET_PREFIX = 'change-me';

/**
 * Advised least lengths of the secrets: a production node refuses shorter ones; any other node runs
 * with them and warns (the contract sets no length, and a developer's short secret must not stop it).
 * 32 for the keys of HMAC-SHA256 and HKDF (RFC 7518 §3.2: a key as long as the hash's output).
 */
export const SECRET_LENGTH_MIN: Record<keyof Secrets, number> = { adminToken: 16, userJwtSecret: 32, paymentSecret: 16, cardKeySecret: 32 };

const SECRET_VARS: [keyof Secrets, keyof Env][] = [
  ['adminToken', 'STAMPEDE_ADMIN_TOKEN'],
  ['userJwtSecret', 'STAMPEDE_USER_JWT_SECRET'],
  ['paymentSecret', 'STAMPEDE_PAYMENT_SECRET'],
  ['cardKeySecret', 'STAMPEDE_CARD_KEY_SECRET'],
];

/** STAMPEDE_* variables read elsewhere than the node's configuration (the CLI; STAMPEDE_TEST_* are the tests'). */
const OTHER_KNOWN_VARIABLES = new Set(['STAMPEDE_URL', 'STAMPEDE_SIM_SEMI_SPACE_MIB']);

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([k, v]) => (k.startsWith('STAMPEDE_') || k === 'NODE_ENV') && v !== ''));
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  const e = parsed.data;
  // The events waiting for an actor's next write all go into that one write: it must fit one INSERT.
  if (e.STAMPEDE_PENDING_EVENTS_MAX > e.STAMPEDE_COMMIT_EVENTS_MAX) {
    throw new ConfigError(
      `invalid configuration:\n  STAMPEDE_PENDING_EVENTS_MAX (${e.STAMPEDE_PENDING_EVENTS_MAX}) must not exceed STAMPEDE_COMMIT_EVENTS_MAX (${e.STAMPEDE_COMMIT_EVENTS_MAX})`,
    );
  }
  const generated: (keyof Secrets)[] = [];
  const secrets = {} as Secrets;
  // "Production", "PRODUCTION " and the like are production too: a typo must not turn the checks off.
  const production = e.NODE_ENV?.trim().toLowerCase() === 'production';
  // docker-compose.yml's example values are public: a production node must not run on them (its NATS
  // password is one too). Every problem at once, not one per restart.
  const problems: string[] = [];
  const examples = [...SECRET_VARS.map(([, variable]) => variable), 'STAMPEDE_NATS_PASSWORD' as const];
  for (const variable of examples) {
    const value = e[variable] as string | undefined;
    if (production && value?.startsWith(EXAMPLE_SECRET_PREFIX)) problems.push(`${variable} is an example value (it starts with "${EXAMPLE_SECRET_PREFIX}"): set a secret of your own`);
  }
  const warnings: string[] = [];
  for (const [name, variable] of SECRET_VARS) {
    const value = e[variable] as string | undefined;
    if (value && value.length < SECRET_LENGTH_MIN[name]) {
      const short = `${variable} is ${value.length} characters long; at least ${SECRET_LENGTH_MIN[name]} are advised`;
      if (production) problems.push(short);
      else warnings.push(short);
    }
    if (value) secrets[name] = value;
    else if (production) problems.push(`${variable} must be set`);
    else {
      secrets[name] = randomBytes(32).toString('base64url');
      generated.push(name);
    }
  }
  // The broker's users are what keep merchants apart: the engine takes a merchant's identity from the
  // command's subject alone (messaging/merchant-commands.ts), so on a server without users anyone could
  // command any merchant's SKUs and read every merchant's events. A production node with NATS signs in.
  if (production && e.STAMPEDE_NATS_URL) {
    for (const variable of ['STAMPEDE_NATS_USER', 'STAMPEDE_NATS_PASSWORD'] as const) {
      if (!e[variable]) problems.push(`${variable} must be set with STAMPEDE_NATS_URL (the engine's NATS user: the broker's per-merchant permissions are what keep merchants apart)`);
    }
  }
  if (problems.length > 0) throw new ConfigError(`invalid configuration for NODE_ENV=production:\n  ${problems.join('\n  ')}`);
  return {
    http: { port: e.STAMPEDE_HTTP_PORT, host: e.STAMPEDE_HTTP_HOST },
    dataDir: e.STAMPEDE_DATA_DIR,
    mysqlUrl: e.STAMPEDE_MYSQL_URL,
    redisUrl: e.STAMPEDE_REDIS_URL,
    natsUrl: e.STAMPEDE_NATS_URL,
    natsUser: e.STAMPEDE_NATS_USER,
    natsPassword: e.STAMPEDE_NATS_PASSWORD,
    reconcile_interval_ms: e.STAMPEDE_RECONCILE_INTERVAL_MS,
    delivery_grace_ms: e.STAMPEDE_DELIVERY_GRACE_MS,
    secrets,
    generatedSecrets: generated,
    warnings,
    unknownVariables: Object.keys(present).filter((k) => k.startsWith('STAMPEDE_') && !(k in schema.shape) && !OTHER_KNOWN_VARIABLES.has(k) && !k.startsWith('STAMPEDE_TEST_')).sort(),
    reservation_ttl_ms: e.STAMPEDE_RESERVATION_TTL_MS,
    shards: e.STAMPEDE_SHARDS,
    mailbox_max: e.STAMPEDE_MAILBOX_MAX,
    idle_ms: e.STAMPEDE_IDLE_MS,
    ask_timeout_ms: e.STAMPEDE_ASK_TIMEOUT_MS,
    pending_events_max: e.STAMPEDE_PENDING_EVENTS_MAX,
    snapshot_every_events: e.STAMPEDE_SNAPSHOT_EVERY_EVENTS,
    snapshot_every_ms: e.STAMPEDE_SNAPSHOT_EVERY_MS,
    writes_in_flight_max: e.STAMPEDE_WRITES_IN_FLIGHT_MAX,
    commit_events_max: e.STAMPEDE_COMMIT_EVENTS_MAX,
    recovery_concurrency: e.STAMPEDE_RECOVERY_CONCURRENCY,
    idempotency_cache_max: e.STAMPEDE_IDEMPOTENCY_CACHE_MAX,
    rate_limit_per_s: e.STAMPEDE_RATE_LIMIT_PER_S,
    rate_limit_burst: e.STAMPEDE_RATE_LIMIT_BURST,
    nodeId: e.STAMPEDE_NODE_ID,
    recordFile: e.STAMPEDE_RECORD,
    record_file_bytes_max: e.STAMPEDE_RECORD_MAX_BYTES,
    logLevel: e.STAMPEDE_LOG_LEVEL,
  };
}
