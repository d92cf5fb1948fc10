// Helpers of the messaging tests: a nats-server of the test file's own (optionally with a config
// file, e.g. docker/nats/nats.conf), so the fixed `stampede.cmd.*` / `stampede.ops.*` subjects of
// two engines never meet in one queue group; a JSON request helper; a log that keeps its lines (test/support/logs.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NatsConnection } from 'nats';
import { spawnNatsOnFreePort } from '../support/nats-server.ts';

/** The broker config of docker-compose.yml, tested as it ships. */
export const NATS_CONF_PATH = fileURLToPath(new URL('../../docker/nats/nats.conf', import.meta.url));

/** Passwords of the users in nats.conf for the tests (the config reads them from the environment). */
export const TEST_NATS_PASSWORDS = {
  STAMPEDE_NATS_ENGINE_PASSWORD: 'test-engine-password-0123456789',
  STAMPEDE_NATS_OPS_PASSWORD: 'test-ops-password-0123456789',
  STAMPEDE_NATS_M1_PASSWORD: 'test-m1-password-0123456789',
  STAMPEDE_NATS_M2_PASSWORD: 'test-m2-password-0123456789',
};

export interface OwnNats {
  url: string;
  port: number;
  /** Stops the server by its pid (SIGTERM, then SIGKILL after a bound) and removes its store. */
  stop(): Promise<void>;
}

const SERVER_STOP_MS_MAX = 5_000;

/**
 * Starts `nats-server` with JetStream on a free loopback port (another one if the port probed was
 * taken before the server bound it) and a temporary store; started once it says it listens. With
 * `config`, the file is used as is except for what the command line overrides: address, port, store folder.
 */
export async function startOwnNats(opts: { config?: string; env?: Record<string, string> } = {}): Promise<OwnNats> {
  const storeDir = mkdtempSync(join(tmpdir(), 'stampede-msg-nats-'));
  let started: Awaited<ReturnType<typeof spawnNatsOnFreePort>>;
  try {
    started = await spawnNatsOnFreePort((port) => [...(opts.config ? ['-c', opts.config] : []), '-js', '-a', '127.0.0.1', '-p', String(port), '-sd', storeDir], { ...process.env, ...opts.env });
  } catch (error) {
    rmSync(storeDir, { recursive: true, force: true });
    throw error;
  }
  const { child, exited, port } = started;
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(child.pid!, 'SIGTERM');
        const stopped = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), SERVER_STOP_MS_MAX))]);
        if (!stopped) {
          process.kill(child.pid!, 'SIGKILL');
          await exited;
        }
      }
      rmSync(storeDir, { recursive: true, force: true });
    },
  };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Sends `body` (JSON, or raw text/bytes as given) as a request and parses the JSON reply. */
export async function ask(nc: NatsConnection, subject: string, body: unknown, opts: { raw?: boolean; timeout_ms?: number } = {}): Promise<any> {
  const data = opts.raw ? (typeof body === 'string' ? encoder.encode(body) : (body as Uint8Array)) : encoder.encode(JSON.stringify(body));
  const reply = await nc.request(subject, data, { timeout: opts.timeout_ms ?? 10_000 });
  return JSON.parse(decoder.decode(reply.data));
}

/** The raw reply text, for checks that something (a key) is nowhere in it. */
export async function askText(nc: NatsConnection, subject: string, body: unknown, opts: { raw?: boolean } = {}): Promise<string> {
  const data = opts.raw ? encoder.encode(body as string) : encoder.encode(JSON.stringify(body));
  const reply = await nc.request(subject, data, { timeout: 10_000 });
  return decoder.decode(reply.data);
}

export { capturingLogger } from '../support/logs.ts';
