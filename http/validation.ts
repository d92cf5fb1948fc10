// Request schemas (zod 4) for the contract's bodies, path parameters and headers, and `parse`, which turns
// a zod failure into 400 invalid_request with `details: [{path, message}, ...]`.
// Unknown extra fields in bodies are STRIPPED (zod's default for z.object), not refused: the contract lets
// clients send fields we do not know, and handlers only ever see the declared ones.
import { z } from 'zod';
import {
  DAY_MS,
  RULE_DISTINCT_DIMENSIONS_MAX,
  RULE_GROUP_BY_DIMENSIONS_MAX,
  RULE_LIMIT_MAX,
  RULE_MATCH_ATTRIBUTES_MAX,
  RULE_MATCH_SKU_IDS_MAX,
  RULE_WINDOW_DAYS_MAX,
  type RuleWindow,
} from '../engine/rules.ts';
import { isTimeZone, TIME_ZONE_ATTRIBUTE } from '../engine/order.ts';
import { invalidRequest, type Issue } from './api-error.ts';

export const IDENTIFIER_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;

/** SKU, order, merchant, rule and buyer ids, in paths and bodies. */
export const identifier = z.string().regex(IDENTIFIER_PATTERN, 'must match ^[A-Za-z0-9._:-]{1,64}$');

/** `YYYY-MM-DD` naming a day that exists (proleptic Gregorian, year 0001..9999); scanned by hand (on every order). */
export function isCalendarDate(s: string): boolean {
  if (s.length !== 10 || s.charCodeAt(4) !== DASH || s.charCodeAt(7) !== DASH) return false;
  const y = digits(s, 0, 4);
  const mo = digits(s, 5, 7);
  const d = digits(s, 8, 10);
  if (y < 1 || mo < 1 || mo > 12 || d < 1) return false;
  const leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
  return d <= (mo === 2 ? (leap ? 29 : 28) : DAYS_IN_MONTH[mo - 1]!);
}

const DASH = 0x2d;
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** The decimal number s[from, to) spells, or -1 if any of its characters is not an ASCII digit. */
function digits(s: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i) - 0x30;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n;
}

/** `YYYY-MM-DD` that exists in the calendar (2026-02-30 does not), or `open` for undated goods. */
export const date = z
  .string()
  .refine((s) => s === 'open' || isCalendarDate(s), 'must be a real calendar date YYYY-MM-DD or "open"');

/**
 * An ISO-8601 timestamp with `Z` or an explicit offset (a time without a zone is ambiguous and refused), a real
 * calendar date, optional fractional seconds. Normalised to UTC `toISOString()` form ("...T..:..:..sssZ").
 */
export const isoTimestamp = z.iso
  .datetime({ offset: true, message: 'must be an ISO-8601 timestamp with Z or an offset, e.g. 2026-12-01T10:00:00Z' })
  // `abort`: zod runs the checks after a failed one too, and the next would throw on a date that does
  // not parse (e.g. month 13, which the pattern lets through): a 500 for bad input.
  .refine((s) => Number.isFinite(Date.parse(s)), { message: 'not a valid timestamp', abort: true })
  // In UTC within the years 0000–9999: an offset must not carry it outside, where the UTC form needs
  // an expanded year (+010000-…) that this same check would refuse when it is sent back.
  .refine((s) => /^\d{4}-/.test(new Date(Date.parse(s)).toISOString()), 'must fall within the years 0000–9999 in UTC')
  .transform((s) => new Date(s).toISOString());

const nullableTimestamp = isoTimestamp.nullable().optional();

/** Built-in rule dimensions; an attribute of the same name would be ambiguous in a rule's groupBy. */
const RESERVED_ATTRIBUTE_NAMES = new Set(['skuId', 'date', 'merchantId']);
export const MAX_ATTRIBUTES = 32;

/**
 * A dimension's name (API.md: attributes are `{string: string}`, and a dimension is any attribute
 * name): any text of 1 to 64 characters without control characters, e.g. `venue` or `景区`.
 * `__proto__` is refused: JSON can name a key so, a JavaScript object cannot keep it as data.
 */
