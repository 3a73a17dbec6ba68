/**
 * `activestore demo` (what `npm start` runs): the whole pipeline on the small netCDF4 file shipped
 * in data/ — store the file, build kerchunk references from it with range reads, store them beside
 * it, read through the references with zarrita, and run active reductions, printing the results and
 * the bytes each step moved.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import * as zarr from "zarrita";
import { openActive } from "../../active/source.js";
import { registerCodecs } from "../../codecs/registry.js";
import { openHdf5 } from "../../hdf5/file.js";
import { byteSourceFromStore } from "../../hdf5/io.js";
import { buildFromReader } from "../../refs/build.js";
import { filtersToCodecs } from "../../refs/filters.js";
import { toJson } from "../../refs/json.js";
import { parseReferences, ReferenceStore } from "../../refs/reference-store.js";
import { storeResolver } from "../../active/source.js";
import { openStore } from "../../stores/open.js";
import { startServer } from "../../server/index.js";
import { S3RVER_CREDENTIALS, startS3rver, type S3rverHandle } from "../embedded-s3.js";
import { writeOut } from "./cat.js";

/** data/demo.nc, found by walking up from this module (dist/cli/commands or src/cli/commands). */
export function demoFile(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, "data", "demo.nc");
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error("data/demo.nc not found next to the package");
}

const fmt = (v: unknown) => (typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(4)) : String(v));

export async function runDemo(print: (line: string) => void, workDir?: string): Promise<void> {
  registerCodecs();
  const dir = workDir ?? mkdtempSync(join(tmpdir(), "activestore-demo-"));
  try {
    const store = openStore(dir);
    const file = readFileSync(demoFile());
    await store.set("demo.nc", file);
    print(`1. stored demo.nc (${file.length} bytes) in a local store at ${dir}`);

    const hdf5 = await openHdf5(byteSourceFromStore(store, "demo.nc", `${dir}/demo.nc`));
    const { references } = await buildFromReader(hdf5, filtersToCodecs, { url: "demo.nc" });
    const json = toJson(references);
    await store.set("demo.json", new TextEncoder().encode(json));
    const chunkKeys = Object.keys(references.refs).filter((k) => !k.split("/").pop()!.startsWith("."));
    print(
      `2. built kerchunk references: ${chunkKeys.length} chunk references, ` +
        `${hdf5.context.source.requests} range reads, ${hdf5.context.source.bytesRead} bytes of metadata read`,
    );

    const refs = parseReferences(new TextDecoder().decode(await store.get("demo.json")));
    const refStore = new ReferenceStore(refs, { resolver: storeResolver({}, `${dir}/demo.json`) });
    const tas = await zarr.open.v2(zarr.root(refStore).resolve("tas"), { kind: "array" });
    const corner = await zarr.get(tas, [0, zarr.slice(0, 2), zarr.slice(0, 4)]);
    print(
      `3. zarrita through the references: tas ${tas.dtype} shape [${tas.shape}] chunks [${tas.chunks}]; ` +
        `tas[0, 0:2, 0:4] = [${Array.from(corner.data as Float32Array, fmt).join(", ")}]`,
    );

    print("4. active reductions (chunk by chunk, nothing materialised):");
    const active = await openActive(`${dir}/demo.json`, "tas");
    for (const [label, op, selection, axis] of [
      ["mean of tas", "mean", null, undefined],
      ["min of tas", "min", null, undefined],
      ["max of tas", "max", null, undefined],
      ["std of tas", "std", null, undefined],
      ["count of valid tas", "count", null, undefined],
      ["mean tas, first year, tropics", "mean", [zarr.slice(0, 12), zarr.slice(15, 30), null], undefined],
      ["time-mean map, 3x3 corner", "mean", [null, zarr.slice(0, 3), zarr.slice(0, 3)], [0]],
    ] as const) {
      const r = await active.reduce(op, selection as never, { axis: axis as never });
      const value = Array.isArray(r.value) ? `[${r.value.map(fmt).join(", ")}]` : fmt(r.value);
      const unit = op === "count" ? "" : " K";
      print(`   ${label.padEnd(32)} ${value}${unit}  (${r.chunks} chunks, ${r.bytesRead} bytes read)`);
    }
    const pr = await openActive(`${dir}/demo.json`, "pr");
    const mean = await pr.mean();
    const raw = await (await openActive(`${dir}/demo.json`, "pr", { raw: true })).mean();
    print(`   ${"mean of pr (unpacked)".padEnd(32)} ${mean.value} kg m-2 s-1 (packed mean ${fmt(raw.value)})`);

    await pushToServer(file, print);
  } finally {
    if (!workDir) rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Part 5: the same reductions pushed to an embedded active-storage server reading from an embedded
 * S3 (s3rver, a development dependency): only small answers cross the network.
 */
async function pushToServer(file: Uint8Array, print: (line: string) => void): Promise<void> {
  let s3: S3rverHandle;
  try {
    s3 = await startS3rver({ buckets: ["demo"] });
  } catch (error) {
    print(`5. server reductions skipped: no embedded S3 (s3rver, a dev dependency): ${String(error).split("\n")[0]}`);
    return;
  }
  const server = await startServer({ port: 0, allowHosts: ["127.0.0.1"], logger: () => undefined });
  try {
    const s3Options = { endpoint: s3.endpoint, forcePathStyle: true, credentials: S3RVER_CREDENTIALS };
    const bucket = openStore("s3://demo", { s3: s3Options });
    await bucket.set("demo.nc", file);
    print(`5. the same reductions on an active-storage server (${server.url}) reading s3://demo/demo.nc from S3 (${s3.endpoint}):`);
    const open = (server_?: string) =>
      openActive("s3://demo/demo.nc", "tas", {
        store: { s3: s3Options },
        ...(server_ && {
          server: server_,
          serverCredentials: { username: S3RVER_CREDENTIALS.accessKeyId, password: S3RVER_CREDENTIALS.secretAccessKey },
        }),
      });
    const [local, remote] = await Promise.all([open(), open(server.url)]);
    for (const op of ["mean", "min", "max", "std"] as const) {
      const [l, r] = [await local.reduce(op), await remote.reduce(op)];
      print(
        `   ${`${op} of tas`.padEnd(32)} local ${fmt(l.value)} (${l.bytesRead} bytes read from S3)  ` +
          `server ${fmt(r.value)} (${r.bytesRead} bytes received for ${r.bytesReduced} bytes reduced)`,
      );
    }
    await bucket.close();
  } finally {
    await server.close();
    await s3.stop();
  }
}

export function register(program: Command): void {
  program
    .command("demo")
    .description("run the whole pipeline on the embedded netCDF4 file (what `npm start` does)")
    .action(async () => {
      await runDemo((line) => void writeOut(new TextEncoder().encode(`${line}\n`)));
    });
}
