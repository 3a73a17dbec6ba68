/** `activestore cat <url> [--range start-end]`: an object's bytes (or a byte range) to stdout. */
import type { Command } from "commander";
import type { RangeQuery, Store } from "../../stores/types.js";
import { CliError, EXIT_USAGE } from "../errors.js";
import { closeStore, openObject, type GlobalOptions } from "../stores.js";

interface CatOptions extends GlobalOptions {
  range?: string;
}

/**
 * HTTP Range syntax without the `bytes=`: `start-end` (inclusive), `start-` (to the end), `-n`
 * (the last n bytes).
 */
export function parseRange(text: string): { offset: number; end?: number } | { suffixLength: number } {
  const match = /^(\d*)-(\d*)$/.exec(text.trim());
  if (!match || (match[1] === "" && match[2] === "")) {
    throw new CliError(`invalid --range "${text}": expected start-end, start- or -length`, EXIT_USAGE);
  }
  const [, start, end] = match;
  if (start === "") return { suffixLength: Number(end) };
  const offset = Number(start);
  if (end === "") return { offset };
  if (Number(end) < offset) throw new CliError(`invalid --range "${text}": end is before start`, EXIT_USAGE);
  return { offset, end: Number(end) };
}

async function read(store: Store, key: string, range: string | undefined): Promise<Uint8Array | undefined> {
  if (range === undefined) return store.get(key);
  const parsed = parseRange(range);
  let query: RangeQuery;
  if ("suffixLength" in parsed) {
    query = parsed;
  } else if (parsed.end !== undefined) {
    query = { offset: parsed.offset, length: parsed.end - parsed.offset + 1 };
  } else {
    // "start-": the store API wants a length, so ask for the size first.
    const info = await store.head(key);
    if (!info) return undefined;
    query = { offset: parsed.offset, length: Math.max(0, info.size - parsed.offset) };
  }
  return store.getRange(key, query);
}

/** Resolves when the bytes have been handed to the OS, so exiting afterwards loses nothing. */
export function writeOut(bytes: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(bytes, (error) => (error ? reject(error) : resolve()));
  });
}

export function register(program: Command): void {
  program
    .command("cat")
    .description("write an object (or a byte range of it) to stdout")
    .argument("<url>", "object URL or local path")
    .option("--range <start-end>", "bytes to read, inclusive: 0-99, 100- or -100 (the last 100)")
    .action(async (url: string, _opts: CatOptions, command: Command) => {
      const options = command.optsWithGlobals<CatOptions>();
      if (options.range !== undefined) parseRange(options.range); // refuse bad syntax before any request
      const { store, key } = await openObject(url, options);
      try {
        const bytes = await read(store, key, options.range);
        if (bytes === undefined) throw new CliError(`no such object: ${url}`);
        await writeOut(bytes);
      } finally {
        await closeStore(store);
      }
    });
}
