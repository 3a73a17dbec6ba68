/**
 * Partitioned conversion by separate Node processes (child_process, a runner compiled in beforeAll),
 * writing to the local disk and to s3rver; the expected values are what netCDF4 read from the
 * fixtures (test/fixtures/datasets/generate.py).
 */
import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as zarr from "zarrita";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDataset } from "../src/datasets/create.js";
import { createDataset } from "../src/datasets/create.js";
import { registerDatasetCodecs } from "../src/datasets/encode.js";
import { buildReferences } from "../src/refs/build.js";
import { combineReferences } from "../src/refs/combine.js";
import { LocalStore } from "../src/stores/local.js";
import { S3Store } from "../src/stores/s3.js";
import type { Store } from "../src/stores/types.js";
import { S3RVER_CREDENTIALS, startS3rver, type S3rverHandle } from "./servers/s3rver.js";

const repo = fileURLToPath(new URL("..", import.meta.url));
const fixtures = join(repo, "test/fixtures/datasets");
const day1 = join(fixtures, "day1.nc");
const day2 = join(fixtures, "day2.nc");
const PYTHON = "/usr/bin/python3";

let build: string;
let runner: string;
let work: string;
let s3: S3rverHandle;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: Record<string, string> = {}, onStdout?: (text: string) => void): Promise<Run> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [runner, ...args], {
      env: { ...process.env, AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER", AWS_REGION: "us-east-1", ...env },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
      onStdout?.(stdout);
    });
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code, signal) => done({ code, signal, stdout, stderr }));
  });
}

function ok(result: Run): Run {
  expect(result.stderr, result.stderr).not.toMatch(/activestore:/);
  expect(result.code).toBe(0);
  return result;
}

