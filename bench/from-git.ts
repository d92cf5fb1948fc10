// A source file as it was at an earlier commit, imported from a temporary copy: a benchmark's baseline
// measured in the same run as today's code. Its relative imports load today's files (the commit's
// own are not copied): a baseline of one file, in today's surroundings.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** `path` (from the repository's root) at `commit`, imported; `done` removes the temporary copy. */
export async function importFromGit<M>(commit: string, path: string): Promise<{ module: M; done: () => void }> {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const original = execFileSync('git', ['show', `${commit}:${path}`], { cwd: root, encoding: 'utf8' });
  const source = original.replace(/(from\s+|import\s*\(\s*)(['"])(\.{1,2}\/[^'"]+)\2/g, (_, head: string, quote: string, spec: string) => `${head}${quote}${pathToFileURL(join(root, dirname(path), spec)).href}${quote}`);
  const dir = mkdtempSync(join(tmpdir(), 'stampede-baseline-'));
  const file = join(dir, basename(path));
  writeFileSync(file, source);
  try {
    return { module: (await import(pathToFileURL(file).href)) as M, done: () => rmSync(dir, { recursive: true, force: true }) };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}
