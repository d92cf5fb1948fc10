// Proves configuration is read exactly as documented: defaults, bounds, secrets generated only
// outside production, and a bad value stops the start with the variable's name.
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../app/config.ts';

describe('configuration', () => {
  it('has the documented defaults and generates the four secrets when none is set', () => {
    const c = loadConfig({});
    expect(c.http.port).toBe(3000);
    expect(c.reservation_ttl_ms).toBe(900_000);
    expect(c.shards).toBe(64);
    expect(c.mysqlUrl).toBeUndefined();
    expect(c.generatedSecrets.sort()).toEqual(['adminToken', 'cardKeySecret', 'paymentSecret', 'userJwtSecret']);
    expect(new Set(Object.values(c.secrets)).size).toBe(4);
  });

  it('refuses to start in production without secrets', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/STAMPEDE_ADMIN_TOKEN must be set/);
  });

  it('names the variable of a bad value', () => {
    for (const [name, value] of [
      ['STAMPEDE_HTTP_PORT', '70000'],
      ['STAMPEDE_SHARDS', '0'],
      ['STAMPEDE_MYSQL_URL', 'postgres://x'],
      ['STAMPEDE_RESERVATION_TTL_MS', 'soon'],
      ['STAMPEDE_ADMIN_TOKEN', 'short'],
    ] as const) {
      expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
      expect(() => loadConfig({ [name]: value })).toThrow(name);
    }
  });

  it('keeps the pending events of one actor within one journal write', () => {
    expect(() => loadConfig({ STAMPEDE_PENDING_EVENTS_MAX: '30000', STAMPEDE_COMMIT_EVENTS_MAX: '20000' })).toThrow(/must not exceed/);
    expect(loadConfig({ STAMPEDE_PENDING_EVENTS_MAX: '500', STAMPEDE_COMMIT_EVENTS_MAX: '1000' }).pending_events_max).toBe(500);
  });
});
