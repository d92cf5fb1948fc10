// Snapshots on SQL: the durable copy every recovery can count on (Redis, when configured, is only a
// faster copy in front of it). A save replaces the stored snapshot only when its seq is newer, so a
// slow writer can never put an older state back.
import type { SnapshotRecord, SnapshotStore } from '../ports.ts';
import type { SqlDatabase } from './database.ts';

const columns = ['stream', 'seq', 'at', 'state'] as const;

export class SqlSnapshotStore implements SnapshotStore {
  constructor(private readonly db: SqlDatabase) {}

  async save(record: SnapshotRecord): Promise<void> {
    const sql = this.db.dialect.upsertIfGreater('snapshots', columns, ['stream'], 'seq', 1);
    await this.db.run('snapshots.save', sql, [record.stream, record.seq, record.at, Buffer.from(JSON.stringify(record.state))]);
  }

  async load(stream: string): Promise<SnapshotRecord | undefined> {
    const rows = await this.db.all<{ stream: string; seq: number | string; at: number | string; state: Buffer | string }>(
      'snapshots.load',
      'SELECT stream, seq, at, state FROM snapshots WHERE stream = ?',
      [stream],
    );
    const row = rows[0];
    if (row === undefined) return undefined;
    return { stream: row.stream, seq: Number(row.seq), at: Number(row.at), state: JSON.parse(typeof row.state === 'string' ? row.state : row.state.toString('utf8')) as unknown };
  }
}
