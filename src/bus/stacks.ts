/**
 * Stacks that name the caller's line: a call's rejection points at the line that issued it, not
 * at the bus's internals (nats.js captures the stack when a request is issued; so do we, on
 * request, and otherwise lean on V8's async stack traces).
 *
 * @module
 */
import type { BusError } from '../errors.js';

/**
 * Gives a rejection the stack of the line that issued the call. Without `site`, at no cost on
 * the happy path: called in the `catch` of an async method after its `await`, the captured stack
 * ends with V8's `at async <caller>` frames (zero-cost async stack traces), which name the
 * caller's line when it awaits the call. With `site` (`callSiteStacks: true`), the frames
 * captured when the call was issued, whether or not the caller awaits.
 */
export function atCaller(error: BusError, site: Error | undefined): BusError {
  let frames: string;
  if (site?.stack !== undefined) {
    frames = site.stack.slice(site.stack.indexOf('\n'));
  } else {
    Error.captureStackTrace(error, atCaller);
    const stack = error.stack ?? '';
    frames = stack.slice(stack.indexOf('\n'));
  }
  error.stack = `${error.name} [${error.code}]: ${error.message}${frames}`;
  return error;
}

/** Captures the stack at the call (frames above `fn` left out); formatted only if read. */
// biome-ignore lint/complexity/noBannedTypes: captureStackTrace takes any function
export function callSite(fn: Function): Error {
  const site = { name: 'BusError', message: '' } as Error;
  Error.captureStackTrace(site, fn);
  return site;
}
