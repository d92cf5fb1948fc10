// Proves the bus's check of an outgoing event: a subject found valid once is not parsed again but its
// events' ids still are, an invalid subject is never remembered, and what is remembered is bounded.
import { describe, expect, it } from 'vitest';
import { AcceptedSubjects, checkEvent } from '../../../persistence/bus/subjects.ts';

const subjects = ['stampede.evt.>'];

describe('checkEvent with remembered subjects', () => {
  it('checks every id, remembers only valid subjects, and forgets them past its bound', () => {
    const accepted = new AcceptedSubjects(2);
    checkEvent({ id: 'a', subject: 'stampede.evt.m1.order.paid', data: '{}' }, subjects, accepted);
    expect(accepted.has('stampede.evt.m1.order.paid')).toBe(true);
    // Same subject, bad id: still refused.
    expect(() => checkEvent({ id: '', subject: 'stampede.evt.m1.order.paid', data: '{}' }, subjects, accepted)).toThrow(RangeError);
    // Outside the bus, or not concrete: refused every time, never remembered.
    for (const subject of ['elsewhere.evt', 'stampede.evt.m1.*', 'stampede.evt..x']) {
      expect(() => checkEvent({ id: 'b', subject, data: '{}' }, subjects, accepted)).toThrow(RangeError);
      expect(() => checkEvent({ id: 'b', subject, data: '{}' }, subjects, accepted)).toThrow(RangeError);
      expect(accepted.has(subject)).toBe(false);
    }
    checkEvent({ id: 'c', subject: 'stampede.evt.m1.order.reserved', data: '{}' }, subjects, accepted);
    checkEvent({ id: 'd', subject: 'stampede.evt.m2.order.paid', data: '{}' }, subjects, accepted);
    // The bound (2) was reached by the third: the set started over with it.
    expect(accepted.has('stampede.evt.m1.order.paid')).toBe(false);
    expect(accepted.has('stampede.evt.m2.order.paid')).toBe(true);
  });
});
