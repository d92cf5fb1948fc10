// Errors are logged short: a driver error can carry the whole SQL statement with its parameters
// (a journal write is megabytes of events), and nothing secret or bulky belongs in a log line.

const MESSAGE_CHARS_MAX = 300;

export interface LoggedError {
  type: string;
  message: string;
  code?: string;
  cause?: LoggedError;
}

export function serializeError(error: unknown, depth = 0): LoggedError {
  if (!(error instanceof Error)) return { type: typeof error, message: String(error).slice(0, MESSAGE_CHARS_MAX) };
  const out: LoggedError = { type: error.name, message: error.message.slice(0, MESSAGE_CHARS_MAX) };
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') out.code = code;
  if (error.cause !== undefined && depth < 3) out.cause = serializeError(error.cause, depth + 1);
  return out;
}
