// The catalog in memory: SKUs and SKU/date streams, loaded at start and written through on every
// admin change, so the purchase path never reads the catalog tables.

import { inventoryStream, splitStream } from '../engine/shard.ts';
import type { Sku, SkuStore, StreamRef, StreamStore } from '../persistence/ports.ts';
import { KeyedQueue } from './keyed-queue.ts';

/**
 * A SKU as the catalog holds it: its attributes a frozen copy of their own, so that every order of
 * the SKU passes one unchanging object (the purchase rules share it, engine/facts-intern.ts).
 */
function held(sku: Sku): Sku {
  return { ...sku, attributes: Object.freeze({ ...sku.attributes }) };
}

/** A SKU/date as the catalog holds it: with its stream key (`skuId/date`), made once. */
export interface CatalogStream extends StreamRef {
  stream: string;
}

export class Catalog {
  private readonly skus = new Map<string, Sku>();
  private readonly streamsByNo = new Map<number, CatalogStream>();
  /** SKU -> date -> stream: the purchase path finds its SKU/date without building the key string. */
  private readonly streamsBySku = new Map<string, Map<string, CatalogStream>>();
  /** Per SKU, its changes queued or running (changeSku). */
  private readonly changes = new KeyedQueue();

  constructor(
    private readonly skuStore: SkuStore,
    private readonly streamStore: StreamStore,
  ) {}

  async load(): Promise<void> {
    for (const sku of await this.skuStore.all()) this.skus.set(sku.skuId, held(sku));
    for (const ref of await this.streamStore.all()) this.remember(ref);
  }

  sku(skuId: string): Sku | undefined {
    return this.skus.get(skuId);
  }

  async upsertSku(sku: Sku): Promise<void> {
    await this.skuStore.upsert(sku);
    this.skus.set(sku.skuId, held(sku));
  }

  /**
   * Runs `change` once the SKU's earlier changes are done; its later ones wait for it. What must hold
   * together runs in one: a check of the SKU's owner or kind and the write it allows. An admin's
   * change of owner is allowed only while the SKU has no stock (http/routes/admin.ts), a merchant's
   * new stock date or card keys only while the SKU is the merchant's: without this, one could land
   * between the other's check and write, and a merchant's stock end up on another merchant's SKU.
   * The queue of a SKU is bounded by its callers' (admin requests, merchant commands in flight).
   */
  changeSku<T>(skuId: string, change: () => Promise<T>): Promise<T> {
    return this.changes.run(skuId, change);
  }

  stream(skuId: string, date: string): CatalogStream | undefined {
    return this.streamsBySku.get(skuId)?.get(date);
  }

  /** By stream key (`skuId/date`, see engine/shard.ts inventoryStream). */
  streamOf(stream: string): CatalogStream | undefined {
    const [skuId, date] = splitStream(stream);
    return this.stream(skuId, date);
  }

  streamByNo(streamNo: number): CatalogStream | undefined {
    return this.streamsByNo.get(streamNo);
  }

  async ensureStream(skuId: string, date: string): Promise<CatalogStream> {
    const known = this.stream(skuId, date);
    if (known) return known;
    return this.remember(await this.streamStore.ensure(skuId, date));
  }

  dates(skuId: string): string[] {
    return [...(this.streamsBySku.get(skuId)?.keys() ?? [])].sort();
  }

  /** Every SKU (reconciliation). */
  allSkus(): Sku[] {
    return [...this.skus.values()];
  }

  /** Every SKU/date (reconciliation). */
  allStreams(): CatalogStream[] {
    return [...this.streamsByNo.values()];
  }

  get skuCount(): number {
    return this.skus.size;
  }

  private remember(ref: StreamRef): CatalogStream {
    const known = this.streamsByNo.get(ref.streamNo);
    if (known && known.skuId === ref.skuId && known.date === ref.date) return known;
    const entry: CatalogStream = { streamNo: ref.streamNo, skuId: ref.skuId, date: ref.date, stream: inventoryStream(ref.skuId, ref.date) };
    this.streamsByNo.set(entry.streamNo, entry);
    let dates = this.streamsBySku.get(entry.skuId);
    if (!dates) this.streamsBySku.set(entry.skuId, (dates = new Map()));
    dates.set(entry.date, entry);
    return entry;
  }
}
