// The purchase rules in memory: loaded at start, written through on every admin PUT/DELETE, so the
// purchase path reads `current()` (compiled, sorted by id) and never the table, and a rule change
// applies to the very next order without a restart. Writes are sequenced one at a time, so the order
// in which they reach the store is the order in which memory changes (two PUTs of one id cannot leave
// the store and memory disagreeing), and the RULES_MAX check cannot be raced past.
//
// An empty book: orders skip the limit actors, and the book remembers since when it has been empty
// (stored before the last rule goes, so every order placed without rules is created after it). The
// first rule then counts those orders: the book turns the purchase saga on (limitsActive) with no rule
// in force yet, has them adopted by their buyers (actors/rule-adoption.ts), stores the rule, forgets
// the time, and only then puts the rule in force and answers. A failed adoption fails the PUT and
// changes nothing else (it is idempotent: the next PUT runs it again). A crash after the rule was
// stored but before the time was forgotten leaves the adoption pending: at the next start the rules
// are held out of force (the saga on) until it has run, retried until it succeeds.
//
// Each node has its own book: a change made through one node reaches the others at their next start.

import { byCodeUnits, compileRules, EMPTY_RULE_SET, RULES_MAX, type Rule, type RuleSet } from '../engine/rules.ts';
import type { RuleStore } from '../persistence/ports.ts';
import { UnavailableError } from './errors.ts';
import { OverloadedError } from './runtime/index.ts';

/** Admin writes queued at once; one more is refused (503 overloaded at the edge), nothing queued. */
export const RULE_WRITES_PENDING_MAX = 64;

export type PutRuleResult = { ok: true; rule: Rule; created: boolean } | { ok: false; error: 'too_many_rules'; max: number };

/** Adopts the orders placed since `emptySince_ms` (no rule at all) for `rules`, about to be in force. */
export type RuleAdopter = (emptySince_ms: number, rules: RuleSet) => Promise<void>;

/** A pending adoption found at start that failed is tried again after this long. */
export const ADOPTION_RETRY_MS = 5_000;

export class RuleBook {
  /** The rules stored (in force once adopted: see `compiled`). */
  private readonly rules = new Map<string, Rule>();
  /** The rules in force: the stored ones, or none while their adoption is pending. */
  private compiled: RuleSet = EMPTY_RULE_SET;
  /**
   * Since when the book has been empty (-Infinity: a new database, empty from the start); null once
   * the orders placed meanwhile were adopted.
   */
  private emptySince: number | null = -Infinity;
  /** A PUT is adopting the orders placed with no rule: the saga is on, no rule in force yet. */
  private adoptingForPut = false;
  /**
   * The store may hold an `empty_since` that memory does not (the last rule's DELETE stored it, then
   * failed, and so did taking it back): cleared by the next write, or the next start would hold every
   * rule out of force until a needless adoption ran.
   */
  private emptySinceStale = false;
  private adopter: RuleAdopter | undefined;
  private onError: (error: unknown) => void = () => {};
  private retry: NodeJS.Timeout | undefined;
  /** The tail of the write queue, and how many writes it holds. */
  private writes: Promise<unknown> = Promise.resolve();
  private pending = 0;

  constructor(
    private readonly store: RuleStore,
    private readonly now: () => number,
  ) {}

  async load(): Promise<void> {
    this.rules.clear();
    for (const rule of await this.store.all()) this.rules.set(rule.id, rule);
    const since = await this.store.emptySince();
    // Never written: a new database (empty from the start), or rules stored before the book kept the time.
    this.emptySince = since !== undefined ? since : this.rules.size === 0 ? -Infinity : null;
    this.compiled = this.emptySince === null ? compileRules([...this.rules.values()]) : EMPTY_RULE_SET;
  }

  /**
   * Gives the book its adopter (the node, once its actors exist) and runs an adoption left pending
   * by an earlier run (rules stored, orders not adopted), retrying every ADOPTION_RETRY_MS until done.
   */
  start(adopter: RuleAdopter, onError: (error: unknown) => void): void {
    this.adopter = adopter;
    this.onError = onError;
    if (this.adoptionPending()) this.resumeAdoption();
  }

  stop(): void {
    if (this.retry) clearTimeout(this.retry);
    this.retry = undefined;
    this.adopter = undefined;
  }

