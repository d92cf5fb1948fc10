// The contract's recorded-traffic format (../shared/API.md, "Recorded traffic"): JSON Lines, one
// request a line, in time order. The recorder writes it, the flash-sale generator writes it, the
// replayer reads it. Lines are numbered from 0 in file order; `orderRef` is the number of the
// earlier `POST /v1/orders` line whose answer carries the order.
//
// Extensions (optional fields, ignored by a reader that does not know them):
// - payment bodies may carry `paymentId`: callbacks of one payment repeat it (duplicates). Without
//   it the replayer makes `pay-<line>`, so every line is a payment of its own.
// - `outcome`: the answer the recording server gave (`{status, error?}`), so a replay can be
//   compared with the original.
// - `rawBody`: a request body that was not valid JSON, as text, sent verbatim (instead of `body`,
//   never with it), so a replay gets the same 400.
// - `badSignature: true` (payment callbacks only): the callback was answered 401; the replayer sends a
//   well-formed but wrong signature, so the replay is refused the same way. A plain line to the
//   callback path (a malformed callback, kept as received) without it is signed over its exact bytes.
//
// Paths are kept as they were sent: which route a line goes to is the engine router's decision
// (api-routes.ts), so `POST /V1/Orders/` is an order line as much as `POST /v1/orders`.
import { createReadStream } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { z } from 'zod';
import { isRoute, ORDERS_ROUTE, PAYMENT_ROUTE } from './api-routes.ts';

/** Where payment callbacks go. */
export const PAYMENT_CALLBACK_PATH = PAYMENT_ROUTE;

/** `{orderId}` in a path stands for the order of the line named by `orderRef`. */
export const ORDER_ID_PLACEHOLDER = '{orderId}';

const outcome = z.object({ status: z.number().int().min(100).max(599), error: z.string().optional() });
export type RecordedOutcome = z.infer<typeof outcome>;

const paymentBody = z.object({
  orderRef: z.number().int().min(0),
  status: z.enum(['succeeded', 'failed']),
  amountCents: z.number().int().min(0).optional(),
  paymentId: z.string().min(1).max(64).optional(),
});
export type RecordedPaymentBody = z.infer<typeof paymentBody>;

export const recordedLine = z
  .object({
    t: z.number().min(0),
    method: z.enum(['GET', 'POST', 'PUT', 'DELETE']),
    path: z.string().startsWith('/').max(2_048),
    user: z.string().min(1).max(64).optional(),
    admin: z.literal(true).optional(),
    payment: z.literal(true).optional(),
    idempotencyKey: z.string().min(1).max(64).optional(),
    orderRef: z.number().int().min(0).optional(),
    body: z.unknown().optional(),
    outcome: outcome.optional(),
    rawBody: z.string().optional(),
    badSignature: z.literal(true).optional(),
  })
  .superRefine((line, ctx) => {
    if (line.payment) {
      if (!paymentBody.safeParse(line.body).success) {
        ctx.addIssue({ code: 'custom', message: 'a payment line needs body {orderRef, status, amountCents?}', path: ['body'] });
      }
      // The replayer signs the body and sends it where the line says: anywhere else (a hand-edited
      // `/v1/payment/callback`) it would get a 404, and the verdict would blame the engine for not
      // honouring a callback it never received.
      if (!isPaymentPath(line)) {
        ctx.addIssue({ code: 'custom', message: `a payment line goes to POST ${PAYMENT_CALLBACK_PATH}, not ${line.method} ${line.path}`, path: ['path'] });
      }
    }
    if (line.badSignature && !line.payment && !isPaymentPath(line)) {
      ctx.addIssue({ code: 'custom', message: 'badSignature is for payment callbacks only', path: ['badSignature'] });
    }
    if (line.rawBody !== undefined && (line.body !== undefined || line.payment)) {
      ctx.addIssue({ code: 'custom', message: 'rawBody stands instead of body, and not on a payment line', path: ['rawBody'] });
    }
    if (line.path.includes(ORDER_ID_PLACEHOLDER) && line.orderRef === undefined) {
      ctx.addIssue({ code: 'custom', message: `a path with ${ORDER_ID_PLACEHOLDER} needs orderRef`, path: ['orderRef'] });
    }
    if ([line.user !== undefined, line.admin === true, line.payment === true].filter(Boolean).length > 1) {
      ctx.addIssue({ code: 'custom', message: 'a line is a buyer, admin or payment request, not several' });
    }
  });

export type RecordedLine = z.infer<typeof recordedLine>;

/** The line is the payment callback for an order (its body's orderRef). */
export function paymentOf(line: RecordedLine): RecordedPaymentBody | undefined {
  return line.payment ? paymentBody.parse(line.body) : undefined;
}

/** The payment id a payment line is sent with: its own, else `pay-<line>` (every such line a payment of its own). */
export function paymentIdOf(p: RecordedPaymentBody, line: number): string {
  return p.paymentId ?? `pay-${line}`;
}

/** The line number of the order this line acts on, if any. */
export function orderRefOf(line: RecordedLine): number | undefined {
  return line.payment ? paymentOf(line)!.orderRef : line.orderRef;
}

