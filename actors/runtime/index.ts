// Why: the one entry point to the actor runtime; nothing outside actors/runtime/ imports nact or the
// runtime's internal files.

export { ActorRuntime, ActorKind } from './actor-runtime.ts';
export type { RuntimeOptions, RuntimeStats, Envelope, ReplyHandle, ActorContext, Behavior, KindOptions } from './actor-runtime.ts';
export { OverloadedError, AskTimeoutError, ActorCrashedError, ShuttingDownError } from './errors.ts';