  /** The rules in force, compiled: pass to the buyer's `hold`. */
  current(): RuleSet {
    return this.compiled;
  }

  /**
   * Whether orders go through the limit actors: while rules are stored (in force, or held out of
   * force until adopted) and while a PUT adopts for the first rule.
   */
  limitsActive(): boolean {
    return this.rules.size > 0 || this.adoptingForPut;
  }

  /** How many rules are in force, and how many are stored but wait for their adoption (ops, metrics). */
  state(): { inForce: number; pending: number } {
    const inForce = this.compiled.rules.length;
    return { inForce, pending: this.rules.size - inForce };
  }

  /** Rules stored whose adoption has not run yet (they are not in force). */
  adoptionPending(): boolean {
    return this.rules.size > 0 && this.emptySince !== null;
  }

  /** Every rule stored, by id (also those waiting out of force for their adoption). */
  list(): Rule[] {
    return [...this.rules.values()].sort((a, b) => byCodeUnits(a.id, b.id));
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
      const since = this.emptySince;
      // The first rule (or one put while an adoption is pending): the orders placed with no rule
      // count first. The saga is on from here (until the rule is in the book, or the PUT failed), so
      // every order placed from now on is held.
      this.adoptingForPut = since !== null;
      try {
        if (since !== null) await this.adopt(since, compiled);
        await this.store.upsert(rule);
        this.rules.set(rule.id, rule);
      } finally {
        this.adoptingForPut = false;
      }
      this.compiled = compiled;
      if (since !== null || this.emptySinceStale) await this.adopted();
      return { ok: true, rule, created };
    });
  }

  /** Deletes the rule (stored first, then out of force); false when there was none. Idempotent. */
  delete(ruleId: string): Promise<boolean> {
    return this.sequenced(async () => {
      // The last rule: the time the book becomes empty is stored first, so every order placed without
      // rules is created at or after it. A crash between the two leaves it stored with the rule: the next
      // start holds the rules out of force until a needless adoption has run (seconds; a failed delete
      // takes the time back below, so only a crash does that).
      let emptyAt: number | undefined;
      if (this.rules.size === 1 && this.rules.has(ruleId) && this.emptySince === null) {
        emptyAt = this.now();
        await this.store.setEmptySince(emptyAt);
      }
      // Deleted in the store even when memory lacks it, so a row memory never saw cannot linger.
      let stored: boolean;
      try {
        stored = await this.store.delete(ruleId);
      } catch (error) {
        // The rule stays (the DELETE answers 503): the time stored for an empty book is taken back, or
        // the next start would find it with rules stored and hold them all out of force.
        if (emptyAt !== undefined) await this.forgetEmptySince();
        throw error;
      }
      const known = this.rules.delete(ruleId);
      if (this.rules.size === 0 && emptyAt !== undefined) this.emptySince = emptyAt;
      if (known) this.compiled = this.emptySince === null ? compileRules([...this.rules.values()]) : EMPTY_RULE_SET;
      return stored || known;
    });
  }

  private async adopt(since: number, rules: RuleSet): Promise<void> {
    if (!this.adopter) throw new UnavailableError('the rule book cannot adopt orders yet (the node is starting)');
    await this.adopter(since, rules);
  }

  /** The adoption is done (its rules in force): forgotten in the store (a failure there only repeats it at the next start). */
  private async adopted(): Promise<void> {
    this.emptySince = null;
    await this.forgetEmptySince();
  }

  /** Clears the stored `empty_since`; a failure is reported and left for the next write (emptySinceStale). */
  private async forgetEmptySince(): Promise<void> {
    try {
      await this.store.setEmptySince(null);
      this.emptySinceStale = false;
    } catch (error) {
      this.emptySinceStale = true;
      this.onError(error);
    }
  }

  private resumeAdoption(): void {
    this.retry = undefined;
    this.sequenced(async () => {
      // Done meanwhile by a PUT, or its rules deleted: nothing left to adopt for.
      if (!this.adoptionPending() || !this.adopter) return;
      const compiled = compileRules([...this.rules.values()]);
      await this.adopt(this.emptySince!, compiled);
      this.compiled = compiled;
      await this.adopted();
    }).catch((error: unknown) => {
      this.onError(error);
      if (this.adopter) this.retry = setTimeout(() => this.resumeAdoption(), ADOPTION_RETRY_MS).unref();
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
