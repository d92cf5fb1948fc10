// Recorded traffic: the contract's JSON Lines format (read by the replayer, written by the
// generator and the recorder) and the recorder a node runs with `STAMPEDE_RECORD=<file>`.
export * from './format.ts';
export { Recorder, RECORDER_DEFAULTS, type RecorderCredentials, type RecorderDropReason, type RecorderLimits, type RecorderObserver, type RecorderTotals, type SkipReason } from './recorder.ts';
export { routeOf, isRoute, type MatchedRoute } from './api-routes.ts';
export { LineWriter, LINE_WRITER_DEFAULTS, type DropReason, type LineWriterLimits, type LineWriterObserver } from './line-writer.ts';
