// What Node's HTTP parser refuses before koa sees a request (headers too large, a malformed request,
// a request that did not arrive within the server's timeouts) is answered with the contract's error
// body (API.md "Errors": every non-2xx answer is {"error", "message"}), not Node's bare status line.
import type { Duplex } from 'node:stream';

/** Node's 'clientError': a 400 with the contract's body (API.md "Errors"), and the connection is destroyed. */
export function answerClientError(error: Error & { code?: string }, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const message =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? 'request headers too large'
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? 'the request did not arrive in time'
        : 'malformed HTTP request';
  const body = JSON.stringify({ error: 'invalid_request', message, details: [{ path: [], message }] });
  // Not over a response already under way on this socket (a request whose body trickled in past the
  // request timeout after its answer started): that would corrupt it.
  const answering = (socket as Duplex & { _httpMessage?: { _headerSent?: boolean } })._httpMessage?._headerSent === true;
  if (!answering) socket.write(`HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  // Closed at once, as Node's own handler does. Only ended (an HTTP server's sockets allow half-open
  // connections), the socket stayed for as long as the client kept its side: a silent client held it
  // (and its file descriptor) for ever, past the timeouts meant to reap it, and a body still arriving
  // was parsed into a request that changed something after its 400.
  socket.destroy();
}