const dimensionName = z
  .string()
  .regex(/^[^\p{Cc}]{1,64}$/u, 'names are 1 to 64 characters, none of them a control character')
  .refine((k) => k !== '__proto__', '__proto__ is not a usable name');

const attributeName = dimensionName.refine((k) => !RESERVED_ATTRIBUTE_NAMES.has(k), 'skuId, date and merchantId are reserved dimension names');

/**
 * An object of names (attributes, a rule's `max.distinct`): a `__proto__` key of the JSON is refused
 * (zod's record would drop it without a word, and the request would seem to have been taken whole).
 */
function namedRecord<T extends z.ZodType>(record: T) {
  return z
    .unknown()
    .superRefine((v, ctx) => {
      if (v !== null && typeof v === 'object' && Object.hasOwn(v, '__proto__')) {
        ctx.addIssue({ code: 'custom', path: ['__proto__'], message: '__proto__ is not a usable name' });
      }
    })
    .pipe(record);
}

export const attributes = namedRecord(
  z.record(attributeName, z.string().max(256)).refine((a) => Object.keys(a).length <= MAX_ATTRIBUTES, `at most ${MAX_ATTRIBUTES} attributes`),
);

export const MAX_PRICE_CENTS = 1_000_000_000_000;

/** PUT /v1/skus/{skuId} */
export const skuUpsertBody = z
  .object({
    name: z.string().min(1).max(200).regex(/\S/, 'must not be blank'),
    priceCents: z.number().int().min(0).max(MAX_PRICE_CENTS),
    merchantId: identifier,
    delivery: z.enum(['card_key', 'ticket', 'manual']),
    attributes: attributes.optional(),
    visibleAt: nullableTimestamp,
    saleStartsAt: nullableTimestamp,
    saleEndsAt: nullableTimestamp,
  })
  .superRefine((v, ctx) => {
    if (v.saleStartsAt && v.saleEndsAt && Date.parse(v.saleEndsAt) <= Date.parse(v.saleStartsAt)) {
      ctx.addIssue({ code: 'custom', path: ['saleEndsAt'], message: 'saleEndsAt must be after saleStartsAt' });
    }
    // The venue's time zone ends a ticket's date (no-shows, redeems): a name the runtime does not know
    // would silently fall back to UTC, so it is refused.
    const timeZone = v.attributes?.[TIME_ZONE_ATTRIBUTE];
    if (timeZone !== undefined && !isTimeZone(timeZone)) {
      ctx.addIssue({ code: 'custom', path: ['attributes', TIME_ZONE_ATTRIBUTE], message: 'must be an IANA time zone, e.g. Europe/Paris' });
    }
  });
export type SkuUpsertBody = z.infer<typeof skuUpsertBody>;

export const MAX_STOCK_TOTAL = 1_000_000_000;

/** PUT /v1/skus/{skuId}/stock/{date} */
export const stockBody = z.object({ total: z.number().int().min(0).max(MAX_STOCK_TOTAL) });
export type StockBody = z.infer<typeof stockBody>;

export const MIN_QTY = 1;
export const MAX_QTY = 100;

/** POST /v1/orders */
export const orderBody = z.object({
  skuId: identifier,
  date,
  qty: z.number().int().min(MIN_QTY).max(MAX_QTY),
});
export type OrderBody = z.infer<typeof orderBody>;

/**
 * POST /v1/orders' body, as `parse(orderBody, value)` would return it (unknown fields stripped), checked
 * by hand when it is well formed — the hottest body of a sale — and by the schema otherwise, which
 * then throws the same invalid_request with its details.
 */
export function parseOrderBody(value: unknown): OrderBody {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const { skuId, date, qty } = value as Record<string, unknown>;
    if (
      typeof skuId === 'string' &&
      IDENTIFIER_PATTERN.test(skuId) &&
      typeof date === 'string' &&
      (date === 'open' || isCalendarDate(date)) &&
      typeof qty === 'number' &&
      Number.isInteger(qty) &&
      qty >= MIN_QTY &&
      qty <= MAX_QTY
    ) {
      return { skuId, date, qty };
    }
  }
  return parse(orderBody, value);
}

