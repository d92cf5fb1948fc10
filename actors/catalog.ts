// The catalog in memory: SKUs and SKU/date streams, loaded at start and written through on every
// admin change, so the purchase path never reads the catalog tables.

import type { Sku, SkuStore, StreamRef, StreamStore } from '../persistence/ports.ts';

export class Catalog {
  private readonly skus = new Map<string, Sku>();
  private readonly streamsByNo = new Map<number, StreamRef>();
  private readonly streamsByKey = new Map<string, StreamRef>();
  private readonly datesBySku = new Map<string, Set<string>>();

  constructor(
    private readonly skuStore: SkuStore,
    private readonly streamStore: StreamStore,
  ) {}

  async load(): Promise<void> {
    for (const sku of await this.skuStore.all()) this.skus.set(sku.skuId, sku);
    for (const ref of await this.streamStore.all()) this.remember(ref);
  }

  sku(skuId: string): Sku | undefined {
    return this.skus.get(skuId);
  }

  async upsertSku(sku: Sku): Promise<void> {
    await this.skuStore.upsert(sku);
    this.skus.set(sku.skuId, sku);
  }

  stream(skuId: string, date: string): StreamRef | undefined {
    return this.streamsByKey.get(`${skuId}/${date}`);
  }

  /** By stream key (`skuId/date`, see engine/shard.ts inventoryStream). */
  streamOf(stream: string): StreamRef | undefined {
    return this.streamsByKey.get(stream);
  }

  streamByNo(streamNo: number): StreamRef | undefined {
    return this.streamsByNo.get(streamNo);
  }

  async ensureStream(skuId: string, date: string): Promise<StreamRef> {
    const known = this.stream(skuId, date);
    if (known) return known;
    const ref = await this.streamStore.ensure(skuId, date);
    this.remember(ref);
    return ref;
  }

  dates(skuId: string): string[] {
    return [...(this.datesBySku.get(skuId) ?? [])].sort();
  }

  /** Every SKU (reconciliation). */
  allSkus(): Sku[] {
    return [...this.skus.values()];
  }

  /** Every SKU/date (reconciliation). */
  allStreams(): StreamRef[] {
    return [...this.streamsByNo.values()];
  }

  get skuCount(): number {
    return this.skus.size;
  }

  private remember(ref: StreamRef): void {
    this.streamsByNo.set(ref.streamNo, ref);
    this.streamsByKey.set(`${ref.skuId}/${ref.date}`, ref);
    let dates = this.datesBySku.get(ref.skuId);
    if (!dates) this.datesBySku.set(ref.skuId, (dates = new Set()));
    dates.add(ref.date);
  }
}
