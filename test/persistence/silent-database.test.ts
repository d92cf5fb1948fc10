// Proves a MariaDB that goes silent (connections open, nothing answered: a network partition, a
// failover behind the same address, a frozen server) has a bounded, defined effect on the stores: a
// statement past its deadline fails with StoreUnavailableError and its connection is closed (it would
// otherwise stay taken for hours and empty the pool after the database is back); closing the stores
// does not wait for such a statement; opening them against a silent database fails in bounded time
// instead of hanging the start; a ping that gets no answer gives its connection back. The database is
// reached through a TCP proxy that drops every byte.
import { afterEach, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../persistence/errors.ts';
import { openSqlStores, type SqlStores } from '../../persistence/sql/open.ts';
import { proxiedMysql, type TcpProxy } from '../support/tcp-proxy.ts';
import { rejection, until } from '../support/poll.ts';

describe('a silent MariaDB', () => {
  let proxy: TcpProxy | undefined;
  let stores: SqlStores | undefined;
  afterEach(async () => {
    proxy?.restore();
    await stores?.close();
    stores = undefined;
    await proxy?.stop();
    proxy = undefined;
  });

  const through = async (name: string) => {
    const proxied = await proxiedMysql(name);
    proxy = proxied.proxy;
    return proxied.url;
  };

  it('fails a statement past its deadline and closes its connection, so the pool works again once it answers', async () => {
    stores = await openSqlStores({ mysqlUrl: await through('persist_silent_statements'), statementTimeout_ms: 400 });
    // Three connections open and idle in the pool.
    await Promise.all([0, 1, 2].map(() => stores!.cardKeys.count('warm')));
    const open = proxy!.openConnections;
    expect(open).toBeGreaterThanOrEqual(3);

    proxy!.blackhole();
    const failed = await Promise.all([0, 1, 2].map(() => rejection(stores!.cardKeys.count(`silent`))));
    for (const error of failed) expect(error).toBeInstanceOf(StoreUnavailableError);
    // Their connections are closed (the proxy sees them go), not kept waiting for an answer.
    await until('the timed-out connections closed', async () => proxy!.openConnections, (n) => n <= open - 3, 5_000);

    proxy!.restore();
    expect(await Promise.all(Array.from({ length: 12 }, () => stores!.cardKeys.count('after')))).toEqual(Array(12).fill(0));
  }, 30_000);

  it('pings without keeping a connection: many failed probes leave the pool working once it answers', async () => {
    stores = await openSqlStores({ mysqlUrl: await through('persist_silent_ping'), statementTimeout_ms: 2_000 });
    expect(await stores.ping()).toEqual({ mysql: true });
    proxy!.blackhole();
    // More probes than the pool has connections (8), each given up after its 2 s.
    const probes = await Promise.all(Array.from({ length: 10 }, () => stores!.ping()));
    expect(probes).toEqual(Array(10).fill({ mysql: false }));
    // The write probe gives up within its own deadline too, and keeps no connection either.
    const writeProbes = await Promise.all(Array.from({ length: 10 }, () => stores!.pingWrite()));
    expect(writeProbes).toEqual(Array(10).fill(false));
    proxy!.restore();
    // The pool has its connections back: store calls are served at once, not after the 5 s acquire wait.
    expect(await Promise.all(Array.from({ length: 8 }, () => stores!.cardKeys.count('after-ping')))).toEqual(Array(8).fill(0));
    expect(await stores.ping()).toEqual({ mysql: true });
  }, 30_000);

  it('closes without waiting for a statement that gets no answer', async () => {
    stores = await openSqlStores({ mysqlUrl: await through('persist_silent_close'), statementTimeout_ms: 60_000 });
    await stores.cardKeys.count('warm');
    proxy!.blackhole();
    let stuckSettled = false;
    const droppedBefore = proxy!.droppedFromClients;
    void stores.cardKeys.count('stuck').then(() => (stuckSettled = true), () => (stuckSettled = true));
    // The statement is on the wire (the proxy dropped its bytes), not still waiting for a connection.
    await until('the statement sent into the silence', async () => proxy!.droppedFromClients, (n) => n > droppedBefore, 10_000);
    // close() returns (bounded by close_timeout_ms; the test's 30 s timeout, below the statement's
    // 60 s, is the hang guard) while the statement is still unanswered: it did not wait for it.
    await stores.close();
    stores = undefined;
    expect(stuckSettled).toBe(false);
  }, 30_000);

  it('fails to open in bounded time when the database answers nothing', async () => {
    const url = await through('persist_silent_open');
    proxy!.blackhole();
    // Failed by its own deadline (the test's timeout is the hang guard).
    const error = await rejection(openSqlStores({ mysqlUrl: url, openTimeout_ms: 1_500 }));
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(String((error as Error).message)).toBe('opening the database: no answer from the database within 1500 ms');
  }, 30_000);
});
