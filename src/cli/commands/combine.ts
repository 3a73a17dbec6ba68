/**
 * `activestore combine a.json b.json … -o all.json --concat-dim time`: one reference set from many,
 * concatenated along a dimension, or several (`--concat-dim member,time`; see src/refs/combine.ts).
 * Inputs are reference JSON files, or HDF5/netCDF-4 files whose references are built on the way.
 */
import { InvalidArgumentError, type Command } from "commander";
import { buildReferences } from "../../refs/build.js";
import { combineReferencesWithNotes, type CombineInput, type CoordSource } from "../../refs/combine.js";
import { parseReferences } from "../../refs/reference-store.js";
import { referencesJson, writeReferences } from "../../refs/write.js";
import { CliError } from "../errors.js";
import { closeStore, openObject, type GlobalOptions } from "../stores.js";
import { cliResolver, openSource } from "./remote.js";

interface CombineOptions extends GlobalOptions {
  output?: string;
  concatDim: string[];
  identicalDims?: string[];
  coordPattern?: string;
  coordAttribute?: string;
  coords?: number[] | string[];
  format: "json" | "parquet";
  recordSize?: number;
}

function list(value: string): string[] {
  return value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Numbers when every value reads as one, else the values as text (member names, say). */
function coordValues(value: string): number[] | string[] {
  const text = list(value);
  const numbers = text.map(Number);
  return numbers.every((n) => Number.isFinite(n)) ? numbers : text;
}

function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("expected a positive integer");
  return n;
}

function format(value: string): "json" | "parquet" {
  if (value !== "json" && value !== "parquet") throw new InvalidArgumentError('expected "json" or "parquet"');
  return value;
}

const HDF5_MAGIC = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

/** A reference JSON file as is; anything else is taken for an HDF5/netCDF-4 file and its references built. */
async function loadInput(url: string, options: GlobalOptions): Promise<CombineInput> {
  if (!/\.json$/i.test(url)) {
    const { store, key } = await openObject(url, options);
    let head: Uint8Array | undefined;
    try {
      head = await store.getRange(key, { offset: 0, length: 8 });
    } finally {
      await closeStore(store);
    }
    if (head && HDF5_MAGIC.every((b, i) => head[i] === b)) {
      const { source, close } = await openSource(url, options);
      try {
        return { refs: await buildReferences(source, { url }), url };
      } finally {
        await close();
      }
    }
  }
  const { store, key } = await openObject(url, options);
  try {
    const bytes = await store.get(key);
    if (bytes === undefined) throw new CliError(`${url}: no such file or object`);
    return { refs: parseReferences(new TextDecoder().decode(bytes)), url };
  } finally {
    await closeStore(store);
  }
}

function coordSource(options: CombineOptions): CoordSource | undefined {
  const given = [options.coordPattern, options.coordAttribute, options.coords].filter((v) => v !== undefined);
  if (given.length > 1) throw new CliError("give at most one of --coord-pattern, --coord-attribute and --coords");
  if (options.coordPattern !== undefined) {
    let pattern: RegExp;
    try {
      pattern = new RegExp(options.coordPattern);
    } catch (e) {
      throw new CliError(`--coord-pattern: ${(e as Error).message}`);
    }
    return { pattern, from: "url" };
  }
  if (options.coordAttribute !== undefined) return { attribute: options.coordAttribute };
  return options.coords;
}

export function register(program: Command): void {
  program
    .command("combine")
    .description("combine reference sets (or HDF5/netCDF-4 files) along a dimension into one reference set")
    .argument("<inputs...>", "reference JSON files or HDF5/netCDF-4 files (paths or store URLs)")
    .option("-o, --output <url>", "write here (a file for json, a directory for parquet) instead of stdout")
    .requiredOption(
      "--concat-dim <names>",
      "dimension(s) to concatenate along (existing, or new), outermost first, comma-separated; the --coord-* options describe the first",
      list,
    )
    .option("--identical-dims <names>", "arrays to take once, checked identical (comma-separated)", list)
    .option("--coord-pattern <regex>", "values of a new dimension: first capture group of this regex on each input's url")
    .option("--coord-attribute <name>", "values of a new dimension: this root attribute of each input")
    .option("--coords <values>", "values of the dimension, comma-separated numbers or names (one per input)", coordValues)
    .option("--format <format>", "json or parquet", format, "json")
    .option("--record-size <n>", "parquet: references per file (default 100000)", positiveInteger)
    .action(async (inputs: string[], _opts: CombineOptions, command: Command) => {
      const options = command.optsWithGlobals<CombineOptions>();
      if (options.format === "parquet" && !options.output) throw new CliError("--format parquet needs --output <directory>");
      const loaded: CombineInput[] = [];
      for (const url of inputs) loaded.push(await loadInput(url, options));
      const source = coordSource(options);
      if (options.concatDim.length === 0) throw new CliError("--concat-dim: give a dimension name");
      const { resolver, close } = cliResolver(options);
      try {
        const { references, notes } = await combineReferencesWithNotes(loaded, {
          concatDims: options.concatDim,
          identicalDims: options.identicalDims,
          coords: source === undefined ? undefined : { [options.concatDim[0]]: source },
          resolver,
        });
        for (const note of notes) process.stderr.write(`activestore: note: ${note}\n`);
        if (!options.output) {
          process.stdout.write(referencesJson(references) + "\n");
          return;
        }
        await writeReferences(references, options.output, {
          format: options.format,
          recordSize: options.recordSize,
          ...(options.concurrency !== undefined && { concurrency: options.concurrency }),
          ...(options.retries !== undefined && { retry: { attempts: options.retries } }),
          s3: {
            ...(options.endpoint !== undefined && { endpoint: options.endpoint }),
            ...(options.anonymous && { anonymous: true }),
          },
        });
      } finally {
        await close();
      }
    });
}
