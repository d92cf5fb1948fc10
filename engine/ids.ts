// Order ids: a ULID (time-ordered, 80 random bits, so unguessable) followed by the number of the
// SKU/date stream that owns the order, so any node can route a request on an order to its
// inventory actor without a lookup: `01JD...XYZ-1a`.

import type { RandomSource } from './random.ts';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const ULID_LENGTH = 26;

const CROCKFORD_CODES = Array.from(CROCKFORD, (c) => c.charCodeAt(0));
/** Scratch of one id's character codes (ids are made synchronously, one at a time). */
const idCodes: number[] = [];

// The id is built as character codes and made a string in one step: a string grown by `+` is a rope
// that V8 flattens (copies) the first time it is read, and an order id is read at once (hashed into
// the reservation index, looked up in Maps). Measured with the other constant costs of a reservation
// in docs/performance.md, "Session 5".
function writeUlid(now_ms: number, random: RandomSource): void {
  writeTime(now_ms, idCodes);
  const bytes = random.bytes(10);
  // 80 bits -> 16 base32 characters, 5 bits at a time.
  let acc = 0;
  let bits = 0;
  let k = 10;
  for (let i = 0; i < 10; i++) {
    acc = (acc << 8) | bytes[i]!;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      idCodes[k++] = CROCKFORD_CODES[(acc >> bits) & 31]!;
    }
    acc &= (1 << bits) - 1;
  }
  idCodes.length = ULID_LENGTH;
}

/** The ULID's time part (10 base-32 characters of the ms, most significant first) into codes[0..9]. */
function writeTime(ms: number, codes: number[]): void {
  let t = Math.floor(ms);
  for (let i = 9; i >= 0; i--) {
    codes[i] = CROCKFORD_CODES[t % 32]!;
    t = Math.floor(t / 32);
  }
}

const DASH = 45;

export function orderIdFor(now_ms: number, random: RandomSource, streamNo: number): string {
  writeUlid(now_ms, random);
  const suffix = streamNo.toString(36);
  idCodes.push(DASH);
  for (let i = 0; i < suffix.length; i++) idCodes.push(suffix.charCodeAt(i));
  return String.fromCharCode.apply(null, idCodes);
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

/**
 * A string below every order id made at or after `ms` and above every one made before it (the ULID
 * of `ms` with no random part): order ids sort by creation time, so `order_id > orderIdFloor(ms)`
 * selects the orders created since `ms`.
 */
export function orderIdFloor(ms: number): string {
  const codes: number[] = [];
  writeTime(Math.max(0, ms), codes);
  return String.fromCharCode(...codes) + '0'.repeat(ULID_LENGTH - 10);
}
