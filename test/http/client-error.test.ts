// Proves what Node's HTTP parser refuses before the app sees it is answered with the contract's error
// body: headers over Node's 16 KiB limit, a malformed request line, and a request with both
// Content-Length and Transfer-Encoding each get 400 {"error":"invalid_request","message"} and the
// connection closes — against a real node on a real port.
import { connect } from 'node:net';
import { PassThrough } from 'node:stream';
import { answerClientError } from '../../http/client-error.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine, type TestEngine } from '../support/engine.ts';

/** Sends raw bytes and reads until the server closes the connection. */
function raw(url: string, request: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(request));
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (answer += chunk));
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
    socket.setTimeout(5_000, () => socket.destroy(new Error('no answer within 5 s')));
  });
}

describe('requests the HTTP parser refuses', () => {
  let e: TestEngine;
  beforeAll(async () => {
    e = await startEngine({ kind: 'sqlite' });
  });
  afterAll(async () => e?.stop());

  it.each([
    ['headers over 16 KiB', `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 'request headers too large'],
    ['a malformed request line', 'HELLO THERE\r\n\r\n', 'malformed HTTP request'],
    ['Content-Length with Transfer-Encoding', 'POST /v1/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'malformed HTTP request'],
  ])('%s: 400 with the contract error body', async (_what, request, message) => {
    const answer = await raw(e.url, request);
    expect(answer.startsWith('HTTP/1.1 400 ')).toBe(true);
    expect(answer).toMatch(/\r\ncontent-type: application\/json\r\n/i);
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toEqual({ error: 'invalid_request', message, details: [{ path: [], message }] });
  });

  it('destroys the connection after its 400 (not only ends it), and writes none over a response under way', () => {
    // A stand-in socket: Node calls the handler with the request's socket; a silent client would keep
    // an ended-only one open for ever (timeouts do not look at a connection twice).
    const socket = (headerSent: boolean) => {
      const seen: string[] = [];
      const s = Object.assign(new PassThrough(), { _httpMessage: headerSent ? { _headerSent: true } : undefined });
      s.write = ((chunk: string) => (seen.push(`write ${chunk.slice(0, 24)}`), true)) as typeof s.write;
      s.end = ((() => (seen.push('end'), s)) as unknown) as typeof s.end;
      s.destroy = ((() => (seen.push('destroy'), s)) as unknown) as typeof s.destroy;
      return { s, seen };
    };
    const timedOut = Object.assign(new Error('request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' });
    const fresh = socket(false);
    answerClientError(timedOut, fresh.s);
    expect(fresh.seen).toEqual(['write HTTP/1.1 400 Bad Request', 'destroy']);
    const answering = socket(true);
    answerClientError(timedOut, answering.s);
    expect(answering.seen).toEqual(['destroy']);
  });
});
