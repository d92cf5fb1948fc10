// The two real SQL backends every store test runs against: a fresh MariaDB database and a SQLite
// file in a temporary folder. Not a test file itself (the tests' names end in .test.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { openSqlStores, type SqlStores } from '../../persistence/sql/open.ts';
import { freshMysqlDatabase } from '../support/services.ts';

export interface Backend {
  name: 'mysql' | 'sqlite';
  /** Opens the stores on a new, empty database called after `name` (unique per test file). */
  open(name: string): Promise<SqlStores & { dispose(): Promise<void> }>;
}

export const backends: Backend[] = [
  {
    name: 'mysql',
    async open(name) {
      const stores = await openSqlStores({ mysqlUrl: await freshMysqlDatabase(name) });
      return { ...stores, dispose: () => stores.close() };
    },
  },
  {
    name: 'sqlite',
    async open(name) {
      const dir = mkdtempSync(join(tmpdir(), `stampede-${name}-`));
      const stores = await openSqlStores({ sqlitePath: join(dir, 'db', `${name}.sqlite`) });
      return {
        ...stores,
        async dispose() {
          await stores.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
];

/** Inside a describe: opens `backend`'s stores (database `name`) before its tests and disposes of them after; the getter returns them. */
export function storesFor(backend: Backend, name: string): () => SqlStores {
  let stores: Awaited<ReturnType<Backend['open']>> | undefined;
  beforeAll(async () => {
    stores = await backend.open(name);
  });
  afterAll(async () => stores?.dispose());
  return () => stores!;
}
