/**
 * `activestore reduce <source> <variable> --op mean [--select "0:2,4:6"] [--axis 0,2] [--json]`:
 * an active reduction, printed for people or as JSON (value, count, shape, dtype) for programs.
 */
import { InvalidArgumentError, Option, type Command } from "commander";
import { Active } from "../../active/active.js";
import type { ReductionResult, Statistic } from "../../active/result.js";
import { parseSelection } from "../../active/selection.js";
import { writeOut } from "./cat.js";
import { storeOptions, type GlobalOptions } from "../stores.js";

const OPS: Statistic[] = ["mean", "min", "max", "sum", "count", "std", "variance"];
const ALIASES: Record<string, Statistic> = { var: "variance" };

interface ReduceOptions extends GlobalOptions {
  op: Statistic;
  select?: string;
  axis?: number[];
  json?: boolean;
  raw?: boolean;
  skipNan?: boolean;
  server?: string;
  serverUser?: string;
}

function parseAxes(text: string): number[] {
  return text.split(",").map((part) => {
    const n = Number(part.trim());
    if (!Number.isInteger(n)) throw new InvalidArgumentError(`"${part}" is not an integer axis`);
    return n;
  });
}

function parseOp(text: string): Statistic {
  const op = ALIASES[text] ?? text;
  if (!(OPS as string[]).includes(op)) throw new InvalidArgumentError(`expected one of ${OPS.join(", ")}, var`);
  return op as Statistic;
}

/** JSON with bigints as strings (exact int64 sums) and non-finite numbers as kerchunk spells them. */
export function resultJson(result: ReductionResult): string {
  const { components: _, ...rest } = result;
  return JSON.stringify(rest, (_key, v: unknown) => {
    if (typeof v === "bigint") return v.toString();
    if (typeof v === "number" && !Number.isFinite(v)) return Number.isNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity";
    return v;
  });
}

function describe(result: ReductionResult): string {
  const show = (v: unknown) => (v === null ? "missing" : String(v));
  const value = Array.isArray(result.value)
    ? `[${result.value.slice(0, 8).map(show).join(", ")}${result.value.length > 8 ? ", …" : ""}] shape [${result.shape}]`
    : show(result.value);
  const count = Array.isArray(result.count) ? result.count.reduce((a, b) => a + b, 0) : result.count;
  return (
    `${result.op} = ${value} (${result.dtype}, ${count} valid values)\n` +
    (result.bytesReduced !== undefined
      ? `${result.chunks} chunks, ${result.bytesRead} bytes received from the server for ${result.bytesReduced} bytes reduced\n`
      : `${result.chunks} chunks, ${result.bytesRead} bytes read\n`)
  );
}

export function register(program: Command): void {
  program
    .command("reduce <source> <variable>")
    .description("active reduction of a variable of an HDF5/netCDF4 file, kerchunk references or zarr array")
    .addOption(new Option("--op <statistic>", "mean, min, max, sum, count, std, var").argParser(parseOp).default("mean"))
    .option("--select <selection>", 'numpy-style selection, e.g. "0:2,4:6,::-1,5"')
    .addOption(new Option("--axis <axes>", "comma-separated axes to reduce over (default all)").argParser(parseAxes))
    .option("--json", "print the result as JSON")
    .option("--raw", "reduce stored (packed) values, ignoring scale_factor/add_offset")
    .option("--skip-nan", "leave NaNs out instead of propagating them")
    .option("--server <urls>", "push the work to active-storage servers (comma-separated, used round-robin)")
    .option("--server-user <user:password>", "HTTP Basic credentials the server forwards upstream (S3 key:secret)")
    .action(async (source: string, variable: string, _opts: unknown, command: Command) => {
      const opts = command.optsWithGlobals<ReduceOptions>();
      const [username, ...password] = (opts.serverUser ?? "").split(":");
      const active = await Active.open(source, variable, {
        raw: opts.raw,
        skipNaN: opts.skipNan,
        ...(opts.server && { server: opts.server.split(",").map((s) => s.trim()) }),
        ...(opts.serverUser && { serverCredentials: { username, password: password.join(":") } }),
        store: storeOptions(opts),
      });
      const result = await active.reduce(opts.op, opts.select ? parseSelection(opts.select) : null, {
        axis: opts.axis,
      });
      await writeOut(new TextEncoder().encode(opts.json ? `${resultJson(result)}\n` : describe(result)));
    });
}
