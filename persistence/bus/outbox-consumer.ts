// One durable consumer of the outbox bus: reads the outbox table after its position, hands the rows
// its filter matches to the handler (up to `concurrency` at once) and keeps its position in
// outbox_cursors as the highest id below which every row is acked. Rows above that which were
// already handled are not recorded, so after a crash they come again: at-least-once, like JetStream,
// and nothing is lost.
import type { OutboxRow, OutboxStore } from '../ports.ts';
import { HandlerSlots } from './handler-slots.ts';
import type { ConsumeOptions, Subscription } from './ports.ts';
import { subjectMatches } from './subjects.ts';
import { backoff_ms, within, Wakeup } from './waits.ts';

export interface OutboxConsumerSettings {
  poll_ms: number;
  readRows_max: number;
  /** No read while this many matching rows are held (read, not yet acked); at least the concurrency. */
  windowEvents_max: number;
  /** The position is saved at most this often (a crash redelivers what was acked since the last save). */
  saveInterval_ms: number;
  redeliveryDelay_ms: number;
  redeliveryDelayMax_ms: number;
  retryMin_ms: number;
  retryMax_ms: number;
  stopTimeout_ms: number;
  onError: (error: unknown) => void;
  /** Called after the position was saved (the bus may trim then). */
  onSaved: () => void;
}

/** The cursor name of a durable in outbox_cursors. */
export function durableCursor(durable: string): string {
  return `bus:${durable}`;
}

interface Entry {
  row: OutboxRow;
  deliveries: number;
  /** Not before this (ms since epoch): a rejected event waits out its redelivery delay. */
  due_ms: number;
}

const encoder = new TextEncoder();

