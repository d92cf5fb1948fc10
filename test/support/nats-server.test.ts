// Proves the tests' own nats-server counts as started only when it listens on its port itself: a port
// taken between the probe and the server's bind is told apart from a started server (it answers, but
// not for us), a first start then takes another port, and a restart whose port was taken while the
// server was down fails saying so — against real nats-server processes and a TCP listener in the way.
import { createServer, type Server } from 'node:net';
import { connect } from 'nats';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, listening, NatsPortTakenError, OwnNatsServer, spawnNatsOnFreePort, spawnNatsServer } from './nats-server.ts';

/** A plain TCP listener on a free port: another process's server, as nats-server would meet it. */
async function squatter(port?: number): Promise<{ port: number; server: Server }> {
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port ?? 0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  return { port: typeof address === 'object' && address ? address.port : -1, server };
}

const close = (server: Server) => new Promise<void>((resolve) => server.close(() => resolve()));

describe("the tests' own nats-server", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('is not started on a port someone else took, though that port answers', async () => {
    const taken = await squatter();
    cleanups.push(() => close(taken.server));
    expect(await listening(taken.port)).toBe(true);
    await expect(spawnNatsServer(['-a', '127.0.0.1', '-p', String(taken.port)], taken.port)).rejects.toBeInstanceOf(NatsPortTakenError);
  });

  it('starts on another port when the one probed was taken before it bound it', async () => {
    const taken = await squatter();
    cleanups.push(() => close(taken.server));
    const ports = [taken.port];
    let asked = 0;
    const started = await spawnNatsOnFreePort((p) => ['-a', '127.0.0.1', '-p', String(p)], undefined, async () => (asked++, ports.shift() ?? freePort()));
    cleanups.push(async () => {
      process.kill(started.child.pid!, 'SIGKILL');
      await started.exited;
    });
    expect(asked).toBe(2);
    expect(started.port).not.toBe(taken.port);
    const nc = await connect({ servers: `nats://127.0.0.1:${started.port}` });
    expect(nc.info?.port).toBe(started.port);
    await nc.close();
  });

  it('fails a restart whose port another process took while it was down, saying so, and restarts once the port is free', async () => {
    const server = await OwnNatsServer.start();
    cleanups.push(() => server.dispose());
    await server.kill();
    const taken = await squatter(server.port);
    let squatting = true;
    cleanups.push(async () => {
      if (squatting) await close(taken.server);
    });
    await expect(server.start()).rejects.toThrow(`nats-server could not start again on port ${server.port}: another process took the port while it was down`);
    squatting = false;
    await close(taken.server);
    await server.start();
    const nc = await connect({ servers: server.url });
    expect(nc.info?.port).toBe(server.port);
    await nc.close();
  });
});
