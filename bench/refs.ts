/**
 * Reference-generation benchmark: kerchunk references of 500³ uint8 h5py files (25³ chunks = 8,000
 * chunks; 8³ chunks = 250,047 chunks; h5py defaults and libver="latest") from the local disk and
 * over HTTP (nginx), against reading the whole file once (`cat`, `curl`) in the same run. Every case
 * runs in its own process under /usr/bin/time (peak RSS and CPU exact). The timed work is what
 * `activestore refs -o out.json` does: open, read metadata and chunk indexes, build the reference
 * set, serialize it with toJson and write the file; build and JSON are also reported apart.
 *
 * Inputs: /usr/bin/python3 bench/data/refs_generate.py (into /tmp/activestore-bench).
 *
 * Build and run (from the repository root; see bench/RESULTS.md):
 *   npx tsc --module NodeNext --moduleResolution NodeNext --target ES2022 --strict --skipLibCheck \
 *     --types node --rootDir . --outDir node_modules/.cache/bench bench/refs.ts
 *   node node_modules/.cache/bench/bench/refs.js [--dir /tmp/activestore-bench] [--repeat 3]
 *     [--files u8_c25.h5,u8_c8.h5,u8_c25_latest.h5,u8_c8_latest.h5] [--cpu-prof DIR]
 */
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { openHdf5 } from "../src/hdf5/file.js";
import { byteSourceFromStore, type ByteSource } from "../src/hdf5/io.js";
import type { Dataset } from "../src/hdf5/model.js";
import { buildFromReader } from "../src/refs/build.js";
import { filtersToCodecs } from "../src/refs/filters.js";
import { toJson } from "../src/refs/json.js";
import { openByteSource } from "../src/refs/source.js";
import { HttpStore } from "../src/stores/http.js";
import { splitUrl } from "../src/stores/open.js";
import { medianBy, runChild, type ChildRun } from "./lib/child.js";
import { startBenchNginx } from "./lib/nginx.js";

const { values: flags } = parseArgs({
  options: {
    dir: { type: "string", default: "/tmp/activestore-bench" },
    files: { type: "string", default: "u8_c25.h5,u8_c8.h5,u8_c25_latest.h5,u8_c8_latest.h5" },
    repeat: { type: "string", default: "3" },
    "cpu-prof": { type: "string" },
    // child mode
    case: { type: "string" },
    "single-range": { type: "boolean", default: false },
    input: { type: "string" },
    output: { type: "string" },
  },
});

interface CaseReport {
  /** open + build + toJson + write. */
  seconds: number;
  buildSeconds: number;
  jsonSeconds: number;
  writeSeconds: number;
  cpuSeconds: number;
  chunks: number;
  jsonBytes: number;
  requests: number;
  bytesRead: number;
  index: string;
}

// ---- child: what `activestore refs <input> -o <output>` does, timed in parts ----

async function child(input: string, output: string): Promise<CaseReport> {
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  const opened = flags["single-range"] ? singleRangeSource(input) : openByteSource(input);
  const file = await openHdf5(opened.source);
  const { references } = await buildFromReader(file, filtersToCodecs, { url: input });
  const t1 = performance.now();
  const json = toJson(references);
  const t2 = performance.now();
  await writeFile(output, json + "\n");
  const t3 = performance.now();
  const used = process.cpuUsage(cpu);
  const data = (await file.get("/data")) as Dataset;
  await opened.close();
  const layout = data.layout;
  const source = file.context.source;
  return {
    seconds: (t3 - t0) / 1000,
    buildSeconds: (t1 - t0) / 1000,
    jsonSeconds: (t2 - t1) / 1000,
    writeSeconds: (t3 - t2) / 1000,
    cpuSeconds: (used.user + used.system) / 1e6,
    chunks: Object.keys(references.refs).filter((k) => /\/\d+\.\d+\.\d+$/.test(k)).length,
    jsonBytes: Buffer.byteLength(json) + 1,
    // Counted before the trailing get("/data"), which the cache serves anyway.
    requests: source.requests,
    bytesRead: source.bytesRead,
    index: layout.kind === "chunked" ? layout.index.type : layout.kind,
  };
}

/** One request per span (`multiRange: false`), the HttpStore behaviour before multi-range reads. */
function singleRangeSource(url: string): { source: ByteSource; close(): Promise<void> } {
  const { storeUrl, key } = splitUrl(url);
  const store = new HttpStore(storeUrl, { multiRange: false });
  return { source: byteSourceFromStore(store, key, url), close: () => store.close() };
}

// ---- parent ----

interface Row {
  file: string;
  label: string;
  run?: ChildRun<CaseReport | null>;
  error?: string;
}

