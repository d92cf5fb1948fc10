// Proves configuration is read exactly as documented: defaults, bounds, secrets generated only
// outside production, and a bad value stops the start with the variable's name.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../app/config.ts';

describe('configuration', () => {
  it('has the documented defaults and generates the four secrets when none is set', () => {
    const c = loadConfig({});
    expect(c.http.port).toBe(3000);
    expect(c.http.host).toBe('127.0.0.1'); // a developer's machine, not its network
    expect(c.reservation_ttl_ms).toBe(900_000);
    expect(c.shards).toBe(64);
    expect(c.mysqlUrl).toBeUndefined();
    expect(c.generatedSecrets.sort()).toEqual(['adminToken', 'cardKeySecret', 'paymentSecret', 'userJwtSecret']);
    expect(new Set(Object.values(c.secrets)).size).toBe(4);
  });

  it('refuses to start in production without secrets, naming every one missing at once', () => {
    const error = (() => {
      try {
        loadConfig({ NODE_ENV: 'production', STAMPEDE_ADMIN_TOKEN: 'an-operator-admin-token-0123456789' });
      } catch (e) {
        return (e as Error).message;
      }
      return '';
    })();
    for (const name of ['STAMPEDE_USER_JWT_SECRET', 'STAMPEDE_PAYMENT_SECRET', 'STAMPEDE_CARD_KEY_SECRET']) expect(error).toContain(`${name} must be set`);
    expect(error).not.toContain('STAMPEDE_ADMIN_TOKEN');
  });

  it('refuses docker-compose.yml\'s public example secrets in production, and takes them otherwise', () => {
    const compose = readFileSync(new URL('../../docker-compose.yml', import.meta.url), 'utf8');
    const example = (name: string) => compose.match(new RegExp(`${name}: (\\S+)`))![1]!;
    const env = Object.fromEntries(['STAMPEDE_ADMIN_TOKEN', 'STAMPEDE_USER_JWT_SECRET', 'STAMPEDE_PAYMENT_SECRET', 'STAMPEDE_CARD_KEY_SECRET'].map((n) => [n, example(n)]));
    expect(() => loadConfig({ ...env, NODE_ENV: 'production' })).toThrow(/STAMPEDE_ADMIN_TOKEN is an example value/);
    expect(loadConfig({ ...env, NODE_ENV: 'development' }).secrets.adminToken).toBe(env.STAMPEDE_ADMIN_TOKEN);
    // The compose stack runs as a development one, on this machine's loopback only.
    expect(compose).toMatch(/NODE_ENV: development/);
    expect(compose).toMatch(/ports: \["127\.0\.0\.1:3000:3000"\]/);
    // The engine is not the container's PID 1 (which ignores SIGTERM until the engine's handler is
    // set, i.e. during a whole start): an init forwards `docker stop`'s signal to it.
    const engine = compose.slice(compose.indexOf('\n  engine:\n'), compose.indexOf('\n  merchant-m1:\n'));
    expect(engine).toMatch(/\n    init: true\n/);
    const own = { ...env, STAMPEDE_ADMIN_TOKEN: 'an-operator-admin-token-0123456789', STAMPEDE_USER_JWT_SECRET: 'an-operator-jwt-secret-0123456789abcdef', STAMPEDE_PAYMENT_SECRET: 'an-operator-payment-secret-012345', STAMPEDE_CARD_KEY_SECRET: 'an-operator-card-key-secret-0123456789ab' };
    expect(loadConfig({ ...own, NODE_ENV: 'production' }).secrets.paymentSecret).toBe(own.STAMPEDE_PAYMENT_SECRET);
    // The compose file's NATS password is public too.
    expect(() => loadConfig({ ...own, STAMPEDE_NATS_PASSWORD: example('STAMPEDE_NATS_PASSWORD'), NODE_ENV: 'production' })).toThrow(/STAMPEDE_NATS_PASSWORD is an example value/);
  });

  it('refuses to start in production on NATS without the engine\'s NATS user and password (the broker\'s users keep merchants apart), and takes NATS without them otherwise', () => {
    const own = { STAMPEDE_ADMIN_TOKEN: 'an-operator-admin-token-0123456789', STAMPEDE_USER_JWT_SECRET: 'an-operator-jwt-secret-0123456789abcdef', STAMPEDE_PAYMENT_SECRET: 'an-operator-payment-secret-012345', STAMPEDE_CARD_KEY_SECRET: 'an-operator-card-key-secret-0123456789ab' };
    const nats = { STAMPEDE_NATS_URL: 'nats://127.0.0.1:4222' };
    const refusal = (env: Record<string, string>) => {
      try {
        loadConfig({ ...own, ...nats, NODE_ENV: 'production', ...env });
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as Error).message;
      }
      return '';
    };
    const neither = refusal({});
    expect(neither).toMatch(/NODE_ENV=production/);
    expect(neither).toContain('STAMPEDE_NATS_USER must be set');
    expect(neither).toContain('STAMPEDE_NATS_PASSWORD must be set');
    expect(refusal({ STAMPEDE_NATS_USER: 'stampede-engine' })).toContain('STAMPEDE_NATS_PASSWORD must be set');
    expect(refusal({ STAMPEDE_NATS_USER: 'stampede-engine' })).not.toContain('STAMPEDE_NATS_USER');
    expect(refusal({ STAMPEDE_NATS_PASSWORD: 'an-operator-nats-password-0123' })).toContain('STAMPEDE_NATS_USER must be set');
    // Listed with the other problems, all at once.
    const all = (() => {
      try {
        loadConfig({ ...nats, NODE_ENV: 'production' });
      } catch (e) {
        return (e as Error).message;
      }
      return '';
    })();
    expect(all).toContain('STAMPEDE_ADMIN_TOKEN must be set');
    expect(all).toContain('STAMPEDE_NATS_USER must be set');
    const signedIn = loadConfig({ ...own, ...nats, NODE_ENV: 'production', STAMPEDE_NATS_USER: 'stampede-engine', STAMPEDE_NATS_PASSWORD: 'an-operator-nats-password-0123' });
    expect([signedIn.natsUser, signedIn.natsPassword]).toEqual(['stampede-engine', 'an-operator-nats-password-0123']);
    // Without NATS there is nothing to sign in to; outside production a server without users is a developer's.
    expect(loadConfig({ ...own, NODE_ENV: 'production' }).natsUrl).toBeUndefined();
    expect(loadConfig({ ...own, ...nats, NODE_ENV: 'development' }).natsUser).toBeUndefined();
  });

  it('names the variable of a bad value', () => {
    for (const [name, value] of [
      ['STAMPEDE_HTTP_PORT', '70000'],
      ['STAMPEDE_SHARDS', '0'],
      ['STAMPEDE_MYSQL_URL', 'postgres://x'],
      ['STAMPEDE_RESERVATION_TTL_MS', 'soon'],
      // Numbers are decimal digits only: JavaScript's Number() would read these as 0, 16, 900000, 10.
      ['STAMPEDE_HTTP_PORT', ' '],
      ['STAMPEDE_HTTP_PORT', '0x10'],
      ['STAMPEDE_RESERVATION_TTL_MS', '9e5'],
      ['STAMPEDE_SHARDS', '10.0'],
      ['STAMPEDE_SHARDS', '-1'],
      // A URL must name its host, and one that does not parse is named too (not a bare "Invalid URL").
      ['STAMPEDE_MYSQL_URL', 'mysql://'],
      ['STAMPEDE_MYSQL_URL', '127.0.0.1:3306'],
      ['STAMPEDE_REDIS_URL', 'localhost'],
      // The admin token is a bearer token: a space in it, or at an edge, could never authenticate.
      ['STAMPEDE_ADMIN_TOKEN', 'correct horse battery staple'],
      ['STAMPEDE_ADMIN_TOKEN', ' 0123456789abcdef0123'],
    ] as const) {
      expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
      expect(() => loadConfig({ [name]: value })).toThrow(name);
    }
  });

  it('runs with a secret shorter than advised outside production, warning of it by name, and refuses it in production', () => {
    const own = { STAMPEDE_ADMIN_TOKEN: 'an-operator-admin-token-0123456789', STAMPEDE_USER_JWT_SECRET: 'an-operator-jwt-secret-0123456789abcdef', STAMPEDE_PAYMENT_SECRET: 'an-operator-payment-secret-012345', STAMPEDE_CARD_KEY_SECRET: 'an-operator-card-key-secret-0123456789ab' };
    const short = { STAMPEDE_USER_JWT_SECRET: 'my-jwt-secret', STAMPEDE_PAYMENT_SECRET: 'pay' };
    const dev = loadConfig({ ...own, ...short });
    expect([dev.secrets.userJwtSecret, dev.secrets.paymentSecret]).toEqual(['my-jwt-secret', 'pay']);
    expect(dev.warnings).toHaveLength(2);
    expect(dev.warnings.join('\n')).toMatch(/STAMPEDE_USER_JWT_SECRET is 13 characters long; at least 32/);
    expect(dev.warnings.join('\n')).toMatch(/STAMPEDE_PAYMENT_SECRET is 3 characters long; at least 16/);
    expect(loadConfig(own).warnings).toEqual([]);
    const refused = () => loadConfig({ ...own, ...short, NODE_ENV: 'production' });
    expect(refused).toThrow(/STAMPEDE_USER_JWT_SECRET is 13 characters long/);
    expect(refused).toThrow(/STAMPEDE_PAYMENT_SECRET is 3 characters long/);
    expect(() => loadConfig({ ...own, NODE_ENV: 'production' })).not.toThrow();
  });

  it('names the STAMPEDE_* variables it does not know (a typo leaves its setting at the default), not the CLI\'s or the tests\'', () => {
    const c = loadConfig({ STAMPEDE_PORT: '8080', STAMPEDE_RESERVATION_TTL: '60000', STAMPEDE_URL: 'http://127.0.0.1:3000', STAMPEDE_TEST_MYSQL_URL: 'mysql://x', STAMPEDE_HTTP_PORT: '3001', OTHER: '1' });
    expect(c.unknownVariables).toEqual(['STAMPEDE_PORT', 'STAMPEDE_RESERVATION_TTL']);
    expect([c.http.port, c.reservation_ttl_ms]).toEqual([3001, 900_000]);
    expect(loadConfig({}).unknownVariables).toEqual([]);
  });

  it('takes NODE_ENV=production in any case as production (its checks on)', () => {
    for (const value of ['Production', 'PRODUCTION', ' production ']) {
      expect(() => loadConfig({ NODE_ENV: value })).toThrow(/NODE_ENV=production/);
    }
  });

  it('reads decimal numbers as such, and an empty variable as unset', () => {
    const c = loadConfig({ STAMPEDE_HTTP_PORT: '8080', STAMPEDE_SHARDS: '0128', STAMPEDE_RESERVATION_TTL_MS: '' });
    expect({ port: c.http.port, shards: c.shards, ttl: c.reservation_ttl_ms }).toEqual({ port: 8080, shards: 128, ttl: 900_000 });
  });

  it('keeps the pending events of one actor within one journal write', () => {
    expect(() => loadConfig({ STAMPEDE_PENDING_EVENTS_MAX: '30000', STAMPEDE_COMMIT_EVENTS_MAX: '20000' })).toThrow(/must not exceed/);
    expect(loadConfig({ STAMPEDE_PENDING_EVENTS_MAX: '500', STAMPEDE_COMMIT_EVENTS_MAX: '1000' }).pending_events_max).toBe(500);
  });
});
