// The purchase rules in memory: loaded at start, written through on every admin PUT/DELETE, so the
// purchase path reads `current()` (compiled, sorted by id) and never the table, and a rule change
// applies to the very next order without a restart. Writes are sequenced one at a time, so the order
// in which they reach the store is the order in which memory changes (two PUTs of one id cannot leave
// the store and memory disagreeing), and the RULES_MAX check cannot be raced past.
//
// Each node has its own book: a change made through one node reaches the others at their next start.

import { compileRules, EMPTY_RULE_SET, RULES_MAX, type Rule, type RuleSet } from '../engine/rules.ts';
import type { RuleStore } from '../persistence/ports.ts';
import { OverloadedError } from './runtime/index.ts';

/** Admin writes queued at once; one more is refused (503 overloaded at the edge), nothing queued. */
export const RULE_WRITES_PENDING_MAX = 64;

export type PutRuleResult = { ok: true; rule: Rule; created: boolean } | { ok: false; error: 'too_many_rules'; max: number };

export class RuleBook {
  private readonly rules = new Map<string, Rule>();
  private compiled: RuleSet = EMPTY_RULE_SET;
  /** The tail of the write queue, and how many writes it holds. */
  private writes: Promise<unknown> = Promise.resolve();
  private pending = 0;

  constructor(private readonly store: RuleStore) {}

  async load(): Promise<void> {
    this.rules.clear();
    for (const rule of await this.store.all()) this.rules.set(rule.id, rule);
    this.compiled = compileRules([...this.rules.values()]);
  }

  /** The rules in force, compiled: pass to the buyer's `hold`. */
  current(): RuleSet {
    return this.compiled;
  }

  /** Every rule, by id. */
  list(): Rule[] {
    return this.compiled.rules.map((r) => r.rule);
  }

  get(ruleId: string): Rule | undefined {
    return this.rules.get(ruleId);
  }

  get size(): number {
    return this.rules.size;
  }

  /**
   * Creates or replaces the rule: stored first, then in force. A new id beyond RULES_MAX is refused and
   * changes nothing. Rejects (changing nothing in memory) when the store write fails.
   */
  put(rule: Rule): Promise<PutRuleResult> {
    return this.sequenced(async () => {
      const created = !this.rules.has(rule.id);
      if (created && this.rules.size >= RULES_MAX) return { ok: false, error: 'too_many_rules', max: RULES_MAX };
      // Compiled before the write: a rule the engine cannot use is a programmer mistake, thrown before
      // anything is stored.
      const next = new Map(this.rules).set(rule.id, rule);
      const compiled = compileRules([...next.values()]);
      await this.store.upsert(rule);
      this.rules.set(rule.id, rule);
      this.compiled = compiled;
      return { ok: true, rule, created };
    });
  }

  /** Deletes the rule (stored first, then out of force); false when there was none. Idempotent. */
  delete(ruleId: string): Promise<boolean> {
    return this.sequenced(async () => {
      // Deleted in the store even when memory lacks it, so a row memory never saw cannot linger.
      const stored = await this.store.delete(ruleId);
      const known = this.rules.delete(ruleId);
      if (known) this.compiled = compileRules([...this.rules.values()]);
      return stored || known;
    });
  }

  private sequenced<T>(work: () => Promise<T>): Promise<T> {
    if (this.pending >= RULE_WRITES_PENDING_MAX) return Promise.reject(new OverloadedError('rule writes queue full'));
    this.pending += 1;
    const run = this.writes.then(work).finally(() => {
      this.pending -= 1;
    });
    this.writes = run.catch(() => {}); // a failed write is its caller's answer; the next one still runs
    return run;
  }
}
