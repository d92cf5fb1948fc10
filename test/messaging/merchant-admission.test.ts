// Proves the per-merchant admission of NATS commands: a merchant past its bound is refused
// `overloaded` while another merchant is admitted, and a flood of refusals costs one warning a second
// per merchant (the next saying how many went unlogged), not one line each.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { merchant_command_limits, merchantCommandAdmission } from '../../messaging/merchant-commands.ts';

describe('merchant command admission', () => {
  it('refuses a merchant past its bound, admits another, and warns once per merchant for a flood of refusals', () => {
    const lines: { msg: string; merchantId?: string }[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line) as { msg: string; merchantId?: string }) });
    const admission = merchantCommandAdmission(log);
    const subject = (m: string) => `stampede.cmd.${m}.stock.set`;
    for (let i = 0; i < merchant_command_limits.merchant_in_flight_max; i++) expect(admission.enter(subject('m1'))).toBeUndefined();
    for (let i = 0; i < 500; i++) expect(admission.enter(subject('m1'))).toBeInstanceOf(Uint8Array);
    expect(admission.enter(subject('m2'))).toBeUndefined();
    expect(lines.filter((l) => l.msg.startsWith('merchant command refused')).map((l) => l.merchantId)).toEqual(['m1']);
    // A place freed: the merchant is admitted again.
    admission.leave(subject('m1'));
    expect(admission.enter(subject('m1'))).toBeUndefined();
  });
});
