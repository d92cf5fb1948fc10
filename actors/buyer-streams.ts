// Which buyers have a journal stream (`@b/<userId>`), known without reading it: a buyer's limit
// actor read its stream on every activation, and in a flash sale most buyers are new, so most of
// those reads found nothing (issue 4's rules path, issue 5's replay). At start the node hands over
// every buyer stream the journal holds (it reads the heads of all streams anyway); from then on every
// buyer write is added before it is made. A Bloom filter (engine/bloom-filter.ts): "absent" is
// certain, so the read is skipped; "maybe" (a buyer with a stream, or a 1% false positive) reads.
// Until the start's streams are in, every buyer may have a stream.
import { BloomFilter } from '../engine/bloom-filter.ts';

export class BuyerStreams {
  private readonly filter = new BloomFilter();
  private complete = false;

  /**
   * A buyer stream that exists or is about to be written: one the journal held at start, or one a
   * limit actor is writing (the write may fail: "maybe" is still right).
   */
  add(stream: string): void {
    if (!this.filter.mightContain(stream)) this.filter.add(stream);
  }

  /** Every stream the journal held at start was added. */
  markComplete(): void {
    this.complete = true;
  }

  /** False: the stream certainly has no record, so there is nothing to read. */
  mayExist(stream: string): boolean {
    return !this.complete || this.filter.mightContain(stream);
  }

  /** Streams remembered and the bytes it takes (ops, tests). */
  get stats(): { streams: number; bytes: number; complete: boolean } {
    return { streams: this.filter.size, bytes: this.filter.bytes, complete: this.complete };
  }
}
