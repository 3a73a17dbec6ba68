/**
 * Every failure ends the process the same way: one line `activestore: <message>` on stderr and a
 * non-zero exit code. Stacks are noise for users of a CLI, so they appear only with `--debug`.
 */
import { ActivestoreError } from "../errors.js";

export const EXIT_FAILURE = 1;
/** Usage errors (unknown option, missing argument), as most Unix tools do. */
export const EXIT_USAGE = 2;

/** A failure the CLI itself detects (bad argument, missing object) and reports without a stack. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = EXIT_FAILURE,
  ) {
    super(message);
    this.name = "CliError";
  }
}

/** The message of an error, folded to one line; causes are appended when they add information. */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  let message = error.message || error.name;
  // Library errors already say what and where; for foreign errors the cause is often the useful part.
  const cause = (error as { cause?: unknown }).cause;
  if (!(error instanceof ActivestoreError) && !(error instanceof CliError) && cause instanceof Error) {
    if (cause.message && !message.includes(cause.message)) message += `: ${cause.message}`;
  }
  return message.replace(/\s*\n\s*/g, " ").trim();
}

/** Report `error` and exit. With `debug`, the stack (and causes) follow the one-line message. */
export function fail(error: unknown, debug: boolean): never {
  process.stderr.write(`activestore: ${describeError(error)}\n`);
  if (debug && error instanceof Error) {
    let e: unknown = error;
    while (e instanceof Error) {
      process.stderr.write(`${e.stack ?? e.message}\n`);
      e = (e as { cause?: unknown }).cause;
      if (e !== undefined) process.stderr.write("caused by: ");
    }
    if (e !== undefined && !(e instanceof Error)) process.stderr.write(`${String(e)}\n`);
  }
  process.exit(error instanceof CliError ? error.exitCode : EXIT_FAILURE);
}

/** A closed stdout (`activestore cat big | head`) is the reader's choice, not a failure. */
export function isBrokenPipe(error: unknown): boolean {
  return (error as { code?: unknown } | undefined)?.code === "EPIPE";
}
