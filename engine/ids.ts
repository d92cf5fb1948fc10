// Order ids: a ULID (time-ordered, 80 random bits, so unguessable) followed by the number of the
// SKU/date stream that owns the order, so any node can route a request on an order to its
// inventory actor without a lookup: `01JD...XYZ-1a`.

import type { RandomSource } from './random.ts';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const ULID_LENGTH = 26;

export function ulid(now_ms: number, random: RandomSource): string {
  let time = '';
  let t = Math.floor(now_ms);
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const bytes = random.bytes(10);
  let rand = '';
  // 80 bits -> 16 base32 characters, 5 bits at a time.
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      rand += CROCKFORD[(acc >> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  return time + rand;
}

export function orderIdFor(now_ms: number, random: RandomSource, streamNo: number): string {
  return `${ulid(now_ms, random)}-${streamNo.toString(36)}`;
}

export interface ParsedOrderId {
  streamNo: number;
  createdAt_ms: number;
}

/** Undefined for anything that is not an order id this engine could have made. */
export function parseOrderId(orderId: string): ParsedOrderId | undefined {
  if (orderId.length < ULID_LENGTH + 2 || orderId[ULID_LENGTH] !== '-') return undefined;
  const streamPart = orderId.slice(ULID_LENGTH + 1);
  if (!/^[0-9a-z]{1,10}$/.test(streamPart)) return undefined;
  let createdAt_ms = 0;
  for (let i = 0; i < ULID_LENGTH; i++) {
    const v = CROCKFORD.indexOf(orderId[i]!);
    if (v < 0) return undefined;
    if (i < 10) createdAt_ms = createdAt_ms * 32 + v;
  }
  const streamNo = parseInt(streamPart, 36);
  if (!Number.isSafeInteger(streamNo) || streamNo <= 0) return undefined;
  return { streamNo, createdAt_ms };
}
