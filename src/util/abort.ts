/**
 * Abort listeners on a caller's signal. One signal often governs a whole batch or reduction, and
 * each request in flight listens to it (its own timeout controller, p-retry, a body read): past 10
 * at once Node prints a MaxListenersExceededWarning about a leak that is not one. The first time we
 * listen to a signal, its limit is raised to cover any concurrency we run (its listeners are all
 * removed when their request ends).
 */
import { getMaxListeners, setMaxListeners } from "node:events";

const LIMIT = 4096;
const raised = new WeakSet<AbortSignal>();

/** Lets `signal` carry one listener per request in flight without Node's leak warning. */
export function allowManyListeners(signal: AbortSignal | undefined): void {
  if (!signal || raised.has(signal)) return;
  raised.add(signal);
  try {
    const current = getMaxListeners(signal);
    if (current !== 0 && current < LIMIT) setMaxListeners(LIMIT, signal);
  } catch {
    // A signal of another realm (a vm context, a test runner's): Node's helpers refuse it, and
    // the worst left is the warning.
  }
}

/** Calls `listener` once when `signal` aborts; the returned function stops listening. */
export function onAbort(signal: AbortSignal | undefined, listener: () => void): () => void {
  if (!signal) return () => undefined;
  allowManyListeners(signal);
  signal.addEventListener("abort", listener, { once: true });
  return () => signal.removeEventListener("abort", listener);
}
