// Small recorders for tests: a Writable that keeps what a command prints, and a log of the statuses
// of the requests a test makes (to compare with a replay's answers).
import { Writable } from 'node:stream';

/** Keeps everything written to it as text (a command's stdout or stderr). */
export class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

/** `track(request)` answers the request and notes its status in `statuses`, in the order awaited. */
export function statusLog(): { statuses: number[]; track<A extends { status: number }>(p: Promise<A>): Promise<A> } {
  const statuses: number[] = [];
  return {
    statuses,
    async track(p) {
      const a = await p;
      statuses.push(a.status);
      return a;
    },
  };
}