/** A line that makes an order (any path the engine routes to `POST /v1/orders`): its answer's orderId is what later lines refer to. */
export function isOrderLine(line: Pick<RecordedLine, 'method' | 'path'>): boolean {
  return line.method === 'POST' && isRoute('POST', line.path, ORDERS_ROUTE);
}

/** A line sent to the payment callback route (a payment line, or a malformed callback kept as received). */
export function isPaymentPath(line: Pick<RecordedLine, 'method' | 'path'>): boolean {
  return line.method === 'POST' && isRoute('POST', line.path, PAYMENT_ROUTE);
}

export class RecordingFormatError extends Error {
  constructor(
    readonly lineNumber: number,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`line ${lineNumber + 1}: ${message}`, options);
    this.name = 'RecordingFormatError';
  }
}

/** A recording as read: its lines, and the last line left out when a crash cut it short. */
export interface ParsedRecording {
  lines: RecordedLine[];
  /**
   * The file's last line, left out: it is not JSON and no newline ends the file, which is what a
   * crash in the middle of a write leaves (docs/simulation-recording.md). Its number counts from 0
   * like every line's; `chars` is how much of it there was.
   */
  cut?: { line: number; chars: number };
}

/**
 * Parses a recording line by line. Throws RecordingFormatError naming the first bad line: a line that
 * is not JSON or not the format, a time that goes backwards, or a reference to a line that is not an
 * earlier order line. The one exception is a last line cut short by a crash (not JSON, and no
 * newline after it): it is left out and said so in `cut`. A cut line anywhere else, or followed by a
 * newline, is not what a crash leaves, and is refused like any bad line.
 */
class RecordingParser {
  readonly lines: RecordedLine[] = [];
  private lastT = 0;
  cut: { line: number; chars: number } | undefined;

  /** One line of the file, without its newline; `unterminated`: the file's last line, with no newline after it. */
  add(raw: string, unterminated: boolean): void {
    const source = raw.trim();
    if (source === '') return;
    const n = this.lines.length;
    let json: unknown;
    try {
      json = JSON.parse(source);
    } catch (error) {
      if (unterminated) {
        this.cut = { line: n, chars: raw.length };
        return;
      }
      throw new RecordingFormatError(n, 'not JSON', { cause: error });
    }
    const parsed = recordedLine.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new RecordingFormatError(n, `${issue.path.join('.') || 'line'}: ${issue.message}`);
    }
    const line = parsed.data;
    if (line.t < this.lastT) throw new RecordingFormatError(n, `t ${line.t} is before the line above (${this.lastT})`);
    this.lastT = line.t;
    const ref = orderRefOf(line);
    if (ref !== undefined && (ref >= n || !isOrderLine(this.lines[ref]!))) {
      throw new RecordingFormatError(n, `orderRef ${ref} is not an earlier POST /v1/orders line`);
    }
    this.lines.push(line);
  }

  result(): ParsedRecording {
    return this.cut ? { lines: this.lines, cut: this.cut } : { lines: this.lines };
  }
}

/** Parses a recording held in memory (see RecordingParser). */
export function parseRecordingText(text: string): ParsedRecording {
  const parser = new RecordingParser();
  const raw = text.split('\n');
  // Without a final newline the last element is the file's last line, possibly cut; with one it is ''.
  for (let i = 0; i < raw.length; i++) parser.add(raw[i]!, i === raw.length - 1);
  return parser.result();
}

/** The lines of a recording (parseRecordingText, without saying whether a cut last line was left out). */
export function parseRecording(text: string): RecordedLine[] {
  return parseRecordingText(text).lines;
}

/**
 * Parses a recording file as it is read, a chunk at a time (see RecordingParser): never the whole
 * file as one string, which Node cannot hold past ~512 MiB (the recorder writes up to 4 GiB).
 */
export async function readRecording(file: string): Promise<ParsedRecording> {
  const parser = new RecordingParser();
  const decoder = new StringDecoder('utf8');
  let rest = '';
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
    const text = rest + decoder.write(chunk as Buffer);
    let from = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', from)) {
      parser.add(text.slice(from, nl), false);
      from = nl + 1;
    }
    rest = text.slice(from);
  }
  parser.add(rest + decoder.end(), true);
  return parser.result();
}

/** One line of JSON Lines, fields in the contract's order, then the extensions. */
export function formatLine(line: RecordedLine): string {
  const out: Record<string, unknown> = { t: line.t, method: line.method, path: line.path };
  if (line.user !== undefined) out.user = line.user;
  if (line.admin) out.admin = true;
  if (line.payment) out.payment = true;
  if (line.idempotencyKey !== undefined) out.idempotencyKey = line.idempotencyKey;
  if (line.orderRef !== undefined) out.orderRef = line.orderRef;
  if (line.body !== undefined) out.body = line.body;
  if (line.outcome !== undefined) out.outcome = line.outcome;
  if (line.rawBody !== undefined) out.rawBody = line.rawBody;
  if (line.badSignature) out.badSignature = true;
  return `${JSON.stringify(out)}\n`;
}
