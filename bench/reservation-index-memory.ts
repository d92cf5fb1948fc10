// `node --expose-gc --import tsx bench/reservation-index-memory.ts`: the memory one live reservation
// takes in a SKU/date's reservation index (engine/reservation-index.ts, typed-array columns, no
// JavaScript object per reservation) against the same reservations in a Map of objects (the index it
// replaced), both measured in this run: bytes on the collector's heap and in ArrayBuffers (outside
// it), per reservation, and the ratios.
//
// Knobs (environment): BENCH_RESERVATIONS (200000).

import type { Reservation } from '../engine/inventory.ts';
import { ReservationIndex } from '../engine/reservation-index.ts';

const N = Number(process.env.BENCH_RESERVATIONS ?? 200_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  console.error('run with node --expose-gc');
  process.exit(2);
}

/** Every id and user id a new string, as a buyer's request brings them. */
function reservationOf(i: number): Reservation {
  const orderId = `01JDZ${(i * 7919).toString(32).padStart(11, '0')}-1a`;
  return { orderId, userId: `u${i}`, qty: 1 + (i % 3), amountCents: 1999, createdAt: 1_796_000_000_000 + i, expiresAt: 1_796_000_900_000 + i };
}

/** The JavaScript heap and the memory of ArrayBuffers (typed arrays: outside the heap, never marked or copied by the collector). */
function memoryAfterGc(): { heap: number; buffers: number } {
  gc!();
  gc!();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, buffers: m.arrayBuffers };
}

/** Bytes per reservation held by `fill`'s result (kept alive until measured): on the heap, and in ArrayBuffers. */
function perReservation(fill: () => { size: number }): { heap: number; buffers: number } {
  const before = memoryAfterGc();
  const held = fill();
  const after = memoryAfterGc();
  if (held.size !== N) throw new Error(`held ${held.size} of ${N}`);
  return { heap: (after.heap - before.heap) / N, buffers: (after.buffers - before.buffers) / N };
}

const index = perReservation(() => {
  const x = new ReservationIndex();
  for (let i = 0; i < N; i++) {
    const r = reservationOf(i);
    x.set(r.orderId, r);
  }
  return x;
});
const map = perReservation(() => {
  const x = new Map<string, Reservation>();
  for (let i = 0; i < N; i++) {
    const r = reservationOf(i);
    x.set(r.orderId, r);
  }
  return x;
});
const total = (m: { heap: number; buffers: number }) => m.heap + m.buffers;
console.log(`reservation index, ${N} live reservations, bytes per reservation:`);
console.log(`  index:          heap ${index.heap.toFixed(1)} + ArrayBuffers ${index.buffers.toFixed(1)} = ${total(index).toFixed(1)}`);
console.log(`  Map of objects: heap ${map.heap.toFixed(1)} + ArrayBuffers ${map.buffers.toFixed(1)} = ${total(map).toFixed(1)}`);
console.log(`  ratio Map / index: heap ${(map.heap / Math.max(index.heap, 0.1)).toFixed(0)}, in all ${(total(map) / total(index)).toFixed(2)}`);
console.log(JSON.stringify({ bench: 'reservation-index-memory', reservations: N, index_heap_bytes: +index.heap.toFixed(1), index_buffer_bytes: +index.buffers.toFixed(1), map_heap_bytes: +map.heap.toFixed(1), map_buffer_bytes: +map.buffers.toFixed(1) }));
