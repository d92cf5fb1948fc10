// What a simulation run produces, shared by the replayer (which fills it), the verdict (which
// checks it) and the reports (which show it). Times are milliseconds since the run started.

/** The route a request hit, with ids replaced: `POST /v1/orders/{orderId}/cancel`. */
export type RouteName = string;

/** One request the run sent and the answer it got. */
export interface RequestResult {
  /** Line number in the traffic (recording or generated). */
  line: number;
  route: RouteName;
  /** When it was sent and when its answer arrived (ms since the run started). */
  sent_ms: number;
  answered_ms: number;
  /** HTTP status; 0 when no answer came (connection error, timeout). */
  status: number;
  /** The contract's `error` code of a non-2xx answer, or `no_answer`. */
  error?: string;
}

/** The stock of one SKU/date, sampled from the ops route during the run. */
export interface StockSample {
  t_ms: number;
  total: number;
  reserved: number;
  sold: number;
  available: number;
}

export interface StockSeries {
  skuId: string;
  date: string;
  samples: StockSample[];
}

/** One invariant the verdict checked. */
export interface CheckResult {
  name: string;
  passed: boolean;
  /** One sentence: what was checked, over how much. */
  detail: string;
  /** The first violations found (bounded), each one readable line. */
  violations: string[];
}

export interface Verdict {
  passed: boolean;
  checks: CheckResult[];
}

/** Everything a report needs. */
export interface RunRecord {
  /** `replay <file>` or `flash-sale seed=…`. */
  title: string;
  /** Where the engine was: `in-process (embedded SQLite)` or a URL. */
  target: string;
  started_at: string;
  /** Lines in the traffic, and those skipped (a reference to an order line that got no order). */
  lines: number;
  skipped: number;
  results: RequestResult[];
  stock: StockSeries[];
  verdict?: Verdict;
  /** Options of the run (speed, seed, shape, ...), shown as given. */
  options: Record<string, string | number | boolean>;
}