export class OutboxConsumer implements Subscription {
  readonly cursorName: string;
  private readonly wakeup = new Wakeup();
  private readonly slots: HandlerSlots;
  private readonly windowMax: number;
  /** Matching rows read and not yet acked, by id, in id order (appended in id order). */
  private readonly window = new Map<number, Entry>();
  /** Rows of the window never handed out yet, in id order. */
  private fresh: Entry[] = [];
  /** Rejected rows waiting for their redelivery. */
  private retry: Entry[] = [];
  /** The highest id read (every row up to it is in the window or acked or not ours). */
  private readPos = 0;
  private saved = 0;
  private saving: Promise<void> | undefined;
  private lastSave_ms = 0;
  private loaded = false;
  /** Read at the next turn (a nudge, or the last read filled its page); else only when the poll is due. */
  private readWanted = true;
  private pollDue_ms = 0;
  private stopped = false;
  private stopping: Promise<void> | undefined;
  private loop: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: OutboxStore,
    private readonly options: ConsumeOptions,
    concurrency: number,
    private readonly s: OutboxConsumerSettings,
  ) {
    this.cursorName = durableCursor(options.durable);
    this.slots = new HandlerSlots(concurrency, () => this.wakeup.wake());
    this.windowMax = Math.max(concurrency, s.windowEvents_max);
  }

  /** Every row up to this id is acked (or not matched by the filter). */
  get position(): number {
    const first = this.window.keys().next();
    return first.done ? this.readPos : first.value - 1;
  }

  /** New rows may be there: read at once. */
  nudge(): void {
    this.readWanted = true;
    this.wakeup.wake();
  }

  start(): void {
    this.loop = this.run();
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.stopped = true;
      this.wakeup.wake();
      await within(this.loop, this.s.stopTimeout_ms, 'outbox consumer stop').catch(() => {});
      await this.slots.drain(this.s.stopTimeout_ms);
      if (this.loaded) {
        await within(this.saveNow(), this.s.stopTimeout_ms, 'outbox consumer stop').catch((error: unknown) => this.s.onError(error));
      }
    })();
    return this.stopping;
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        if (!this.loaded) {
          this.readPos = this.saved = await this.store.cursor(this.cursorName);
          this.loaded = true;
        }
        // A freed slot wakes the loop too, but only to hand out what the window holds: the table
        // is read when told to (or on the poll), not once per handled event.
        const room = this.window.size < this.windowMax;
        if (room && (this.readWanted || Date.now() >= this.pollDue_ms)) {
          this.readWanted = false;
          this.pollDue_ms = Date.now() + this.s.poll_ms;
          if (await this.read()) this.readWanted = true;
        }
        this.dispatch();
        this.persist();
        failures = 0;
        if (!(this.readWanted && this.window.size < this.windowMax)) await this.wakeup.sleep(this.nextWait_ms());
      } catch (error) {
        if (this.stopped) break;
        this.readWanted = true;
        failures += 1;
        this.s.onError(error);
        await this.wakeup.sleep(backoff_ms(failures, this.s.retryMin_ms, this.s.retryMax_ms));
      }
    }
  }

  /**
   * Reads a page after readPos (the window has room: it then holds at most windowMax + a page);
   * true when the page was full (more may wait).
   */
  private async read(): Promise<boolean> {
    const rows = await this.store.readAfter(this.readPos, this.s.readRows_max, this.options.filter);
    if (this.stopped) return false;
    for (const row of rows) {
      if (subjectMatches(this.options.filter, row.subject)) {
        const entry: Entry = { row, deliveries: 0, due_ms: 0 };
        this.window.set(row.id, entry);
        this.fresh.push(entry);
      }
      this.readPos = row.id;
    }
    return rows.length === this.s.readRows_max;
  }

  /** Starts handlers while slots are free: due redeliveries first, then fresh rows in id order. */
  private dispatch(): void {
    if (this.slots.free === 0 || this.stopped) return;
    if (this.retry.length > 0) {
      const now_ms = Date.now();
      const due = this.retry.filter((e) => e.due_ms <= now_ms).sort((a, b) => a.row.id - b.row.id);
      const started = new Set<Entry>();
      for (const entry of due) {
        if (this.slots.free === 0) break;
        started.add(entry);
        this.begin(entry);
      }
      if (started.size > 0) this.retry = this.retry.filter((e) => !started.has(e));
    }
    let taken = 0;
    while (this.slots.free > 0 && taken < this.fresh.length) this.begin(this.fresh[taken++]!);
    if (taken > 0) this.fresh = this.fresh.slice(taken);
  }

  private begin(entry: Entry): void {
    entry.deliveries += 1;
    this.slots.start(() => this.handle(entry));
  }

  private async handle(entry: Entry): Promise<void> {
    const { row } = entry;
    try {
      await this.options.handler(
        { id: row.eventId, subject: row.subject, data: encoder.encode(row.body) },
        { redelivered: entry.deliveries > 1, deliveryCount: entry.deliveries },
      );
    } catch {
      entry.due_ms = Date.now() + backoff_ms(entry.deliveries, this.s.redeliveryDelay_ms, this.s.redeliveryDelayMax_ms);
      this.retry.push(entry);
      return;
    }
    this.window.delete(row.id);
  }

  /**
   * Until a nudge, a slot frees (or a save ends), or the next thing due: the earliest redelivery
   * (only with a free slot), the poll (only with room in the window), the next save (only with none
   * in flight). Never 0 for something this turn could not do, so the loop never spins.
   */
  private nextWait_ms(): number {
    const now_ms = Date.now();
    let wait_ms = this.s.poll_ms;
    if (this.window.size < this.windowMax) wait_ms = Math.min(wait_ms, this.pollDue_ms - now_ms);
    // Without a free slot a due redelivery waits for one, and a freed slot wakes the loop anyway.
    if (this.slots.free > 0) for (const entry of this.retry) wait_ms = Math.min(wait_ms, entry.due_ms - now_ms);
    if (!this.saving && this.position > this.saved) wait_ms = Math.min(wait_ms, this.lastSave_ms + this.s.saveInterval_ms - now_ms);
    return Math.max(0, wait_ms);
  }

  /**
   * Saves the position in the background, one save at a time and at most every saveInterval_ms; a
   * failure is retried on a later turn.
   */
  private persist(): void {
    if (this.saving || this.position <= this.saved) return;
    const now_ms = Date.now();
    if (now_ms - this.lastSave_ms < this.s.saveInterval_ms) return;
    this.lastSave_ms = now_ms;
    this.saving = this.saveNow()
      .catch((error: unknown) => this.s.onError(error))
      .finally(() => {
        this.saving = undefined;
        if (this.position > this.saved) this.wakeup.wake(); // more was acked meanwhile
      });
  }

  private async saveNow(): Promise<void> {
    await this.saving?.catch(() => {});
    const target = this.position;
    if (target <= this.saved) return;
    await this.store.saveCursor(this.cursorName, target);
    this.saved = Math.max(this.saved, target);
    this.s.onSaved();
  }
}
