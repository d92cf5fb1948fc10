// An append-only JSON Lines file written off the request path: `append` only adds a line to an
// in-memory buffer and says at once whether it was taken; the buffer goes to the file in one write
// when it passes `flush_bytes` or `flush_interval_ms` after its first line (an unref'd timer, so an
// idle recorder never keeps the process up). Nothing here is ever awaited by a request.
//
// Limits and what crossing them means:
// - the buffer (lines waiting plus the write in flight) holds at most `buffered_bytes_max`; a line
//   that does not fit is refused (`append` → false) and counted as dropped `buffer_full`. The caller
//   numbers only the lines that were taken, so the file never has a gap its line numbers skip over.
// - the file holds at most `file_bytes_max`: the line that would pass it ends the recording (it and
//   every later line dropped `file_full`; logged once).
// - the first failed open or write (bad path, disk full) ends the recording: logged once, the
//   lines lost and every later one counted as dropped `write_failed`, the file cut back to the
//   last whole line. Writing on after a lost write would leave a gap that shifts every later line
//   number, and `orderRef` counts lines.
import { open, rename, stat, type FileHandle } from 'node:fs/promises';
import type { Logger } from 'pino';

export type DropReason = 'buffer_full' | 'write_failed' | 'file_full';

export interface LineWriterLimits {
  /** Buffered bytes that trigger a write at once. */
  flush_bytes: number;
  /** A line waits at most this long before it is written. */
  flush_interval_ms: number;
  /** Bytes held in memory at most (waiting plus being written); past it lines are dropped. */
  buffered_bytes_max: number;
  /**
   * Bytes the file may reach at most: the line that would pass it ends the recording (it and every
   * later one dropped `file_full`), so that a recording left on, or fed 64 KiB bodies by anonymous
   * clients, cannot fill the disk the database may share.
   */
  file_bytes_max: number;
}

export const LINE_WRITER_DEFAULTS: LineWriterLimits = {
  flush_bytes: 64 * 1024,
  flush_interval_ms: 100,
  buffered_bytes_max: 16 * 1024 * 1024,
  file_bytes_max: 4 * 1024 ** 3,
};

export interface LineWriterObserver {
  /** Lines that reached the file. */
  written?(lines: number): void;
  dropped?(reason: DropReason, lines: number): void;
}

export interface LineWriterTotals {
  written_lines: number;
  dropped_lines: Record<DropReason, number>;
}

/** `<file>.<ISO 8601 basic timestamp>`: colon-free, sorts by time. */
export function asideName(file: string, now: Date): string {
  return `${file}.${now.toISOString().replace(/[-:]/g, '')}`;
}

/** How long close() waits for the disk before it gives the unwritten lines up (see close). */
export const LINE_WRITER_CLOSE_DEADLINE_MS = 5_000;

export class LineWriter {
  private waiting: string[] = [];
  private waiting_bytes = 0;
  private writing_bytes = 0;
  /** Lines of the write in flight. */
  private writing_lines = 0;
  /** Bytes of whole lines in the file: where a failed write is cut back to. */
  private file_bytes = 0;
  private writing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private failed = false;
  private closed = false;
  /** close() gave the lines in flight up as lost: what becomes of their write is not counted again. */
  private abandoned = false;
  private fullSince: number | undefined;
  /** Bytes of the lines taken so far (written, being written or waiting): what the file will reach. */
  private taken_bytes = 0;
  private full = false;
  readonly totals: LineWriterTotals = { written_lines: 0, dropped_lines: { buffer_full: 0, write_failed: 0, file_full: 0 } };

  private constructor(
    readonly file: string,
    private readonly handle: FileHandle | undefined,
    private readonly limits: LineWriterLimits,
    private readonly observer: LineWriterObserver,
    private readonly log: Logger,
  ) {
    if (handle === undefined) this.failed = true;
  }

