// Shard mapping: a key (an SKU/date stream, a buyer, an order) lives on shard fnv1a(key) mod shards.
// The mapping is a pure function so every node computes the same owner.

export function fnv1a32(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export function shardOf(key: string, shards: number): number {
  return fnv1a32(key) % shards;
}

/** The journal stream of one SKU/date. Identifiers cannot contain '/', so the split is unambiguous. */
export function inventoryStream(skuId: string, date: string): string {
  return `${skuId}/${date}`;
}

/** The SKU id and date of an inventory stream (the inverse of inventoryStream). */
export function splitStream(stream: string): [string, string] {
  const i = stream.lastIndexOf('/');
  return [stream.slice(0, i), stream.slice(i + 1)];
}