async function expectedTas(...names: string[]): Promise<Float32Array> {
  const parts = await Promise.all(names.map((n) => readFile(join(fixtures, n))));
  const bytes = Buffer.concat(parts);
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

/** Element-wise equality with NaN equal to NaN (Object.is, but +0 and -0 alike). */
function expectSameValues(got: ArrayLike<number>, want: ArrayLike<number>): void {
  expect(got.length).toBe(want.length);
  const bad: number[] = [];
  for (let i = 0; i < want.length; i++) {
    if (!(got[i] === want[i] || (Number.isNaN(got[i]) && Number.isNaN(want[i])))) bad.push(i);
  }
  expect(bad.slice(0, 10)).toEqual([]);
}

async function readTas(store: Store): Promise<Float32Array> {
  registerDatasetCodecs();
  const arr = await zarr.open(zarr.root(store).resolve("tas"), { kind: "array" });
  return ((await zarr.get(arr)) as zarr.Chunk<"float32">).data;
}

function s3Store(prefix: string): S3Store {
  return new S3Store({ bucket: "zarr", prefix, endpoint: s3.endpoint, forcePathStyle: true, credentials: S3RVER_CREDENTIALS, region: "us-east-1" });
}

beforeAll(async () => {
  await mkdir(join(repo, "node_modules/.cache"), { recursive: true });
  build = await mkdtemp(join(repo, "node_modules/.cache/partitions-test-"));
  const config = {
    extends: join(repo, "tsconfig.build.json"),
    compilerOptions: { outDir: join(build, "out"), rootDir: repo, sourceMap: false, declaration: false },
    files: [
      join(fixtures, "runner.ts"),
      join(fixtures, "chunk-functions.ts"),
      join(repo, "src/datasets/index.ts"),
      join(repo, "src/datasets/pool-worker.ts"),
    ],
    include: [],
  };
  await writeFile(join(build, "tsconfig.json"), JSON.stringify(config));
  // tsc emits despite type errors elsewhere; only a missing output fails here.
  const diagnostics = await new Promise<string>((done) =>
    execFile(process.execPath, [join(repo, "node_modules/typescript/bin/tsc"), "-p", join(build, "tsconfig.json")], (error, stdout) =>
      done(error ? stdout : ""),
    ),
  );
  runner = join(build, "out/test/fixtures/datasets/runner.js");
  if (!existsSync(runner)) throw new Error(`the runner did not build:\n${diagnostics}`);
  work = await mkdtemp(join(tmpdir(), "partitions-"));
  s3 = await startS3rver({ buckets: ["zarr"] });
}, 180_000);

afterAll(async () => {
  await s3?.stop();
  if (work) await rm(work, { recursive: true, force: true });
  if (build) await rm(build, { recursive: true, force: true });
});

describe("convert by independent processes", () => {
  it("three processes write a netCDF4 variable to the local disk; zarrita reads exactly the source back", async () => {
    const dest = join(work, "local.zarr");
    const common = [day1, dest, "--chunks", "time=4,lat=5,lon=8", "--codec", "zstd"];
    expect(ok(await run(["cli", "convert", ...common, "--init"])).stdout).toMatch(/init: lat 2 chunks, lon 2 chunks, time 3 chunks/);
    const ranks = await Promise.all([0, 1, 2].map((r) => run(["cli", "convert", ...common, "--rank", String(r), "--ranks", "3"])));
    ranks.forEach(ok);
    // 3 x 2 x 2 chunks; dims in order: time is split first, 3 ranks → one time block each.
    expect(ranks.map((r) => r.stdout.trim())).toEqual(["rank 0/3 (--rank/--ranks): tas 4 chunks", "rank 1/3 (--rank/--ranks): tas 4 chunks", "rank 2/3 (--rank/--ranks): tas 4 chunks"]);
    expectSameValues(await readTas(new LocalStore(dest)), await expectedTas("day1.tas.f4"));
    const doc = JSON.parse(await readFile(join(dest, "tas/zarr.json"), "utf8"));
    expect(doc).toMatchObject({ dimension_names: ["time", "lat", "lon"], fill_value: "NaN", attributes: { units: "K" } });
    expect(ok(await run(["cli", "convert", ...common, "--init", "--verify"])).stdout).toMatch(/verify: 19 chunks match the source/);
  }, 120_000);

  it("a combined reference set of two files → s3rver, ranks from SLURM array variables, more ranks than blocks", async () => {
    const refs = await combineReferences([await buildReferences(day1), await buildReferences(day2)], {
      concatDims: ["time"],
      identicalDims: ["lat", "lon"],
    });
    const refsPath = join(work, "month.json");
    await writeFile(refsPath, JSON.stringify(refs));
    const dest = "s3://zarr/month.zarr";
    const common = [refsPath, dest, "--endpoint", s3.endpoint, "--chunks", "time=12,lat=10,lon=16", "--dims", "time"];
    ok(await run(["cli", "convert", ...common, "--init"]));
    // 2 time blocks, 5 tasks: ranks 2-4 have nothing to do.
    const ranks = await Promise.all(
      [0, 1, 2, 3, 4].map((r) => run(["cli", "convert", ...common], { SLURM_ARRAY_TASK_ID: String(r), SLURM_ARRAY_TASK_COUNT: "5" })),
    );
    ranks.forEach(ok);
    expect(ranks.map((r) => r.stdout.trim().replace(/ \(.*\)/, ""))).toEqual([
      "rank 0/5: tas 1 chunks",
      "rank 1/5: tas 1 chunks",
      "rank 2/5: tas 0 chunks",
      "rank 3/5: tas 0 chunks",
      "rank 4/5: tas 0 chunks",
    ]);
    expect(ranks[0].stdout).toMatch(/SLURM array/);
    const store = s3Store("month.zarr");
    expectSameValues(await readTas(store), await expectedTas("day1.tas.f4", "day2.tas.f4"));
    const time = await openDataset(store, "time");
    expect(time.shape).toEqual([24]);
    ok(await run(["cli", "convert", ...common, "--rank", "0", "--ranks", "1", "--verify"]));
    await store.close();
  }, 120_000);

  it("a zarr v2 store written by two processes reads back in zarr-python", async (ctx) => {
    const probe = await new Promise<boolean>((done) => execFile(PYTHON, ["-c", "import zarr, netCDF4"], (error) => done(!error)));
    if (!probe) {
      console.warn(`SKIPPED: ${PYTHON} has no zarr/netCDF4; the v2 read-back in zarr-python was not checked`);
      ctx.skip();
    }
    const dest = join(work, "v2.zarr");
    const common = [day1, dest, "--format", "2", "--codec", "zlib", "--chunks", "time=4,lat=5"];
    ok(await run(["cli", "convert", ...common, "--init"]));
    (await Promise.all([0, 1].map((r) => run(["cli", "convert", ...common], { OMPI_COMM_WORLD_RANK: String(r), OMPI_COMM_WORLD_SIZE: "2" })))).forEach(ok);
    const out = await new Promise<string>((done, fail) =>
      execFile(PYTHON, [join(fixtures, "check_zarr.py"), dest, day1], (error, stdout, stderr) => (error ? fail(new Error(stderr)) : done(stdout))),
    );
    const result = JSON.parse(out);
    for (const name of ["time", "lat", "lon", "tas"]) expect(result[name].equal, name).toBe(true);
    expect(result.tas).toMatchObject({ chunks: [4, 5, 8], compressor: "zlib", dims: ["time", "lat", "lon"] });
  }, 120_000);
});

describe("worker-thread engine (compiled build: workers run JavaScript)", () => {
  it("map runs a module function on worker threads and convert --threads encodes there", async () => {
    type Lib = typeof import("../src/datasets/index.js");
    const lib = (await import(/* @vite-ignore */ join(build, "out/src/datasets/index.js"))) as Lib;
    const { LocalStore: BuiltLocalStore } = (await import(/* @vite-ignore */ join(build, "out/src/stores/local.js"))) as typeof import("../src/stores/local.js");
    const store = new BuiltLocalStore(join(work, "pool"));
    const ds = await lib.createDataset(store, "in", { shape: [7, 3], chunks: [2, 3], dtype: "float64", codecs: "gzip:6" });
    const values = Float64Array.from({ length: 21 }, (_, i) => i);
    const pool = new lib.WorkerPool(2);
    try {
      await ds.load({ data: values, shape: [7, 3] }, { pool });
      const out = await ds.map({ module: join(build, "out/test/fixtures/datasets/chunk-functions.js"), name: "scaleAndTag" }, "out", { pool });
      const expected = Array.from(values, (v, i) => 2 * v + Math.floor(Math.floor(i / 3) / 2) * 2);
      expect(Array.from((await out.get(null)).data as Float64Array)).toEqual(expected);
      expect(values[20]).toBe(20); // the caller's array was copied, not transferred away
      await expect(ds.map({ module: join(build, "out/test/fixtures/datasets/chunk-functions.js"), name: "missing" }, "bad", { pool })).rejects.toThrow(/no function export "missing"/);
    } finally {
      await pool.close();
    }
    const dest = join(work, "threads.zarr");
    ok(await run(["cli", "convert", day1, dest, "--threads", "2", "--chunks", "time=3"]));
    expectSameValues(await readTas(new LocalStore(dest)), await expectedTas("day1.tas.f4"));
  }, 120_000);
});

describe("no lost updates, no torn chunks", () => {
  it("two processes doing partial writes into one chunk on the local disk lose nothing (chunk lock)", async () => {
    const dir = join(work, "rmw");
    const n = 60; // writes per process
    await createDataset(new LocalStore(dir), "x", { shape: [2 * n], chunks: [2 * n], dtype: "float64", fillValue: 0 });
    let ready = 0;
    let go!: () => void;
    const bothReady = new Promise<void>((r) => (go = r));
    const writers = [0, 1].map((p) =>
      run(["rmw", dir, "x", String(p), String(n)], {}, (out) => {
        if (out === "ready\n" && ++ready === 2) go();
      }),
    );
    await bothReady;
    await writeFile(join(dir, "go"), "");
    (await Promise.all(writers)).forEach(ok);
    const ds = await openDataset(new LocalStore(dir), "x");
    expect(Array.from((await ds.get(null)).data as Float64Array)).toEqual(Array.from({ length: 2 * n }, (_, i) => i + 1));
    expect((await readdir(join(dir, "x/c"))).filter((f) => f.endsWith(".lock"))).toEqual([]);
  }, 120_000);

  it("a rank killed with SIGKILL mid-write leaves only whole chunks, and re-running it completes the store", async () => {
    const dest = join(work, "killed.zarr");
    const common = [day1, dest, "--chunks", "time=2,lat=5,lon=8"];
    ok(await run(["cli", "convert", ...common, "--init"]));
    const killed = await run(["die-after", "5", day1, dest, "0", "1"]);
    expect(killed.signal).toBe("SIGKILL");
    const store = new LocalStore(dest);
    const ds = await openDataset(store, "tas");
    const expected = await expectedTas("day1.tas.f4");
    let present = 0;
    for await (const info of store.list("tas/c/")) {
      const coords = info.key.slice("tas/c/".length).split("/").map(Number);
      const chunk = await ds.readChunk(coords); // decodes: a torn chunk would fail here or differ below
      const [t, y, x] = coords;
      const want: number[] = [];
      for (let i = 0; i < 2; i++) for (let j = 0; j < 5; j++) for (let k = 0; k < 8; k++) want.push(expected[((t * 2 + i) * 10 + y * 5 + j) * 16 + x * 8 + k]);
      expectSameValues(chunk.data as Float32Array, want);
      present++;
    }
    expect(present).toBeGreaterThanOrEqual(4);
    expect(present).toBeLessThan(24);
    ok(await run(["cli", "convert", ...common, "--rank", "0", "--ranks", "1"]));
    expect(ok(await run(["cli", "convert", ...common, "--rank", "0", "--ranks", "1", "--verify"])).stdout).toMatch(/verify: 34 chunks match/);
  }, 120_000);

  it("a partitioned write that is not chunk-aligned is refused", async () => {
    const ds = await createDataset(new LocalStore(join(work, "aligned")), "a", { shape: [10], chunks: [4], dtype: "float32" });
    const values = { data: new Float32Array(3), shape: [3] };
    await expect(ds.set([zarr.slice(0, 3)], values, { partition: [[0, 4]] })).rejects.toThrow(/not chunk-aligned/);
    await expect(ds.set([zarr.slice(4, 8)], { data: new Float32Array(4), shape: [4] }, { partition: [[0, 4]] })).rejects.toThrow(/outside this process's partition/);
    await expect(ds.load({ data: new Float32Array(10), shape: [10] }, { partition: [[2, 8]] })).rejects.toThrow(/not chunk-aligned/);
    await ds.set([zarr.slice(8, 10)], { data: new Float32Array([1, 2]), shape: [2] }, { partition: [[8, 10]] }); // the edge chunk is whole
  });
});