  /**
   * Opens `file` for a fresh recording. A non-empty regular file already there is moved aside to
   * `<file>.<timestamp>` (line numbers and t start at 0 again). Never throws: a file that cannot be
   * opened gives a writer that refuses every line (logged once, counted).
   */
  static async open(file: string, log: Logger, observer: LineWriterObserver = {}, limits: LineWriterLimits = LINE_WRITER_DEFAULTS): Promise<LineWriter> {
    try {
      const existing = await stat(file).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return undefined;
        throw error;
      });
      if (existing?.isFile() && existing.size > 0) {
        const aside = asideName(file, new Date());
        await rename(file, aside);
        log.info({ file, movedTo: aside }, 'recording: an earlier recording was moved aside');
      }
      // Buyers' identities and payment ids: readable by this user only — also a file that was there
      // already, empty (the mode given to open applies only to a file it creates).
      const handle = await open(file, 'a', 0o600);
      if ((await handle.stat()).isFile()) await handle.chmod(0o600);
      return new LineWriter(file, handle, limits, observer, log);
    } catch (error) {
      log.error({ err: error, file }, 'recording: cannot open the file; serving on without recording');
      return new LineWriter(file, undefined, limits, observer, log);
    }
  }

  /** Takes one line (ending in "\n") into the buffer, or refuses it. Never blocks, never throws. */
  append(line: string): boolean {
    if (this.failed || this.closed) {
      this.drop('write_failed', 1);
      return false;
    }
    const bytes = Buffer.byteLength(line);
    if (this.full || this.taken_bytes + bytes > this.limits.file_bytes_max) {
      if (!this.full) {
        this.full = true;
        this.log.warn({ file: this.file, file_bytes_max: this.limits.file_bytes_max }, 'recording: the file reached its size bound; recording stopped, serving on');
      }
      this.drop('file_full', 1);
      return false;
    }
    if (this.waiting_bytes + this.writing_bytes + bytes > this.limits.buffered_bytes_max) {
      if (this.fullSince === undefined) {
        this.fullSince = this.totals.dropped_lines.buffer_full;
        this.log.warn({ file: this.file, buffered_bytes_max: this.limits.buffered_bytes_max }, 'recording: buffer full (the disk is slower than the traffic); dropping lines');
      }
      this.drop('buffer_full', 1);
      return false;
    }
    this.waiting.push(line);
    this.waiting_bytes += bytes;
    this.taken_bytes += bytes;
    if (this.waiting_bytes >= this.limits.flush_bytes) this.kick();
    else if (this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.kick();
      }, this.limits.flush_interval_ms);
      this.timer.unref();
    }
    return true;
  }

  /**
   * Writes everything taken so far, then closes the file. Later lines are refused. A disk that does not
   * answer within `deadline_ms` (a stalled network mount) does not hold the node's stop: the lines not
   * written by then are counted lost (`write_failed`) and the stop goes on.
   */
  async close(deadline_ms = LINE_WRITER_CLOSE_DEADLINE_MS): Promise<LineWriterTotals> {
    if (this.closed) return this.totals;
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const finish = async (): Promise<'done'> => {
      await this.writing;
      if (this.waiting.length > 0) {
        this.kick();
        await this.writing;
      }
      await this.handle?.close().catch((error: unknown) => this.log.warn({ err: error, file: this.file }, 'recording: closing the file failed'));
      return 'done';
    };
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), deadline_ms);
      timer.unref();
    });
    const outcome = await Promise.race([finish(), late]);
    clearTimeout(timer);
    if (outcome === 'late') {
      const lost = this.waiting.length + this.writing_lines;
      this.failed = true;
      this.abandoned = true;
      this.waiting = [];
      this.waiting_bytes = 0;
      this.drop('write_failed', lost);
      this.log.error({ file: this.file, deadline_ms, lost }, 'recording: the disk did not take the last lines in time; the stop goes on without them');
    }
    return this.totals;
  }

  private drop(reason: DropReason, lines: number): void {
    this.totals.dropped_lines[reason] += lines;
    this.observer.dropped?.(reason, lines);
  }

  /** Starts a write of what waits, unless one is in flight (it looks again when done). */
  private kick(): void {
    if (this.writing === undefined && this.waiting.length > 0) {
      this.writing = this.drain().finally(() => (this.writing = undefined));
    }
  }

  private async drain(): Promise<void> {
    // Lines taken while a write was in flight go out in the next one, once it is worth a write
    // (or its timer is due, or the writer is closing).
    while (this.waiting.length > 0 && !this.failed && (this.closed || this.waiting_bytes >= this.limits.flush_bytes || this.timer === undefined)) {
      const lines = this.waiting;
      const data = Buffer.from(lines.join(''), 'utf8');
      this.waiting = [];
      this.writing_bytes = this.waiting_bytes;
      this.writing_lines = lines.length;
      this.waiting_bytes = 0;
      try {
        for (let offset = 0; offset < data.length; ) {
          const { bytesWritten } = await this.handle!.write(data, offset, data.length - offset);
          offset += bytesWritten;
        }
        this.file_bytes += data.length;
        if (this.abandoned) return;
        this.totals.written_lines += lines.length;
        this.observer.written?.(lines.length);
        if (this.fullSince !== undefined) {
          this.log.warn({ file: this.file, dropped: this.totals.dropped_lines.buffer_full - this.fullSince }, 'recording: buffer has room again');
          this.fullSince = undefined;
        }
      } catch (error) {
        await this.fail(error, lines.length);
      } finally {
        this.writing_bytes = 0;
        this.writing_lines = 0;
      }
    }
    // What is left is not worth a write yet: the timer armed when it was taken sends it.
  }

  private async fail(error: unknown, lostLines: number): Promise<void> {
    if (this.abandoned) return;
    this.failed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const lost = lostLines + this.waiting.length;
    this.waiting = [];
    this.waiting_bytes = 0;
    this.drop('write_failed', lost);
    this.log.error({ err: error, file: this.file, written: this.totals.written_lines, lost }, 'recording: write failed; recording stopped, serving on');
    // A part of the failed write may be in the file: cut it back to the last whole line.
    await this.handle?.truncate(this.file_bytes).catch(() => undefined);
  }
}
