// Starts a real Stampede node in this process (embedded SQLite in a temp dir, or MariaDB + Redis)
// on an ephemeral port, with known secrets, and gives tests a small HTTP client for it.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig, type Config } from '../../app/config.ts';
import { StampedeNode } from '../../app/node.ts';
import type { Clock } from '../../engine/index.ts';
import { signBuyerToken, signPayment } from '../../http/signing.ts';
import { freshMysqlDatabase, REDIS_URL } from './services.ts';

export const SECRETS = {
  STAMPEDE_ADMIN_TOKEN: 'test-admin-token-0123456789abcdef',
  STAMPEDE_USER_JWT_SECRET: 'test-user-jwt-secret-0123456789abcdef0123',
  STAMPEDE_PAYMENT_SECRET: 'test-payment-secret-0123456789',
  STAMPEDE_CARD_KEY_SECRET: 'test-card-key-secret-0123456789abcdef0123',
};

export type Backend = { kind: 'sqlite'; dir?: string } | { kind: 'mysql'; url: string; redisUrl?: string };

/**
 * The same backend for an engine that a test stops and starts again: on SQLite a folder that outlives
 * one engine (left alone, each engine gets a fresh one); MariaDB's database outlives it anyway.
 */
export function restartable(backend: Backend): Backend {
  return backend.kind === 'sqlite' && backend.dir === undefined ? { kind: 'sqlite', dir: mkdtempSync(join(tmpdir(), 'stampede-restartable-')) } : backend;
}

/**
 * The two backends an end-to-end suite runs on, for `describe.each`: the embedded SQLite default and
 * MariaDB + Redis (a fresh database called `mysqlDatabase`).
 */
export function engineBackends(mysqlDatabase: string) {
  return [
    ['embedded SQLite', async () => ({ kind: 'sqlite' as const })],
    ['MariaDB + Redis', async () => ({ kind: 'mysql' as const, url: await freshMysqlDatabase(mysqlDatabase), redisUrl: REDIS_URL })],
  ] as const;
}

export function testEnv(backend: Backend, extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = { ...SECRETS, STAMPEDE_HTTP_PORT: '0', STAMPEDE_HTTP_HOST: '127.0.0.1', STAMPEDE_LOG_LEVEL: 'warn' };
  if (backend.kind === 'sqlite') env.STAMPEDE_DATA_DIR = backend.dir ?? mkdtempSync(join(tmpdir(), 'stampede-test-'));
  else {
    env.STAMPEDE_MYSQL_URL = backend.url;
    if (backend.redisUrl) env.STAMPEDE_REDIS_URL = backend.redisUrl;
  }
  return { ...env, ...extra };
}

export interface TestEngine {
  node: StampedeNode;
  url: string;
  config: Config;
  client: Client;
  stop(): Promise<void>;
}

export async function startEngine(backend: Backend, extra: Record<string, string> = {}, clock?: Clock): Promise<TestEngine> {
  const config = loadConfig(testEnv(backend, extra));
  const node = new StampedeNode(config, { logger: pino({ level: 'warn' }), ...(clock ? { clock } : {}) });
  await node.start();
  const url = await node.listen();
  return { node, url, config, client: new Client(url, clock), stop: () => node.stop() };
}

export interface Answer<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export class Client {
  private tokens = new Map<string, string>();
  constructor(
    readonly url: string,
    private readonly clock?: Clock,
  ) {}

  /** Forgets the minted tokens (after the test moved the clock past their expiry). */
  forgetTokens(): void {
    this.tokens.clear();
  }

  async token(user: string): Promise<string> {
    let t = this.tokens.get(user);
    if (!t) {
      t = await signBuyerToken(SECRETS.STAMPEDE_USER_JWT_SECRET, user, { expiresIn_s: 3600, now: this.clock?.now() ?? Date.now() });
      this.tokens.set(user, t);
    }
    return t;
  }

  async request(method: string, path: string, opts: { body?: unknown; raw?: string; auth?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (opts.auth) headers.authorization = `Bearer ${opts.auth}`;
    let body: string | undefined;
    if (opts.raw !== undefined) body = opts.raw;
    else if (opts.body !== undefined) body = JSON.stringify(opts.body);
    if (body !== undefined && !headers['content-type']) headers['content-type'] = 'application/json';
    const res = await fetch(this.url + path, { method, headers, ...(body !== undefined ? { body } : {}) });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON */
    }
    return { status: res.status, body: parsed, headers: res.headers };
  }

  admin(method: string, path: string, body?: unknown): Promise<Answer> {
    return this.request(method, path, { body, auth: SECRETS.STAMPEDE_ADMIN_TOKEN });
  }

  async buyer(user: string, method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Answer> {
    return this.request(method, path, { body, auth: await this.token(user), ...(headers ? { headers } : {}) });
  }

  /**
   * Sends a payment callback signed with the test payment secret at `t_s` (default: the clock's
   * now). `tamper` changes the body after signing.
   */
  pay(
    body: { orderId: string; paymentId: string; amountCents: number; status: 'succeeded' | 'failed' },
    opts: { t_s?: number; secret?: string; tamper?: (raw: string) => string; signature?: string | null } = {},
  ): Promise<Answer> {
    const raw = JSON.stringify(body);
    const t_s = opts.t_s ?? Math.floor((this.clock?.now() ?? Date.now()) / 1000);
    const headers: Record<string, string> = {};
    if (opts.signature !== null) headers['stampede-signature'] = opts.signature ?? signPayment(opts.secret ?? SECRETS.STAMPEDE_PAYMENT_SECRET, raw, t_s);
    return this.request('POST', '/v1/payments/callback', { raw: opts.tamper ? opts.tamper(raw) : raw, headers });
  }

  /** Creates a SKU (on sale now) with stock on one date. */
  async sku(skuId: string, date: string, total: number, extra: Record<string, unknown> = {}): Promise<void> {
    const put = await this.admin('PUT', `/v1/skus/${skuId}`, { name: skuId, priceCents: 1999, merchantId: 'm1', delivery: 'ticket', ...extra });
    if (put.status !== 200) throw new Error(`sku upsert: ${put.status} ${JSON.stringify(put.body)}`);
    const stock = await this.admin('PUT', `/v1/skus/${skuId}/stock/${date}`, { total });
    if (stock.status !== 200) throw new Error(`stock: ${stock.status} ${JSON.stringify(stock.body)}`);
  }
}

/**
 * A delivery that never happens after a payment: the bus's consumer stopped and the in-process start
 * of delivery switched off (as if the process had crashed right after the payment).
 */
export async function switchOffDelivery(e: TestEngine): Promise<void> {
  await e.node['deliveryConsumer']?.stop();
  const options = e.node.orders['options'] as { paid?: unknown; deliveryAttempted?: unknown };
  options.paid = undefined;
  options.deliveryAttempted = undefined;
}
