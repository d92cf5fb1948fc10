// How deep a JSON text nests, checked before it is parsed. No body of the contract nests more than a
// few levels; a merchant's delivery payload may nest more, but not without bound. A value nested
// thousands deep parses, yet every recursive walk of it afterwards (JSON.stringify when it is
// journaled, the idempotency hash) runs out of stack — in a journal write shared by many actors that
// failed everybody's write (docs/architecture.md, "Decisions where the contract is silent").

import { invalidRequest } from './api-error.ts';

/** Arrays and objects nested in a request body at most. */
export const JSON_DEPTH_MAX = 64;

/** True when `text` opens more than `max` arrays or objects inside one another (strings are skipped). */
export function nestedDeeperThan(text: string, max = JSON_DEPTH_MAX): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // a backslash escapes the next character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}

/** 400 invalid_request (HTTP and NATS alike) for a body nested deeper than JSON_DEPTH_MAX. */
export function refuseDeepJson(text: string): void {
  if (nestedDeeperThan(text)) {
    throw invalidRequest(`JSON nested more than ${JSON_DEPTH_MAX} levels deep`, [{ path: [], message: `arrays and objects nest at most ${JSON_DEPTH_MAX} levels deep` }]);
  }
}
