// Quick check that both baselines of `npm run bench:hot` run end to end and verify their outcome:
// small numbers (stock < reservations, so both "reserved" and "sold out" answers occur), one JSON
// line per contender. Run: node --import tsx bench/baselines-smoke.ts
// Uses MariaDB database `stampede_bench` and Redis keys under `bench:` (override with the env vars).

import { runMysqlRowLock, runRedisLua } from './baselines.ts';
import type { HotRunOptions } from './baselines.ts';

const mysqlUrl = process.env.BENCH_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/stampede_bench';
const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const opts: HotRunOptions = { reservations: 20_000, stock: 15_000, concurrency: 256, buyers: 10_000 };

console.log(JSON.stringify(await runRedisLua({ ...opts, redisUrl, mysqlUrl })));
console.log(JSON.stringify(await runMysqlRowLock({ ...opts, mysqlUrl, pool: 32 })));
