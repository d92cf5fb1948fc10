// A pino logger whose lines a test reads back (one JSON line per entry, as written).
import { Writable } from 'node:stream';
import { pino, type Level, type Logger } from 'pino';

/** A pino logger at `level` whose lines are kept in `lines`. */
export function capturingLogger(level: Level = 'debug'): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(chunk.toString());
      callback();
    },
  });
  return { log: pino({ level }, sink), lines };
}
