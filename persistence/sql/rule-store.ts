// Purchase rules on SQL: an idempotent upsert and delete per rule id (the admin PUT/DELETE), the whole
// list read once at start by the rule book; and since when the book has been empty (limit_rule_book). The rule is kept as JSON text; it was validated at the edge.
import type { Rule } from '../../engine/rules.ts';
import type { RuleStore } from '../ports.ts';
import type { SqlDatabase } from './database.ts';
import type { LimitRuleEntity } from './entities.ts';

const columns = ['rule_id', 'rule'] as const;
const select = `SELECT ${columns.join(', ')} FROM limit_rules`;

export class SqlRuleStore implements RuleStore {
  constructor(private readonly db: SqlDatabase) {}

  async upsert(rule: Rule): Promise<void> {
    const sql = this.db.dialect.upsert('limit_rules', columns, ['rule_id'], 1);
    await this.db.run('limit_rules.upsert', sql, [rule.id, JSON.stringify(rule)]);
  }

  async delete(ruleId: string): Promise<boolean> {
    const r = await this.db.run('limit_rules.delete', 'DELETE FROM limit_rules WHERE rule_id = ?', [ruleId]);
    return r.affectedRows > 0;
  }

  async get(ruleId: string): Promise<Rule | undefined> {
    const rows = await this.db.all<LimitRuleEntity>('limit_rules.get', `${select} WHERE rule_id = ?`, [ruleId]);
    return rows[0] && toRule(rows[0]);
  }

  async all(): Promise<Rule[]> {
    const rows = await this.db.all<LimitRuleEntity>('limit_rules.all', `${select} ORDER BY rule_id`);
    return rows.map(toRule);
  }

  async emptySince(): Promise<number | null | undefined> {
    const rows = await this.db.all<{ empty_since: number | string | null }>('limit_rule_book.get', 'SELECT empty_since FROM limit_rule_book WHERE name = ?', [BOOK_ROW]);
    if (rows.length === 0) return undefined;
    const at = rows[0]!.empty_since;
    return at === null ? null : Number(at);
  }

  async setEmptySince(at_ms: number | null): Promise<void> {
    const sql = this.db.dialect.upsert('limit_rule_book', ['name', 'empty_since'], ['name'], 1);
    await this.db.run('limit_rule_book.set', sql, [BOOK_ROW, at_ms]);
  }
}

const BOOK_ROW = 'book';

function toRule(r: LimitRuleEntity): Rule {
  // The row's key is the rule's id (written from the same value); id first, as the contract writes it.
  const { id: _stored, ...rest } = JSON.parse(r.rule) as Rule;
  return { id: r.rule_id, ...rest };
}