async function main(): Promise<void> {
  const script = fileURLToPath(import.meta.url);
  const work = await mkdtemp(join(tmpdir(), "refs-bench-"));
  const server = await startBenchNginx(flags.dir!);
  const repeat = Math.max(1, Number(flags.repeat));
  const rows: Row[] = [];
  const sizes = new Map<string, number>();
  const loadStart = loadavg();
  let profiles = 0;
  const ours = (input: string, extra: string[] = []) => {
    const prof = flags["cpu-prof"] ? ["--cpu-prof", "--cpu-prof-dir", flags["cpu-prof"], "--cpu-prof-name", `refs-${++profiles}.cpuprofile`] : [];
    return runChild<CaseReport>(process.execPath, [...prof, script, "--case", "build", "--input", input, "--output", join(work, "out.json"), ...extra]);
  };
  const record = async (file: string, label: string, run: () => Promise<ChildRun<CaseReport | null>>) => {
    const runs: ChildRun<CaseReport | null>[] = [];
    try {
      for (let i = 0; i < repeat; i++) runs.push(await run());
      rows.push({ file, label, run: medianBy(runs, (r) => r.report?.seconds ?? r.processSeconds) });
    } catch (error) {
      rows.push({ file, label, error: (error as Error).message.slice(-300) });
    }
    const last = rows.at(-1)!;
    const r = last.run;
    process.stderr.write(`${file} ${label}: ${r ? `${(r.report?.seconds ?? r.processSeconds).toFixed(2)} s, ${r.peakRssMiB.toFixed(0)} MiB` : ""} ${last.error ?? ""}\n`);
  };
  try {
    for (const file of flags.files!.split(",")) {
      const path = join(flags.dir!, file);
      const url = `${server.url}/${file}`;
      sizes.set(file, (await stat(path)).size);
      await record(file, "cat file > /dev/null", () => runChild<null>("sh", ["-c", `cat '${path}' > /dev/null`]));
      await record(file, "ours, local file", () => ours(path));
      await record(file, "curl -s -o /dev/null (nginx)", () => runChild<null>("curl", ["-s", "-o", "/dev/null", url]));
      await record(file, "ours, nginx (multi-range requests)", () => ours(url));
      await record(file, "ours, nginx, one request per span (multiRange: false)", () => ours(url, ["--single-range"]));
    }
  } finally {
    await server.stop();
    await rm(work, { recursive: true, force: true });
  }
  report(rows, sizes, repeat, loadStart);
}

function report(rows: Row[], sizes: Map<string, number>, repeat: number, loadStart: number[]): void {
  const load = (l: number[]) => l.map((x) => x.toFixed(1)).join(" ");
  const lines = [
    `refs: ${new Date().toISOString()}, node ${process.version}, each case ${repeat}× (median by wall time), load at start ${load(loadStart)}, at end ${load(loadavg())}`,
    "",
    "| file | case | index | chunks | seconds | build s | toJson s | write s | CPU s | peak RSS MiB | requests | MB read | JSON MB |",
    "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of rows) {
    const size = sizes.get(r.file)!;
    const name = `${r.file} (${(size / 1e6).toFixed(0)} MB)`;
    if (!r.run) {
      lines.push(`| ${name} | ${r.label} | failed: ${(r.error ?? "").replace(/\|/g, "/").replace(/\n/g, " ")} | | | | | | | | | | |`);
      continue;
    }
    const c = r.run.report;
    const f = (n: number | undefined, d = 2) => (n === undefined ? "" : n.toFixed(d));
    lines.push(
      `| ${name} | ${r.label} | ${c?.index ?? ""} | ${c?.chunks ?? ""} | ${f(c?.seconds ?? r.run.processSeconds)} | ${f(c?.buildSeconds)} | ${f(c?.jsonSeconds)} | ${f(c?.writeSeconds)} | ${f(r.run.cpuSeconds)} | ${f(r.run.peakRssMiB, 0)} | ${c ? c.requests : r.label.startsWith("curl") ? 1 : ""} | ${f(c ? c.bytesRead / 1e6 : size / 1e6, c ? 2 : 0)} | ${f(c ? c.jsonBytes / 1e6 : undefined, 1)} |`,
    );
  }
  lines.push(
    "",
    "seconds: the timed work (ours: open → toJson → write, in the child; cat/curl: the whole process). CPU s and peak RSS",
    "are the whole child process's (/usr/bin/time), start-up included.",
  );
  process.stdout.write(lines.join("\n") + "\n");
}

if (flags.case) {
  child(flags.input!, flags.output!).then(
    (r) => process.stdout.write(JSON.stringify(r) + "\n"),
    (e: Error) => {
      process.stderr.write(String(e.stack ?? e) + "\n");
      process.exit(1);
    },
  );
} else {
  await main();
}
