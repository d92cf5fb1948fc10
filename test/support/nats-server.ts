// A nats-server of a test's own (JetStream on, a free loopback port, its own store folder), so an
// outage test can kill and restart it without touching the shared server. Stopped by its pid.
// A free port is only free when it is probed: another process may bind it before nats-server does
// (and a port that answers is then someone else's). So the server counts as started only when it
// says it listens; a first start whose port was taken meanwhile tries a fresh port, and a restart
// whose port was taken while the server was down fails saying so.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SERVER_START_MS_MAX = 10_000;
/** Fresh ports a first start tries before giving up. */
const FIRST_START_PORTS_MAX = 5;
/** Tries of a restart on its port (a port freed a moment ago may still be held briefly). */
const RESTART_TRIES_MAX = 3;

/** nats-server could not bind its port: another process has it. */
export class NatsPortTakenError extends Error {
  override name = 'NatsPortTakenError';
}

export interface SpawnedNats {
  child: ChildProcess;
  exited: Promise<void>;
}

/**
 * Spawns `nats-server` with `args` (which must hold `-p port`) and resolves once it logs that it
 * listens for clients on `port`. Rejects (the child gone) with NatsPortTakenError when the port is
 * taken, or with its output when it exits or stays silent for SERVER_START_MS_MAX.
 */
export function spawnNatsServer(args: string[], port: number, env?: NodeJS.ProcessEnv): Promise<SpawnedNats> {
  const child = spawn('nats-server', args, { stdio: ['ignore', 'ignore', 'pipe'], env: env ?? process.env });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise<SpawnedNats>((resolve, reject) => {
    let output = '';
    let done = false;
    const finish = (error?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.stderr?.removeAllListeners('data');
      child.stderr?.resume(); // keep draining: a full pipe would block the server
      if (!error) return resolve({ child, exited });
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
      void exited.then(() => reject(error));
    };
    const timer = setTimeout(() => finish(new Error(`nats-server ${args.join(' ')} said nothing of listening within ${SERVER_START_MS_MAX} ms: ${output.slice(0, 2_000)}`)), SERVER_START_MS_MAX);
    child.on('error', (error) => finish(new Error(`nats-server could not be run: ${error.message}`)));
    child.stderr?.on('data', (chunk: Buffer) => {
      if (output.length < 20_000) output += chunk.toString();
      if (/address already in use/.test(output)) finish(new NatsPortTakenError(`port ${port} is taken by another process`));
      else if (output.includes(`Listening for client connections on 127.0.0.1:${port}`)) finish();
    });
    void exited.then(() => finish(/address already in use/.test(output) ? new NatsPortTakenError(`port ${port} is taken by another process`) : new Error(`nats-server ${args.join(' ')} exited: ${output.slice(0, 2_000)}`)));
  });
}

/**
 * Starts nats-server on a fresh free port, another one while the port probed was taken before it
 * bound it. `nextPort`: where ports come from (the tests of this helper hand it a taken one first).
 */
export async function spawnNatsOnFreePort(argsFor: (port: number) => string[], env?: NodeJS.ProcessEnv, nextPort: () => Promise<number> = freePort): Promise<SpawnedNats & { port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = await nextPort();
    try {
      return { ...(await spawnNatsServer(argsFor(port), port, env)), port };
    } catch (error) {
      if (!(error instanceof NatsPortTakenError) || attempt >= FIRST_START_PORTS_MAX) throw error;
    }
  }
}

export class OwnNatsServer {
  private child: ChildProcess | undefined;
  private exited: Promise<void> | undefined;

  private constructor(
    readonly port: number,
    private readonly dataDir: string,
  ) {}

  static async start(): Promise<OwnNatsServer> {
    const dataDir = mkdtempSync(join(tmpdir(), 'stampede-nats-'));
    try {
      const { child, exited, port } = await spawnNatsOnFreePort((p) => OwnNatsServer.args(p, dataDir));
      const server = new OwnNatsServer(port, dataDir);
      server.child = child;
      server.exited = exited;
      return server;
    } catch (error) {
      rmSync(dataDir, { recursive: true, force: true });
      throw error;
    }
  }

  private static args(port: number, dataDir: string): string[] {
    return ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dataDir];
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /**
   * Starts the server again, on the same port (its clients know no other) and store, and waits until
   * it listens. Fails with a message saying so if another process took the port while it was down.
   */
  async start(): Promise<void> {
    if (this.child) return;
    for (let attempt = 1; ; attempt++) {
      try {
        const { child, exited } = await spawnNatsServer(OwnNatsServer.args(this.port, this.dataDir), this.port);
        this.child = child;
        this.exited = exited;
        return;
      } catch (error) {
        if (!(error instanceof NatsPortTakenError)) throw error;
        if (attempt >= RESTART_TRIES_MAX) {
          throw new Error(`nats-server could not start again on port ${this.port}: another process took the port while it was down`, { cause: error });
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** Kills the server (SIGKILL: a crash, not a shutdown) and waits for it to exit. */
  async kill(): Promise<void> {
    const child = this.child;
    const exited = this.exited;
    this.child = undefined;
    this.exited = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    process.kill(child.pid!, 'SIGKILL');
    await exited;
  }

  async dispose(): Promise<void> {
    await this.kill();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
