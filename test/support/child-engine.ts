// Runs `stampede serve` as a child process (so a test can SIGKILL it) and waits for its URL.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { testEnv, type Backend } from './engine.ts';

const BIN = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'bin', 'stampede.mjs');

export interface ChildEngine {
  url: string;
  child: ChildProcess;
  output: () => string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * This process's environment less what would configure the engine: a developer who exported
 * STAMPEDE_MYSQL_URL (or NODE_ENV, STAMPEDE_RECORD, ...) to try the real backends must not have the
 * test engines run on their database.
 */
function shellEnvWithoutStampede(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of Object.keys(env)) if (name.startsWith('STAMPEDE_') || name === 'NODE_ENV') delete env[name];
  return env;
}

export async function startChildEngine(backend: Backend, extra: Record<string, string> = {}, timeout_ms = 60_000): Promise<ChildEngine> {
  const child = spawn(process.execPath, [BIN, 'serve'], {
    env: { ...shellEnvWithoutStampede(), ...testEnv(backend, extra) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`engine did not start in time:\n${out}`)), timeout_ms);
    const onData = () => {
      const m = /listening on (http:\/\/[^\s]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`engine exited with ${code}:\n${out}`));
    });
  });
  return {
    url,
    child,
    output: () => out,
    kill: async (signal = 'SIGKILL') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}
