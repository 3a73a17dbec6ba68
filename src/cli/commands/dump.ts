/**
 * `activestore dump <file|url|refs.json> <variable> [--select ...] -o out.npy`: one variable, read
 * through references with zarrita, written as a NumPy .npy file.
 */
import { writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import type { Command } from "commander";
import * as zarr from "zarrita";
import { registerCodecs } from "../../codecs/registry.js";
import { buildReferences } from "../../refs/build.js";
import { readVariable, type Selection } from "../../refs/dump.js";
import { encodeNpy } from "../../refs/npy.js";
import { ReferenceStore } from "../../refs/reference-store.js";
import { CliError, EXIT_USAGE } from "../errors.js";
import type { GlobalOptions } from "../stores.js";
import { cliResolver, isLocal, openSource } from "./remote.js";

interface DumpOptions extends GlobalOptions {
  select?: string;
  output: string;
}

/** NumPy-style basic indexing text ("0:10,:,5", "::2", "-1") as a zarrita selection. */
export function parseSelection(text: string): Selection {
  const integer = (s: string, what: string): number | null => {
    if (s.trim() === "") return null;
    const n = Number(s);
    if (!Number.isInteger(n)) throw new CliError(`--select: ${what} "${s}" is not an integer`, EXIT_USAGE);
    return n;
  };
  return text.split(",").map((part) => {
    const p = part.trim();
    if (!p.includes(":")) {
      const n = integer(p, "index");
      if (n === null) throw new CliError(`--select: empty index in "${text}" (use ":" for a whole dimension)`, EXIT_USAGE);
      return n;
    }
    const bits = p.split(":");
    if (bits.length > 3) throw new CliError(`--select: "${p}" has too many colons`, EXIT_USAGE);
    const [start, stop, step] = [integer(bits[0], "start"), integer(bits[1], "stop"), integer(bits[2] ?? "", "step")];
    if (step !== null && step <= 0) throw new CliError(`--select: step must be positive in "${p}"`, EXIT_USAGE);
    if (start === null && stop === null && step === null) return null;
    return zarr.slice(start, stop, step);
  });
}

/** Checks integer indices against the shape and makes negative ones count from the end, as NumPy does. */
function normalise(selection: Selection, shape: number[], variable: string): Selection {
  if (selection.length > shape.length) {
    throw new CliError(`--select has ${selection.length} entries but ${variable} has ${shape.length} dimensions`, EXIT_USAGE);
  }
  return selection.map((s, i) => {
    if (typeof s !== "number") return s;
    const n = s < 0 ? s + shape[i] : s;
    if (n < 0 || n >= shape[i]) {
      throw new CliError(`--select: index ${s} is out of bounds for dimension ${i} of size ${shape[i]}`, EXIT_USAGE);
    }
    return n;
  });
}

export function register(program: Command): void {
  program
    .command("dump")
    .description("read one variable (optionally a selection) and write it as a NumPy .npy file")
    .argument("<source>", "HDF5/netCDF-4 file (path or URL) or a kerchunk references .json")
    .argument("<variable>", 'variable path, e.g. "tas" or "forecast/t2m"')
    .option("--select <slices>", 'NumPy-style selection, e.g. "0:10,:,5"')
    .requiredOption("-o, --output <file>", "the .npy file to write")
    .action(async (source: string, variable: string, _opts: DumpOptions, command: Command) => {
      const options = command.optsWithGlobals<DumpOptions>();
      registerCodecs();
      const selection = options.select !== undefined ? parseSelection(options.select) : [];
      const isJson = source.toLowerCase().endsWith(".json");
      const { resolver, close } = cliResolver(options, isJson && isLocal(source) ? dirname(resolve(source)) : undefined);
      try {
        let store: ReferenceStore;
        if (isJson) {
          if (!isLocal(source)) throw new CliError("reference .json files are read from local paths for now");
          store = await ReferenceStore.fromFile(source, { resolver });
        } else {
          const opened = await openSource(source, options);
          try {
            store = new ReferenceStore(await buildReferences(opened.source, { url: source }), { resolver });
          } finally {
            await opened.close();
          }
        }
        const path = variable.replace(/^\/+/, "");
        const zarray = store.references.refs[`${path}/.zarray`];
        if (zarray === undefined) throw new CliError(`no variable "${variable}" in ${source}`);
        const dtype = typeof zarray === "string" ? (JSON.parse(zarray) as { dtype?: string }).dtype : undefined;
        if (dtype?.endsWith("f2") && !("Float16Array" in globalThis)) {
          throw new CliError(`"${variable}" is float16, which zarrita reads only where Float16Array exists (Node ≥ 22)`);
        }
        const arr = await zarr.open(zarr.root(store).resolve(path), { kind: "array" });
        const npy = await readVariable(store, path, normalise(selection, arr.shape, variable));
        await writeFile(options.output, encodeNpy(npy));
      } finally {
        await close();
      }
    });
}
