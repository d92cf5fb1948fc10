// Proves how /readyz decides that the database takes writes (app/write-probe.ts): a recent commit
// vouches without a probe, checks asked while a probe runs share it, a failed probe is not made again
// before its backoff (doubling, capped) and answers "down" meanwhile, and a success resets the backoff.
import { describe, expect, it } from 'vitest';
import { WriteProbe } from '../../app/write-probe.ts';

describe('the write probe', () => {
  const options = { evidence_ms: 2_000, backoff_min_ms: 5_000, backoff_max_ms: 20_000 };

  it('takes a recent commit as proof, and probes only once none is recent', async () => {
    let now = 0;
    let probes = 0;
    const p = new WriteProbe(async () => (probes++, true), options, () => now);
    p.written();
    now = 1_999;
    expect(await p.check()).toBe(true);
    expect(probes).toBe(0);
    now = 2_000;
    expect(await p.check()).toBe(true);
    expect(probes).toBe(1);
    // The probe's success vouches in turn.
    now = 3_000;
    expect(await p.check()).toBe(true);
    expect(probes).toBe(1);
  });

  it('shares a probe in flight between the checks asked meanwhile', async () => {
    let release!: (ok: boolean) => void;
    let probes = 0;
    const p = new WriteProbe(() => (probes++, new Promise<boolean>((r) => (release = r))), options, () => 0);
    const a = p.check();
    const b = p.check();
    expect(probes).toBe(1);
    release(true);
    expect(await Promise.all([a, b])).toEqual([true, true]);
  });

  it('answers down without probing during the backoff after a failure, doubling it up to its cap, and resets it on success', async () => {
    let now = 10_000;
    let ok = false;
    let probes = 0;
    const p = new WriteProbe(async () => (probes++, ok), options, () => now);
    expect(await p.check()).toBe(false);
    expect(probes).toBe(1);
    now += 4_999;
    expect(await p.check()).toBe(false);
    expect(probes).toBe(1);
    now += 1;
    expect(await p.check()).toBe(false); // second failure: next backoff 10 s
    expect(probes).toBe(2);
    now += 9_999;
    expect(await p.check()).toBe(false);
    expect(probes).toBe(2);
    now += 1;
    expect(await p.check()).toBe(false); // third: 20 s
    now += 20_000;
    expect(await p.check()).toBe(false); // fourth: capped at 20 s
    expect(probes).toBe(4);
    now += 19_999;
    expect(await p.check()).toBe(false);
    expect(probes).toBe(4);
    now += 1;
    ok = true;
    expect(await p.check()).toBe(true);
    expect(probes).toBe(5);
    // Reset: the next failure backs off 5 s again.
    ok = false;
    now += 2_000;
    expect(await p.check()).toBe(false);
    now += 5_000;
    expect(await p.check()).toBe(false);
    expect(probes).toBe(7);
  });

  it('forgets its proof when a write fails; during a wait, a commit since the failed probe says up, without a probe', async () => {
    let now = 0;
    let ok = false;
    let probes = 0;
    const p = new WriteProbe(async () => (probes++, ok), options, () => now);
    p.written();
    now = 500;
    p.failed();
    expect(await p.check()).toBe(false); // no proof left: probed, and it fails (wait until 5,500)
    expect(probes).toBe(1);
    now = 1_000;
    expect(await p.check()).toBe(false); // waiting, no commit since
    p.written(); // a commit went through (only the probe's own row is held)
    now = 4_000; // past the commit's 2 s of proof, still in the wait: up, and no probe
    expect(await p.check()).toBe(true);
    expect(probes).toBe(1);
    now = 5_500; // the wait is over: one probe, which fails again (next wait 10 s)
    expect(await p.check()).toBe(false);
    expect(probes).toBe(2);
    now = 6_000;
    p.written();
    now = 9_000;
    expect(await p.check()).toBe(true); // a commit since the failure: up
    now = 11_500;
    expect(await p.check()).toBe(false); // but not one 5 s old or more (the database may have gone read-only since)
    p.written();
    now = 15_499;
    expect(await p.check()).toBe(true);
    expect(probes).toBe(2); // commits every few seconds bring no probe before the wait ends
    now = 15_500;
    ok = true;
    expect(await p.check()).toBe(true);
    expect(probes).toBe(3);
  });

  it('counts a probe that throws as a failure', async () => {
    const p = new WriteProbe(async () => {
      throw new Error('gone');
    }, options, () => 0);
    expect(await p.check()).toBe(false);
  });
});
