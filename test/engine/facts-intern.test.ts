// Proves shared facts are what they stand for: equal contents (any key order) give one frozen object,
// different contents never do, and a full table starts afresh without changing any value.
import { describe, expect, it } from 'vitest';
import { INTERN_TABLE_MAX, internAttributes, internFacts, internString } from '../../engine/index.ts';

describe('facts interning', () => {
  it('equal attributes in any key order share one frozen copy; different ones do not', () => {
    const a = internAttributes({ venue: 'v1', region: 'r1' });
    const b = internAttributes(JSON.parse('{"region":"r1","venue":"v1"}') as Record<string, string>);
    expect(b).toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
    expect(a).toEqual({ venue: 'v1', region: 'r1' });
    expect(internAttributes({ venue: 'v1', region: 'r2' })).not.toBe(a);
    expect(internAttributes({ venue: 'v1' })).not.toBe(a);
    // A value that looks like a key/value separator cannot make two contents collide.
    expect(internAttributes({ a: 'b\u0000c', d: 'e' })).not.toBe(internAttributes({ a: 'b', c: 'd\u0000e' }));
  });

  it('an attributes object that may still change is read for its contents every time', () => {
    const mutable: Record<string, string> = { venue: 'v-mut-1' };
    const first = internAttributes(mutable);
    mutable.venue = 'v-mut-2';
    const second = internAttributes(mutable);
    expect(second).toEqual({ venue: 'v-mut-2' });
    expect(first).toEqual({ venue: 'v-mut-1' });
    expect(internFacts({ skuId: 's', date: 'd', merchantId: 'm', attributes: mutable }).attributes).toBe(second);
  });

  it('facts of one SKU/date and merchant with equal attributes are one object; any difference makes another', () => {
    const f = { skuId: 's1', date: '2026-12-01', merchantId: 'm1', attributes: { venue: 'v1' } };
    const shared = internFacts(f);
    expect(internFacts({ ...f, attributes: { venue: 'v1' } })).toBe(shared);
    expect(shared).toEqual(f);
    for (const other of [{ ...f, skuId: 's2' }, { ...f, date: '2026-12-02' }, { ...f, merchantId: 'm2' }, { ...f, attributes: { venue: 'v2' } }]) {
      expect(internFacts(other)).not.toBe(shared);
      expect(internFacts(other)).toEqual(other);
    }
  });

  it('a full table starts afresh: what was shared keeps its value, equal contents are shared again', () => {
    const before = internAttributes({ k: 'before-reset' });
    for (let i = 0; i <= INTERN_TABLE_MAX; i++) internAttributes({ filler: `f${i}` });
    expect(before).toEqual({ k: 'before-reset' });
    expect(Object.isFrozen(before)).toBe(true);
    const after = internAttributes({ k: 'before-reset' });
    expect(after).toEqual(before);
    expect(internAttributes({ k: 'before-reset' })).toBe(after);
    expect(internString('s-after')).toBe('s-after');
  });
});