export const MAX_CARD_KEYS = 10_000;

/**
 * POST /v1/skus/{skuId}/card-keys: 1..10,000 keys of 1..256 characters (the contract's). The route
 * reads bodies up to CARD_KEYS_BODY_LIMIT_BYTES (http/routes/admin.ts), not the general 64 KiB, so
 * that a full upload fits. Keys are secrets: issues never echo them.
 */
export const cardKeysBody = z.object({
  keys: z
    .array(
      z
        .string()
        .min(1)
        .max(256)
        // A lone surrogate (JSON allows "\ud800") becomes U+FFFD when the key is sealed: two such keys
        // would be one, and the buyer would be shown another string than was uploaded.
        .refine((k) => !LONE_SURROGATE.test(k), 'must be well-formed Unicode (no lone surrogate)'),
    )
    .min(1)
    .max(MAX_CARD_KEYS),
});
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
export type CardKeysBody = z.infer<typeof cardKeysBody>;

/** The provider's payment id is not an engine identifier (providers use e.g. `pi_3Mtw...`): 1..128 printable ASCII. */
export const paymentId = z.string().regex(/^[\x21-\x7E]{1,128}$/, 'must be 1..128 printable ASCII characters without spaces');

/** POST /v1/payments/callback */
export const paymentCallbackBody = z.object({
  orderId: identifier,
  paymentId,
  amountCents: z.number().int().min(0),
  status: z.enum(['succeeded', 'failed']),
});
export type PaymentCallbackBody = z.infer<typeof paymentCallbackBody>;

/** Idempotency-Key header: 1..64 printable ASCII characters (space allowed inside). Optional. */
export const idempotencyKey = z
  .string()
  .regex(/^[\x20-\x7E]{1,64}$/, 'must be 1..64 printable ASCII characters')
  .optional();

/** Path parameter sets, for `parse(skuDateParams, ctx.params, ['params'])`. */
export const skuParams = z.object({ skuId: identifier });
export const skuDateParams = z.object({ skuId: identifier, date });
export const orderParams = z.object({ orderId: identifier });
export const ruleParams = z.object({ ruleId: identifier });
export const userParams = z.object({ userId: identifier });

/** Orders one page of GET /ops/orders holds unless `limit` says otherwise, and at most. */
export const PAGE_ORDERS_DEFAULT = 1_000;
export const PAGE_ORDERS_MAX = 5_000;

/**
 * GET /ops/orders?skuId&date[&after][&limit]: `after` an order id (the previous page's `next`; from the
 * start when absent), `limit` plain decimal digits 1..5000 (not `1e3`, ` 7` or `0x10`). A parameter
 * given twice reaches us as an array, which no string schema accepts: refused, not guessed at.
 */
export const orderPageQuery = z.object({
  skuId: identifier,
  date,
  after: identifier.optional(),
  limit: z
    .string()
    .regex(/^[0-9]{1,9}$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(1).max(PAGE_ORDERS_MAX))
    .optional()
    .transform((n) => n ?? PAGE_ORDERS_DEFAULT),
});
export type OrderPageQuery = z.infer<typeof orderPageQuery>;

function toIssues(error: z.ZodError, prefix: (string | number)[]): Issue[] {
  return error.issues.map((i) => ({
    path: [...prefix, ...i.path.map((p) => (typeof p === 'symbol' ? String(p) : p))],
    message: i.message,
  }));
}

/**
 * Validates `value`; on failure throws 400 invalid_request with one detail per issue. `at` prefixes the
 * paths, e.g. ['params'] or ['headers', 'idempotency-key'], so a client can tell body from path problems.
 */
export function parse<S extends z.ZodType>(schema: S, value: unknown, at: (string | number)[] = []): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const where = at.length === 0 ? 'request body' : at.join('.');
  throw invalidRequest(`invalid ${where}`, toIssues(r.error, at));
}

