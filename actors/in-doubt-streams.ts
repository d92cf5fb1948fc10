// SKU/dates whose journal may still take a write that no one here knows the outcome of, so that their
// next recovery fences the journal first (see InventoryActor.recoverFenced):
//
// - a write of an earlier incarnation that failed on a deadline or a lost connection, or that was in
//   flight when its incarnation crashed: it may still commit (added by the actor);
// - on MySQL, for a while after the start, a write of the previous process: killed with a journal
//   INSERT sent, that INSERT may still be running in the server (waiting for a lock, a slow flush) and
//   commit after this process read the journal. Only one write per SKU/date can be in flight, so one
//   fence per SKU/date in that window settles it; later recoveries need none.
//
// The window is measured in real elapsed time, never on the node's clock (which tests and the
// simulator move at will).

export class InDoubtStreams {
  private readonly streams = new Set<string>();
  /** SKU/dates fenced since the start, while the window is open (cleared once it has closed). */
  private readonly settledSinceStart = new Set<string>();

  constructor(
    /** Until when (on `realNow`) a previous process's write may still land; 0: none can. */
    private readonly orphansUntil_ms: number,
    private readonly realNow: () => number,
  ) {}

  /** The stream's last write has an unknown outcome. */
  add(stream: string): void {
    this.streams.add(stream);
  }

  /** Whether the stream's next recovery must fence its journal. */
  has(stream: string): boolean {
    return this.streams.has(stream) || (this.windowOpen() && !this.settledSinceStart.has(stream));
  }

  /** The stream's journal was fenced (or its fence found the late write): nothing of it is in doubt. */
  delete(stream: string): void {
    this.streams.delete(stream);
    if (this.windowOpen()) this.settledSinceStart.add(stream);
    else if (this.settledSinceStart.size > 0) this.settledSinceStart.clear();
  }

  private windowOpen(): boolean {
    return this.orphansUntil_ms > 0 && this.realNow() < this.orphansUntil_ms;
  }
}
