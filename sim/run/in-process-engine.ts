// An engine for a simulation run inside the simulator's own process, on the embedded default
// (SQLite in a fresh directory, in-process bus, no Redis), reached through its HTTP handler
// without a socket. Its secrets are made for the run and handed to the replayer.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../app/config.ts';
import { StampedeNode } from '../../app/node.ts';
import { createHttpApp } from '../../http/app.ts';
import type { SimSecrets } from '../replay/credentials.ts';
import { InjectTransport, type Transport } from '../replay/transport.ts';

export interface InProcessEngineOptions {
  /** Where the SQLite database goes; default a new temporary directory, removed at stop. */
  dataDir?: string;
  /** Further STAMPEDE_* settings (e.g. STAMPEDE_RESERVATION_TTL_MS). */
  env?: Record<string, string>;
}

export interface SimEngine {
  transport: Transport;
  secrets: SimSecrets;
  /**
   * The engine's clock, when the simulator controls it (in process): the real time plus an offset
   * that `advanceClock` moves forward, so reservations can expire without waiting for them.
   */
  clock?: { now(): number; advance(ms: number): void };
  /** Shown in reports: where the engine ran. */
  description: string;
  /** The engine's node when it runs in this process. */
  node?: StampedeNode;
  stop(): Promise<void>;
}

export async function startInProcessEngine(options: InProcessEngineOptions = {}): Promise<SimEngine> {
  const temporary = options.dataDir === undefined;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'stampede-sim-'));
  const secret = () => randomBytes(32).toString('base64url');
  const secrets: SimSecrets = { adminToken: secret(), userJwtSecret: secret(), paymentSecret: secret() };
  const config = loadConfig({
    STAMPEDE_DATA_DIR: dataDir,
    STAMPEDE_ADMIN_TOKEN: secrets.adminToken,
    STAMPEDE_USER_JWT_SECRET: secrets.userJwtSecret,
    STAMPEDE_PAYMENT_SECRET: secrets.paymentSecret,
    STAMPEDE_CARD_KEY_SECRET: secret(),
    STAMPEDE_LOG_LEVEL: 'warn',
    // Only ever on loopback, on a port of the system's choosing.
    STAMPEDE_HTTP_HOST: '127.0.0.1',
    STAMPEDE_HTTP_PORT: '0',
    ...options.env,
  });
  let offset_ms = 0;
  const clock = {
    now: () => Date.now() + offset_ms,
    advance: (ms: number) => {
      offset_ms += Math.max(0, ms);
    },
  };
  const node = new StampedeNode(config, { logger: pino({ level: config.logLevel }, pino.destination(2)), clock });
  try {
    await node.start();
  } catch (error) {
    await node.stop().catch(() => undefined);
    if (temporary) rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  const transport = new InjectTransport(createHttpApp(node).callback());
  return {
    transport,
    secrets,
    node,
    clock,
    description: `in-process, embedded SQLite under ${dataDir}`,
    async stop() {
      await node.stop();
      if (temporary) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
