// Proves one node per data folder on the embedded default: a second `stampede serve` on the folder
// of a running one exits with an error before serving (two nodes on one SQLite file each kept their
// own state and broke each other's writes and purchase rules), a lock left by a killed node is taken
// over, and a stop releases it.
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DATA_DIR_LOCK_FILE, DataDirLockedError, lockDataDir } from '../../app/data-dir-lock.ts';
import { startChildEngine, type ChildEngine } from '../support/child-engine.ts';
import { startEngine } from '../support/engine.ts';

describe('the data folder lock', () => {
  const children: ChildEngine[] = [];
  afterEach(async () => {
    for (const c of children.splice(0)) await c.kill('SIGKILL');
  });

  it('stops a second node from starting on the folder of a running one; a killed node\'s lock is taken over', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stampede-lock-'));
    const first = await startChildEngine({ kind: 'sqlite', dir });
    children.push(first);
    const second = await startChildEngine({ kind: 'sqlite', dir }).then(
      (c) => (children.push(c), 'started'),
      (error: Error) => error.message,
    );
    expect(second).toMatch(/engine exited with 1/);
    expect(second).toMatch(/used by another Stampede node \(pid \d+/);
    await first.kill('SIGKILL');
    expect(existsSync(join(dir, DATA_DIR_LOCK_FILE))).toBe(true);
    const third = await startChildEngine({ kind: 'sqlite', dir });
    children.push(third);
    expect((await fetch(`${third.url}/healthz`)).status).toBe(200);
  });

  it('is released by a stop, and refuses a folder held by another live process', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stampede-lock-'));
    const e = await startEngine({ kind: 'sqlite', dir });
    expect(existsSync(join(dir, DATA_DIR_LOCK_FILE))).toBe(true);
    await e.stop();
    expect(existsSync(join(dir, DATA_DIR_LOCK_FILE))).toBe(false);

    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      writeFileSync(join(dir, DATA_DIR_LOCK_FILE), `${other.pid}\n`);
      expect(() => lockDataDir(dir)).toThrow(DataDirLockedError);
    } finally {
      other.kill('SIGKILL');
      await new Promise((resolve) => other.once('exit', resolve));
    }
    const release = lockDataDir(dir);
    release();
    expect(existsSync(join(dir, DATA_DIR_LOCK_FILE))).toBe(false);
  });
});
