// Proves a ticket's date ends at midnight in its venue's time zone (the SKU's `timeZone` attribute),
// UTC when none is given: the deadline across zones east and west of UTC and across daylight-saving
// changes, a redeem in a western venue's evening accepted where midnight UTC refused it, an undated
// ticket that never ends in any zone, and unknown zone names told apart.
import { describe, expect, it } from 'vitest';
import { decideOrder, evolveOrder, isTimeZone, visitDeadline, type OrderEvent, type OrderState } from '../../engine/index.ts';

const at = (iso: string) => Date.parse(iso);

/** A ticket order of `date`, created at `createdAt`, paid a millisecond before `deliveredAt` and delivered then. */
function deliveredTicket(date: string, createdAt: number, deliveredAt: number): OrderState {
  const events: OrderEvent[] = [
    { type: 'order.reserved', order: { orderId: 'o-1', userId: 'u', skuId: 'park', date, qty: 1, amountCents: 100, createdAt, expiresAt: createdAt + 3_600_000 }, at: createdAt },
    { type: 'order.paid', paymentId: 'p', at: deliveredAt - 1 },
    { type: 'order.delivered', delivery: { kind: 'ticket', codes: ['T1'] }, at: deliveredAt },
  ];
  let state: OrderState | undefined;
  for (const e of events) state = evolveOrder(state, e);
  return state!;
}

describe("a ticket date's end", () => {
  it('is midnight UTC without a zone, and midnight in the venue\'s zone with one, daylight saving included', () => {
    expect(visitDeadline('2026-12-01')).toBe(at('2026-12-02T00:00:00Z'));
    expect(visitDeadline('2026-12-01', 'UTC')).toBe(at('2026-12-02T00:00:00Z'));
    expect(visitDeadline('2026-12-01', 'America/Los_Angeles')).toBe(at('2026-12-02T08:00:00Z'));
    expect(visitDeadline('2026-12-01', 'Asia/Tokyo')).toBe(at('2026-12-01T15:00:00Z'));
    expect(visitDeadline('2026-12-01', 'Asia/Kolkata')).toBe(at('2026-12-01T18:30:00Z'));
    // New York springs forward on 2026-03-08 at 02:00: the 7th ends at 00:00 EST, the 8th at 00:00 EDT.
    expect(visitDeadline('2026-03-07', 'America/New_York')).toBe(at('2026-03-08T05:00:00Z'));
    expect(visitDeadline('2026-03-08', 'America/New_York')).toBe(at('2026-03-09T04:00:00Z'));
    // And falls back on 2026-11-01: the 31st ends at 00:00 EDT, the 1st at 00:00 EST.
    expect(visitDeadline('2026-10-31', 'America/New_York')).toBe(at('2026-11-01T04:00:00Z'));
    expect(visitDeadline('2026-11-01', 'America/New_York')).toBe(at('2026-11-02T05:00:00Z'));
    // Santiago moves its clocks forward at 00:00 on 2026-09-06: no instant reads midnight there; the
    // 5th ends at the change (04:00 UTC, 01:00 local), not an hour before it (23:00 on the 5th).
    expect(visitDeadline('2026-09-05', 'America/Santiago')).toBe(at('2026-09-06T04:00:00Z'));
    expect(visitDeadline('2026-09-04', 'America/Santiago')).toBe(at('2026-09-05T04:00:00Z'));
    // A name the runtime does not know (a SKU stored before names were checked): midnight UTC.
    expect(visitDeadline('2026-12-01', 'Pacific Time')).toBe(at('2026-12-02T00:00:00Z'));
  });

  it('lets a western venue redeem in the evening of its date, and refuses the next morning', () => {
    const state = deliveredTicket('2026-12-01', at('2026-11-20T10:00:00Z'), at('2026-11-20T10:01:01Z'));
    // 19:00 in Los Angeles on the 1st is 03:00 UTC on the 2nd.
    const evening = at('2026-12-02T03:00:00Z');
    expect(decideOrder(state, { type: 'redeem' }, evening).reply.outcome).toBe('invalid_state');
    expect(decideOrder(state, { type: 'redeem', timeZone: 'America/Los_Angeles' }, evening).events.map((e) => e.type)).toEqual(['order.redeemed']);
    expect(decideOrder(state, { type: 'redeem', timeZone: 'America/Los_Angeles' }, at('2026-12-02T08:00:00Z')).reply.outcome).toBe('invalid_state');
  });

  it('counts a no-show only for a ticket delivered before its date ended; one delivered after stays redeemable', () => {
    const deliveredAt = (t: number) => deliveredTicket('2026-12-01', at('2026-12-01T23:55:00Z'), t);
    const end = at('2026-12-02T00:00:00Z');
    const later = at('2026-12-03T00:00:00Z');
    expect(decideOrder(deliveredAt(end - 1), { type: 'mark_no_show', at: end }, later).events.map((e) => e.type)).toEqual(['order.no_show']);
    expect(decideOrder(deliveredAt(end), { type: 'mark_no_show', at: end }, later).events).toEqual([]);
    expect(decideOrder(deliveredAt(end + 5 * 60_000), { type: 'mark_no_show', at: end }, later).events).toEqual([]);
    expect(decideOrder(deliveredAt(end - 1), { type: 'redeem' }, later).reply.outcome).toBe('invalid_state');
    expect(decideOrder(deliveredAt(end + 5 * 60_000), { type: 'redeem' }, later).events.map((e) => e.type)).toEqual(['order.redeemed']);
  });

  it('never ends an undated (`open`) ticket, with or without a venue zone: its redeem is accepted, not thrown', () => {
    expect(visitDeadline('open')).toBeNaN();
    expect(visitDeadline('open', 'Asia/Tokyo')).toBeNaN();
    const state = deliveredTicket('open', at('2026-11-20T10:00:00Z'), at('2026-11-20T10:01:01Z'));
    for (const timeZone of [undefined, 'UTC', 'Asia/Tokyo', 'America/Los_Angeles']) {
      expect(decideOrder(state, { type: 'redeem', timeZone }, at('2027-06-01T00:00:00Z')).events.map((e) => e.type)).toEqual(['order.redeemed']);
    }
  });

  it('knows IANA zone names, and not made-up ones', () => {
    expect(['Europe/Paris', 'America/Los_Angeles', 'UTC', 'Asia/Kolkata'].map(isTimeZone)).toEqual([true, true, true, true]);
    expect(['Mars/Olympus', '', 'GMT+25', 'Europe/Pariss'].map(isTimeZone)).toEqual([false, false, false, false]);
  });
});
