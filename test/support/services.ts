// Where the real services of the test machine are (../shared/SERVICES.md). Tests that claim to test
// persistence or messaging use these, never mocks; each test file makes its own database.
import { freshDatabase } from '../../bench/database.ts';

export const MYSQL_BASE_URL = process.env.STAMPEDE_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306';
export const REDIS_URL = process.env.STAMPEDE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const NATS_URL = process.env.STAMPEDE_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';

/** Drops and creates `stampede_t_<name>`, returns its URL. */
export function freshMysqlDatabase(name: string): Promise<string> {
  return freshDatabase(MYSQL_BASE_URL, `stampede_t_${name.replace(/[^a-z0-9_]/gi, '_')}`);
}