/**
 * Purchase rules (API.md "Purchase rules"), PUT /v1/limit-rules/{ruleId}. Where the contract is silent:
 * - `id` in the body may be absent; when present it must equal the path's ruleId.
 * - A dimension (groupBy, max.distinct) is `skuId`, `date`, `merchantId` or an attribute name
 *   (1..64 characters, no control character); `__proto__` is refused (a JSON object key JavaScript
 *   cannot keep as data).
 * - `match.skuIds` holds 1..1,000 distinct SKU ids; `match.attributes` is shaped like a SKU's attributes.
 * - `groupBy` holds at most 8 distinct dimensions; `max.distinct` 1..8 of them.
 * - `window` is exactly one of `{"rollingDays": 1..3650}` or `{"from", "to"}` (ISO timestamps with a zone,
 *   from < to, at most 3650 days apart; stored normalised to UTC).
 * - `max` names at least one of units, orders, distinct, noShows; each an integer 0..10^9 (0 refuses
 *   every order the rule applies to).
 * Unknown fields are stripped, as everywhere; the answer is the rule as stored.
 */
const ruleDimension = dimensionName;
const ruleLimit = z.number().int().min(0).max(RULE_LIMIT_MAX);

function uniqueItems(items: readonly string[]): boolean {
  return new Set(items).size === items.length;
}

const ruleMatch = z.object({
  skuIds: z.array(identifier).min(1).max(RULE_MATCH_SKU_IDS_MAX).refine(uniqueItems, 'skuIds must be distinct').optional(),
  attributes: namedRecord(
    z.record(attributeName, z.string().max(256)).refine((a) => Object.keys(a).length <= RULE_MATCH_ATTRIBUTES_MAX, `at most ${RULE_MATCH_ATTRIBUTES_MAX} attributes`),
  ).optional(),
});

const ruleWindow = z
  .object({
    rollingDays: z.number().int().min(1).max(RULE_WINDOW_DAYS_MAX).optional(),
    from: isoTimestamp.optional(),
    to: isoTimestamp.optional(),
  })
  .superRefine((w, ctx) => {
    if (w.rollingDays !== undefined) {
      if (w.from !== undefined || w.to !== undefined) {
        ctx.addIssue({ code: 'custom', path: [], message: 'a window is either {"rollingDays"} or {"from", "to"}, not both' });
      }
      return;
    }
    if (w.from === undefined || w.to === undefined) {
      ctx.addIssue({ code: 'custom', path: [], message: 'a window needs "rollingDays", or both "from" and "to"' });
      return;
    }
    const span_ms = Date.parse(w.to) - Date.parse(w.from);
    if (span_ms <= 0) ctx.addIssue({ code: 'custom', path: ['to'], message: 'to must be after from' });
    else if (span_ms > RULE_WINDOW_DAYS_MAX * DAY_MS) {
      ctx.addIssue({ code: 'custom', path: ['to'], message: `a window spans at most ${RULE_WINDOW_DAYS_MAX} days` });
    }
  })
  .transform((w): RuleWindow => (w.rollingDays !== undefined ? { rollingDays: w.rollingDays } : { from: w.from!, to: w.to! }));

const ruleMaxes = z
  .object({
    units: ruleLimit.optional(),
    orders: ruleLimit.optional(),
    distinct: namedRecord(
      z
        .record(ruleDimension, ruleLimit)
        .refine((d) => Object.keys(d).length >= 1 && Object.keys(d).length <= RULE_DISTINCT_DIMENSIONS_MAX, `distinct names 1 to ${RULE_DISTINCT_DIMENSIONS_MAX} dimensions`),
    ).optional(),
    noShows: ruleLimit.optional(),
  })
  .refine((m) => m.units !== undefined || m.orders !== undefined || m.distinct !== undefined || m.noShows !== undefined, 'max needs at least one of units, orders, distinct, noShows');

/** The body of PUT /v1/limit-rules/{ruleId}; the route checks `id` against the path. */
export const ruleBody = z.object({
  id: identifier.optional(),
  match: ruleMatch.optional(),
  groupBy: z
    .array(ruleDimension)
    .max(RULE_GROUP_BY_DIMENSIONS_MAX)
    .refine(uniqueItems, 'groupBy dimensions must be distinct')
    .optional(),
  window: ruleWindow.optional(),
  max: ruleMaxes,
});
export type RuleBody = z.infer<typeof ruleBody>;
