/**
 * Reference-store benchmark: read a whole variable through our ReferenceStore + zarrita (local disk
 * and nginx; with zarrita's `get` and with ours, src/zarr/get.ts, which copies chunks faster), through zarrita's own ReferenceStore (@zarrita/storage, same references, nginx) and
 * with h5py on the local file, in the same run. Every case runs in its own process under
 * /usr/bin/time (peak RSS exact) and reports the SHA-1 of the array it read, which must agree.
 * Also: opening a 250,000-chunk reference set and serving its first chunk (time, RSS).
 *
 * Inputs: /usr/bin/python3 bench/data/generate.py (raw75.nc: 500³ f8 in 75³ chunks, 343 chunks;
 * zlib25.nc: 25³ zlib+shuffle chunks, 8,000 chunks), variable "data".
 *
 * Build and run (from the repository root; see bench/RESULTS.md):
 *   npx tsc --module NodeNext --moduleResolution NodeNext --target ES2022 --strict --skipLibCheck \
 *     --types node --rootDir . --outDir node_modules/.cache/bench bench/refs-read.ts src/codecs/seek-bzip.d.ts src/active/wasm/webassembly.d.ts \
 *     src/codecs/pool-worker.ts   # the codec pool's worker script; without it decoding stays on the main thread
 *   node node_modules/.cache/bench/bench/refs-read.js [--quick] [--dir /tmp/activestore-bench]
 *     [--files raw75.nc,zlib25.nc] [--concurrency 16] [--skip-zarrita]
 * --quick reads the first 100 of 500 planes instead of the whole variable.
 */
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import * as zarr from "zarrita";
import { ReferenceStore as ZarritaReferenceStore } from "@zarrita/storage";
import { registerCodecs } from "../src/codecs/registry.js";
import { buildReferences } from "../src/refs/build.js";
import { openReferences } from "../src/refs/open.js";
import { referencesJson } from "../src/refs/write.js";
import { get } from "../src/zarr/get.js";
import type { References } from "../src/refs/types.js";
import { runChild, type ChildRun } from "./lib/child.js";
import { startBenchNginx } from "./lib/nginx.js";

const { values: flags } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    dir: { type: "string", default: "/tmp/activestore-bench" },
    files: { type: "string", default: "raw75.nc,zlib25.nc" },
    concurrency: { type: "string", default: "16" },
    "skip-zarrita": { type: "boolean", default: false },
    "max-block": { type: "string" },
    // child mode
    case: { type: "string" },
    refs: { type: "string" },
  },
});
const PLANES = flags.quick ? 100 : 500;

interface CaseReport {
  seconds: number;
  sha1?: string;
  requests?: number;
  error?: string;
  openSeconds?: number;
  firstChunkSeconds?: number;
  rssAfterOpenMiB?: number;
}

const sha1 = (bytes: Uint8Array) => createHash("sha1").update(bytes).digest("hex");

// ---- child cases ----

async function readWith(store: zarr.Readable, get: typeof zarr.get = zarr.get): Promise<{ seconds: number; sha1: string }> {
  const start = performance.now();
  const arr = await zarr.open.v2(zarr.root(store).resolve("data"), { kind: "array" });
  const out = await get(arr, [zarr.slice(0, PLANES), null, null]);
  const seconds = (performance.now() - start) / 1000;
  const data = out.data as Float64Array;
  return { seconds, sha1: sha1(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)) };
}

