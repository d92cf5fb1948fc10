// Order ids: a ULID (time-ordered, 80 random bits, so unguessable) followed by the number of the
// SKU/date stream that owns the order, so any node can route a request on an order to its
// inventory actor without a lookup: `01JD...XYZ-1a`.

import type { RandomSource } from './random.ts';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const ULID_LENGTH = 26;

const CROCKFORD_CODES = Array.from(CROCKFORD, (c) => c.charCodeAt(0));
/** Scratch of one id's character codes (ids are made synchronously, one at a time). */
const idCodes: number[] = [];
/** The time part's codes are those of the previous id while the millisecond is the same. */
let idCodesMs = -1;

// The id is built as character codes and made a string in one step: a string grown by `+` is a rope
// that V8 flattens (copies) the first time it is read, and an order id is read at once (hashed into
// the reservation index, looked up in Maps). Measured with the other constant costs of a reservation
// in docs/performance.md, "Session 5" and "Session 13".
function writeUlid(now_ms: number, random: RandomSource): void {
  if (now_ms !== idCodesMs) {
    writeTime(now_ms, idCodes);
    idCodesMs = now_ms;
  }
  const b = random.bytes(10);
  // 80 bits -> 16 base32 characters: two runs of 40 bits, each as two 20-bit halves.
  let k = 10;
  for (let o = 0; o < 10; o += 5) {
    const hi = (b[o]! << 12) | (b[o + 1]! << 4) | (b[o + 2]! >> 4);
    const lo = ((b[o + 2]! & 15) << 16) | (b[o + 3]! << 8) | b[o + 4]!;
    idCodes[k++] = CROCKFORD_CODES[hi >> 15]!;
    idCodes[k++] = CROCKFORD_CODES[(hi >> 10) & 31]!;
    idCodes[k++] = CROCKFORD_CODES[(hi >> 5) & 31]!;
    idCodes[k++] = CROCKFORD_CODES[hi & 31]!;
    idCodes[k++] = CROCKFORD_CODES[lo >> 15]!;
    idCodes[k++] = CROCKFORD_CODES[(lo >> 10) & 31]!;
    idCodes[k++] = CROCKFORD_CODES[(lo >> 5) & 31]!;
    idCodes[k++] = CROCKFORD_CODES[lo & 31]!;
  }
}

/** The ULID's time part (10 base-32 characters of the ms, most significant first) into codes[0..9]. */
function writeTime(ms: number, codes: number[]): void {
  let t = Math.floor(ms);
  for (let i = 9; i >= 0; i--) {
    codes[i] = CROCKFORD_CODES[t % 32]!;
    t = Math.floor(t / 32);
  }
}

/** The `-<stream>` suffix's codes of the last few stream numbers (a hot SKU/date asks for the same one). */
const suffixCodes = new Map<number, number[]>();
const SUFFIXES_MAX = 1024;

function suffixOf(streamNo: number): number[] {
  let codes = suffixCodes.get(streamNo);
  if (!codes) {
    if (suffixCodes.size >= SUFFIXES_MAX) suffixCodes.clear();
    codes = Array.from(`-${streamNo.toString(36)}`, (c) => c.charCodeAt(0));
    suffixCodes.set(streamNo, codes);
  }
  return codes;
}

export function orderIdFor(now_ms: number, random: RandomSource, streamNo: number): string {
  writeUlid(now_ms, random);
  const suffix = suffixOf(streamNo);
  let k = ULID_LENGTH;
  for (let i = 0; i < suffix.length; i++) idCodes[k++] = suffix[i]!;
  idCodes.length = k;
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
