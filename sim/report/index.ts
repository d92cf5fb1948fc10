// The reports of a simulation run: compute the figures once, then show them as a terminal table,
// a JSON file or a self-contained HTML page; a progress line while the run goes.
// `screenshot.ts` (headless Chromium) is deliberately not re-exported: it needs playwright-core, a
// dev dependency, and only the tests and the docs script use it.
export {
  computeFigures,
  FIGURES_FORMAT,
  NO_ANSWER_LABEL,
  outcomeLabel,
  percentile,
  TIMELINE_BUCKETS_MAX,
  toJson,
  type FiguresOptions,
  type LatencySummary,
  type OutcomeFigures,
  type RouteFigures,
  type RunFigures,
  type TimelineBucket,
} from './figures.ts';
export { terminalReport, type TerminalOptions } from './terminal.ts';
export { Progress, type ProgressOptions, type ProgressStream } from './progress.ts';
export {
  CHART_NAMES,
  escapeHtml,
  htmlReport,
  OUTCOME_BARS_MAX,
  STOCK_SAMPLES_DRAWN_MAX,
  STOCK_SERIES_DRAWN_MAX,
  type ChartName,
  type HtmlOptions,
} from './html.ts';