async function child(name: string, refsPath: string): Promise<CaseReport> {
  registerCodecs();
  if (name === "ours" || name === "ours-get") {
    const mib = (v: string | undefined) => (v === undefined ? undefined : Number(v) * 2 ** 20);
    const store = await openReferences(refsPath, {
      concurrency: Number(flags.concurrency),
      maxBlock: mib(flags["max-block"]),
    });
    try {
      // "ours-get": zarrita's get with our chunk copy (src/zarr/get.ts) instead of zarrita's.
      return { ...(await readWith(store, name === "ours-get" ? get : zarr.get)), requests: store.stats.requests };
    } finally {
      await store.close();
    }
  }
  if (name === "zarrita") {
    const { readFile } = await import("node:fs/promises");
    const spec = JSON.parse(await readFile(refsPath, "utf8")) as Record<string, unknown>;
    try {
      return await readWith(ZarritaReferenceStore.fromSpec(spec as never));
    } catch (error) {
      return { seconds: NaN, error: String((error as Error).cause ?? (error as Error).message).slice(0, 120) };
    }
  }
  if (name === "open-ours" || name === "open-zarrita") {
    const start = performance.now();
    let store: zarr.Readable;
    let close = async () => {};
    if (name === "open-ours") {
      const s = await openReferences(refsPath);
      store = s;
      close = () => s.close();
    } else {
      const { readFile } = await import("node:fs/promises");
      store = ZarritaReferenceStore.fromSpec(JSON.parse(await readFile(refsPath, "utf8")) as never);
    }
    const openSeconds = (performance.now() - start) / 1000;
    const first = performance.now();
    const bytes = await store.get("/data/0.0.0");
    const firstChunkSeconds = (performance.now() - first) / 1000;
    if (!bytes || bytes.length !== 4000) throw new Error("first chunk not served");
    (globalThis as { gc?: () => void }).gc?.();
    const rssAfterOpenMiB = process.memoryUsage.rss() / 2 ** 20;
    await close();
    return { seconds: openSeconds + firstChunkSeconds, openSeconds, firstChunkSeconds, rssAfterOpenMiB };
  }
  throw new Error(`unknown case ${name}`);
}

const H5PY = `
import hashlib, json, sys, time, h5py
start = time.perf_counter()
with h5py.File(sys.argv[1], "r") as f:
    a = f["data"][0:int(sys.argv[2])]
seconds = time.perf_counter() - start
assert a.dtype.str == "<f8" and a.flags.c_contiguous
print(json.dumps({"seconds": seconds, "sha1": hashlib.sha1(a).hexdigest()}))
`;

// ---- parent ----

/** A 250,000-chunk set over raw75.nc (chunks of 500 f8 = 4,000 bytes): big JSON, cheap to open? */
function manyRefs(path: string): References {
  const refs: Record<string, References["refs"][string]> = {
    ".zgroup": JSON.stringify({ zarr_format: 2 }),
    "data/.zarray": JSON.stringify({
      zarr_format: 2, shape: [500, 500, 500], chunks: [1, 1, 500], dtype: "<f8", compressor: null,
      fill_value: null, filters: null, order: "C", dimension_separator: ".",
    }),
  };
  for (let i = 0; i < 500; i++) for (let j = 0; j < 500; j++) refs[`data/${i}.${j}.0`] = [path, (i * 500 + j) * 4000, 4000];
  return { version: 1, refs };
}

interface Row {
  file: string;
  label: string;
  run?: ChildRun<CaseReport>;
  error?: string;
}

