// Proves a recording file is read as it is parsed, a chunk at a time, with the same result as
// parsing the whole text: lines that span chunk boundaries, a multi-byte character split between two
// chunks, a last line cut short by a crash (left out and said so), and a bad line named by its number.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseRecordingText, readRecording, RecordingFormatError } from '../../sim/recording/format.ts';

const dir = mkdtempSync(join(tmpdir(), 'stampede-recording-read-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** ~3 MiB of order lines (chunks are 1 MiB), each with a user name of multi-byte characters. */
function bigRecording(): string {
  const lines: string[] = ['{"t":0,"method":"PUT","path":"/v1/skus/s1/stock/2027-06-01","admin":true,"body":{"total":100000}}'];
  let length = lines[0]!.length;
  for (let i = 1; length < 3 * 1024 * 1024 && i < 100_000; i++) {
    const line = JSON.stringify({ t: i, method: 'POST', path: '/v1/orders', user: `ü${'ß'.repeat(i % 7)}${i}`, body: { skuId: 's1', date: '2027-06-01', qty: 1 } });
    lines.push(line);
    length += line.length + 1;
  }
  return lines.join('\n');
}

describe('reading a recording file', () => {
  it('gives what parsing the whole text gives, across 1 MiB chunks and multi-byte characters', async () => {
    const text = `${bigRecording()}\n`;
    const file = join(dir, 'big.jsonl');
    writeFileSync(file, text);
    const read = await readRecording(file);
    const whole = parseRecordingText(text);
    expect(read.lines.length).toBeGreaterThan(20_000);
    expect(read.lines).toEqual(whole.lines);
    expect(read.cut).toBeUndefined();
  });

  it('leaves out a last line a crash cut short, and refuses a bad line elsewhere by its number', async () => {
    const good = bigRecording();
    const cutFile = join(dir, 'cut.jsonl');
    writeFileSync(cutFile, `${good}\n{"t":999999,"method":"PO`);
    const cut = await readRecording(cutFile);
    expect(cut.cut).toEqual({ line: parseRecordingText(good).lines.length, chars: '{"t":999999,"method":"PO'.length });
    expect(cut.lines).toEqual(parseRecordingText(good).lines);
    const badFile = join(dir, 'bad.jsonl');
    const lines = good.split('\n');
    lines.splice(5_000, 0, '{"t":1,"method":"POST"');
    writeFileSync(badFile, `${lines.join('\n')}\n`);
    await expect(readRecording(badFile)).rejects.toThrow(RecordingFormatError);
    await expect(readRecording(badFile)).rejects.toThrow(/^line 5001: not JSON/);
  });
});
