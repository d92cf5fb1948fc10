// Proves that against a running engine (`--target`) the run waits for the reservations to expire when
// their expiry falls within --settle-ms, as docs/simulation.md says, and then judges that none is left
// reserved: `stampede sim flash-sale --target` drives a real node (embedded SQLite, a 2-second TTL)
// over HTTP, and its report says every reservation expired and nothing is left reserved.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { simCommand } from '../../sim/cli.ts';
import { SECRETS, startEngine } from '../support/engine.ts';
import { Capture } from '../support/capture.ts';


describe('a run against --target', () => {
  it('waits for the reservations to expire when that is within --settle-ms, and judges none left reserved', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stampede-sim-target-'));
    const saved = { ...process.env };
    const e = await startEngine({ kind: 'sqlite' }, { STAMPEDE_RESERVATION_TTL_MS: '2000' });
    try {
      Object.assign(process.env, { STAMPEDE_ADMIN_TOKEN: SECRETS.STAMPEDE_ADMIN_TOKEN, STAMPEDE_USER_JWT_SECRET: SECRETS.STAMPEDE_USER_JWT_SECRET, STAMPEDE_PAYMENT_SECRET: SECRETS.STAMPEDE_PAYMENT_SECRET });
      const out = new Capture();
      const result = await simCommand(
        ['flash-sale', '--target', e.url, '--buyers', '120', '--stock', '30', '--duration-ms', '300', '--bots', '0', '--settle-ms', '20000', '--report', join(dir, 'r.html'), '--json', join(dir, 'r.json')],
        out,
      );
      expect(result?.passed, out.text).toBe(true);
      const figures = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8'));
      const accounted = figures.verdict.checks.find((c: { name: string }) => c.name === 'stock accounted for');
      expect(accounted.detail).toContain('after every reservation expired');
      // The abandoned reservations are gone: nothing left reserved on any SKU/date.
      for (const series of figures.stock) expect(series.samples[series.samples.length - 1].reserved).toBe(0);
    } finally {
      process.env = saved;
      await e.stop();
    }
  });
});
