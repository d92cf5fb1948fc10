// The SKU catalog on SQL: an idempotent upsert per SKU (the admin PUT), read by the storefront.
import type { Delivery, Sku, SkuStore } from '../ports.ts';
import type { SqlDatabase } from './database.ts';
import type { SkuEntity } from './entities.ts';

const columns = [
  'sku_id',
  'name',
  'price_cents',
  'merchant_id',
  'delivery',
  'attributes',
  'visible_at',
  'sale_starts_at',
  'sale_ends_at',
  'updated_at',
] as const;

/** A skus row as the drivers return it (MySQL may give a bigint as a string). */
type SkuRow = Omit<SkuEntity, 'price_cents'> & { price_cents: number | string };

const select = `SELECT ${columns.join(', ')} FROM skus`;

export class SqlSkuStore implements SkuStore {
  constructor(private readonly db: SqlDatabase) {}

  async upsert(sku: Sku): Promise<void> {
    const sql = this.db.dialect.upsert('skus', columns, ['sku_id'], 1);
    await this.db.run('skus.upsert', sql, [
      sku.skuId,
      sku.name,
      sku.priceCents,
      sku.merchantId,
      sku.delivery,
      JSON.stringify(sku.attributes),
      sku.visibleAt,
      sku.saleStartsAt,
      sku.saleEndsAt,
      sku.updatedAt,
    ]);
  }

  async get(skuId: string): Promise<Sku | undefined> {
    const rows = await this.db.all<SkuRow>('skus.get', `${select} WHERE sku_id = ?`, [skuId]);
    return rows[0] && toSku(rows[0]);
  }

  async all(): Promise<Sku[]> {
    const rows = await this.db.all<SkuRow>('skus.all', `${select} ORDER BY sku_id`);
    return rows.map(toSku);
  }
}

function toSku(r: SkuRow): Sku {
  return {
    skuId: r.sku_id,
    name: r.name,
    priceCents: Number(r.price_cents),
    merchantId: r.merchant_id,
    delivery: r.delivery as Delivery,
    attributes: JSON.parse(r.attributes) as Record<string, string>,
    visibleAt: r.visible_at,
    saleStartsAt: r.sale_starts_at,
    saleEndsAt: r.sale_ends_at,
    updatedAt: r.updated_at,
  };
}
