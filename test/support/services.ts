// Where the real services of the test machine are (../shared/SERVICES.md). Tests that claim to test
// persistence or messaging use these, never mocks; each test file makes its own database.
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { freshDatabase } from '../../bench/database.ts';

export const MYSQL_BASE_URL = process.env.STAMPEDE_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306';
export const REDIS_URL = process.env.STAMPEDE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const NATS_URL = process.env.STAMPEDE_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';

/**
 * Names this checkout's databases apart from another's on the same server (a second worktree, or CI
 * running while a developer tests): each file's database is its own per checkout, so two runs of one
 * file never share one (the second node was refused its database lock, or dropped the first's).
 */
const CHECKOUT = createHash('sha256').update(fileURLToPath(new URL('../..', import.meta.url))).digest('hex').slice(0, 6);

/** Drops and creates `stampede_t_<name>_<checkout>`, returns its URL. */
export function freshMysqlDatabase(name: string): Promise<string> {
  // MySQL names are 64 characters at most: the file's part is cut, never the checkout's.
  return freshDatabase(MYSQL_BASE_URL, `stampede_t_${name.replace(/[^a-z0-9_]/gi, '_').slice(0, 64 - 'stampede_t_'.length - 1 - CHECKOUT.length)}_${CHECKOUT}`);
}
