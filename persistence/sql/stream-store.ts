// SKU/date streams and their small numbers (order ids name their stream by number). `ensure` is
// race-safe without locks: insert-if-missing on the unique (sku_id, date), then read back whichever
// row won, so parallel callers all get the same number.
import type { StreamRef, StreamStore } from '../ports.ts';
import type { SqlDatabase } from './database.ts';

interface StreamRow {
  stream_no: number | string;
  sku_id: string;
  date: string;
}

const select = 'SELECT stream_no, sku_id, date FROM streams';

export class SqlStreamStore implements StreamStore {
  constructor(private readonly db: SqlDatabase) {}

  async ensure(skuId: string, date: string): Promise<StreamRef> {
    // Look first: a duplicate insert still consumes an auto-increment value on InnoDB, and stream
    // numbers are meant to stay small.
    const existing = await this.byKey(skuId, date);
    if (existing) return existing;
    const sql = this.db.dialect.insertIgnore('streams', ['sku_id', 'date'], 1);
    await this.db.run('streams.ensure', sql, [skuId, date]);
    const created = await this.byKey(skuId, date);
    if (!created) throw new Error(`streams.ensure: ${skuId}/${date} missing right after its insert`);
    return created;
  }

  async byNo(streamNo: number): Promise<StreamRef | undefined> {
    const rows = await this.db.all<StreamRow>('streams.byNo', `${select} WHERE stream_no = ?`, [streamNo]);
    return rows[0] && toRef(rows[0]);
  }

  async byKey(skuId: string, date: string): Promise<StreamRef | undefined> {
    const rows = await this.db.all<StreamRow>('streams.byKey', `${select} WHERE sku_id = ? AND date = ?`, [
      skuId,
      date,
    ]);
    return rows[0] && toRef(rows[0]);
  }

  async listForSku(skuId: string): Promise<StreamRef[]> {
    const rows = await this.db.all<StreamRow>('streams.listForSku', `${select} WHERE sku_id = ? ORDER BY date`, [
      skuId,
    ]);
    return rows.map(toRef);
  }

  async all(): Promise<StreamRef[]> {
    const rows = await this.db.all<StreamRow>('streams.all', `${select} ORDER BY stream_no`);
    return rows.map(toRef);
  }
}

function toRef(r: StreamRow): StreamRef {
  return { streamNo: Number(r.stream_no), skuId: r.sku_id, date: r.date };
}