async function main(): Promise<void> {
  const script = fileURLToPath(import.meta.url);
  const work = await mkdtemp(join(tmpdir(), "refs-read-bench-"));
  const server = await startBenchNginx(flags.dir!);
  const rows: Row[] = [];
  const node = (name: string, refs: string) => runChild<CaseReport>(process.execPath, ["--expose-gc", script, "--case", name, "--refs", refs, ...(flags.quick ? ["--quick"] : []), "--concurrency", flags.concurrency!]);
  const record = async (file: string, label: string, run: () => Promise<ChildRun<CaseReport>>) => {
    try {
      const r = await run();
      rows.push({ file, label, run: r, error: r.report.error });
    } catch (error) {
      // The child's stderr ends in a stack; the line naming the error says more than its tail.
      const message = (error as Error).message;
      rows.push({ file, label, error: (message.split("\n").find((l) => /Error\b/.test(l)) ?? message).trim().slice(0, 200) });
    }
    const last = rows.at(-1)!;
    process.stderr.write(`${file} ${label}: ${last.run ? `${(last.run.report.seconds ?? NaN).toFixed(2)} s, ${last.run.peakRssMiB.toFixed(0)} MiB` : ""} ${last.error ?? ""}\n`);
  };
  try {
    for (const file of flags.files!.split(",")) {
      const path = join(flags.dir!, file);
      const local = join(work, `${file}.local.json`);
      const http = join(work, `${file}.http.json`);
      await writeFile(local, referencesJson(await buildReferences(path, { url: path })));
      await writeFile(http, referencesJson(await buildReferences(path, { url: `${server.url}/${file}` })));
      await record(file, "h5py, local file", () => runChild<CaseReport>("/usr/bin/python3", ["-c", H5PY, path, String(PLANES)]));
      await record(file, "ours + zarr.get, local file", () => node("ours", local));
      await record(file, "ours + our get, local file", () => node("ours-get", local));
      await record(file, "ours + zarr.get, nginx", () => node("ours", http));
      await record(file, "ours + our get, nginx", () => node("ours-get", http));
      if (!flags["skip-zarrita"]) await record(file, "zarrita ReferenceStore, nginx", () => node("zarrita", http));
    }
    const many = join(work, "many.json");
    // Over nginx for both: zarrita's store cannot read local files.
    await writeFile(many, referencesJson(manyRefs(`${server.url}/raw75.nc`)));
    await record("250k refs", "open + first chunk, ours", () => node("open-ours", many));
    await record("250k refs", "open + first chunk, zarrita", () => node("open-zarrita", many));
  } finally {
    await server.stop();
    await rm(work, { recursive: true, force: true });
  }
  report(rows);
}

function report(rows: Row[]): void {
  const outputMiB = (PLANES * 500 * 500 * 8) / 2 ** 20;
  const lines = [
    `refs-read: ${flags.quick ? "--quick (100 of 500 planes)" : "whole variable"}, output array ${outputMiB.toFixed(0)} MiB, concurrency ${flags.concurrency}, load ${loadavg().map((l) => l.toFixed(1)).join(" ")}`,
    "",
    "| file | case | read s | process s | CPU s | peak RSS MiB | RSS / output | requests | SHA-1 agrees |",
    "|---|---|---:|---:|---:|---:|---:|---:|---|",
  ];
  for (const file of new Set(rows.map((r) => r.file))) {
    const group = rows.filter((r) => r.file === file);
    const reference = group.find((r) => r.label.startsWith("h5py"))?.run?.report.sha1;
    for (const r of group) {
      const rep = r.run?.report;
      if (!r.run || r.error) {
        lines.push(`| ${file} | ${r.label} | failed: ${(r.error ?? "").replace(/\|/g, "/").replace(/\n/g, " ")} | | | ${r.run ? r.run.peakRssMiB.toFixed(0) : ""} | | | |`);
        continue;
      }
      const open = rep!.openSeconds !== undefined ? ` (open ${rep!.openSeconds.toFixed(2)}, first chunk ${rep!.firstChunkSeconds!.toFixed(3)}, RSS after open ${rep!.rssAfterOpenMiB!.toFixed(0)} MiB)` : "";
      lines.push(
        `| ${file} | ${r.label}${open} | ${rep!.seconds.toFixed(2)} | ${r.run.processSeconds.toFixed(2)} | ${r.run.cpuSeconds.toFixed(1)} | ${r.run.peakRssMiB.toFixed(0)} | ${rep!.sha1 ? (r.run.peakRssMiB / outputMiB).toFixed(2) : ""} | ${rep!.requests ?? ""} | ${rep!.sha1 ? (rep!.sha1 === reference ? "yes" : "NO") : ""} |`,
      );
    }
  }
  process.stdout.write(lines.join("\n") + "\n");
}

if (flags.case) {
  child(flags.case, flags.refs!).then(
    (r) => process.stdout.write(JSON.stringify(r) + "\n"),
    (e: Error) => {
      process.stderr.write(String(e.stack ?? e) + "\n");
      process.exit(1);
    },
  );
} else {
  await main();
}
