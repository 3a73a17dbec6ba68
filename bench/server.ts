/**
 * Active-storage server benchmark: one array of compressed float32 chunks in s3rver, reduced
 * (a) locally — every chunk fetched, decoded and reduced in this process — and (b) remotely with
 * reduceRemote against our server on the same machine (moments protocol), plus small-request
 * throughput. Everything is local, so this measures overheads and bytes moved, not a WAN.
 *
 * Then (`--part load`) wrk against `POST /v2/sum` over 1 MiB float64 chunks served by nginx over HTTP,
 * with the server's RSS and memory budget sampled, and (`--part active`) `Active.mean` of a netCDF4
 * file on nginx through the server against the local engine.
 *
 *   npx vite-node bench/server.ts -- [--part basic,load,active] [--chunks 64] [--chunk-mib 1]
 *     [--requests 400] [--seconds 10] [--connections 16,64] [--budget-mib 64]
 *     [--dir /tmp/activestore-bench] [--file zlib25.nc] [--concurrency N] [--repeat 2]
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Active } from "../src/active/active.js";
import { reduceArray, type ChunkSource } from "../src/active/engine.js";
import { reduceRemote, type RemoteChunk } from "../src/active/remote.js";
import { loadCodecChain, registerCodecs } from "../src/codecs/index.js";
import { startServer } from "../src/server/index.js";
import { S3Store } from "../src/stores/s3.js";
import { S3RVER_CREDENTIALS, startS3rver } from "../test/servers/s3rver.js";
import { startBenchNginx } from "./lib/nginx.js";
import { runWrk, sampleMemory } from "./lib/server-load.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
const { values: flags } = parseArgs({
  options: {
    part: { type: "string", default: "basic,load,active" },
    seconds: { type: "string", default: "10" },
    connections: { type: "string", default: "16,64" },
    "budget-mib": { type: "string", default: "64" },
    dir: { type: "string", default: "/tmp/activestore-bench" },
    file: { type: "string", default: "zlib25.nc" },
    /** Client chunks in flight for the active part (default: the library's). */
    concurrency: { type: "string" },
    /** Alternating local/server rounds of the active part. */
    repeat: { type: "string", default: "2" },
    chunks: { type: "string", default: "64" }, "chunk-mib": { type: "string", default: "1" }, requests: { type: "string", default: "400" } },
  allowPositionals: true,
});
const nChunks = Number(flags.chunks);
const side = Math.round(Math.sqrt((Number(flags["chunk-mib"]) * 2 ** 20) / 4));
const chunkShape = [side, side];
const shape = [side * nChunks, side];

const MiB = 2 ** 20;
const budgetBytes = Number(flags["budget-mib"]) * MiB;
const quietServer = () => startServer({ port: 0, allowHosts: ["127.0.0.1"], memoryBytes: budgetBytes, logger: () => undefined });

registerCodecs();
const parts = new Set(flags.part.split(","));
if (parts.has("basic")) await basicPart();
if (parts.has("load")) await loadPart();
if (parts.has("active")) await activePart();

async function basicPart(): Promise<void> {
  const s3 = await startS3rver({ buckets: ["bench"] });
  const store = new S3Store({ bucket: "bench", endpoint: s3.endpoint, forcePathStyle: true, credentials: S3RVER_CREDENTIALS });
  const server = await startServer({ port: 0, allowHosts: ["127.0.0.1"], logger: () => undefined });
  const codecs = [{ id: "shuffle", elementsize: 4 }, { id: "zlib", level: 1 }];
  const chain = await loadCodecChain(codecs, { dataType: "float32", shape: chunkShape });
  const refs: RemoteChunk[] = [];
  let stored = 0;
  for (let c = 0; c < nChunks; c++) {
    const values = new Float32Array(side * side).map((_, i) => Math.sin(i * 0.001 + c) * 100);
    const encoded = await chain.encode(new Uint8Array(values.buffer));
    await store.set(`chunk.${c}`, encoded);
    refs.push({ url: `${s3.endpoint}/bench/chunk.${c}`, offset: 0, size: encoded.length, codecs });
    stored += encoded.length;
  }

  const local: ChunkSource & { bytes: number } = {
    shape, chunks: chunkShape, dtype: "float32", bytes: 0,
    async getChunk(coords) {
      const raw = (await store.get(`chunk.${coords[0]}`))!;
      local.bytes += raw.length;
      const data = new Float32Array((await chain.decode(raw)).slice().buffer);
      return { data, shape: chunkShape, stride: [side, 1] };
    },
  };
  const time = async <T>(f: () => Promise<T>) => {
    const t = performance.now();
    const value = await f();
    return { value, ms: performance.now() - t };
  };
  const rows: string[] = [];
  const l = await time(() => reduceArray(local, null, { moments: true, concurrency: 8 }));
  rows.push(`| local engine (fetch + decode + reduce here) | ${l.ms.toFixed(0)} | ${(local.bytes / 2 ** 20).toFixed(1)} MiB fetched |`);
  const r = await time(() =>
    reduceRemote(
      { shape, chunks: chunkShape, dtype: "float32", byteOrder: "little", order: "C", interfaceType: "s3", chunk: (c) => refs[c[0]] },
      null,
      { servers: server.url, credentials: { username: "S3RVER", password: "S3RVER" }, moments: true, concurrency: 8 },
    ),
  );
  rows.push(`| reduceRemote → server (moments) | ${r.ms.toFixed(0)} | ${r.value.bytesReceived} B received for ${(r.value.bytesReduced / 2 ** 20).toFixed(1)} MiB reduced |`);
  const agree = Math.abs(Number(l.value.partials.sum[0]) - Number(r.value.partials.sum[0])) <= 1e-9 * Math.abs(Number(l.value.partials.sum[0]));

  // Small-request throughput: sum of one small object, 16 clients.
  await store.set("small", new Uint8Array(new Float32Array(1024).fill(1).buffer));
  const nReq = Number(flags.requests);
  const body = JSON.stringify({ interface_type: "s3", url: `${s3.endpoint}/bench/small`, dtype: "float32", shape: [1024], size: 4096 });
  const headers = { authorization: "Basic " + Buffer.from("S3RVER:S3RVER").toString("base64") };
  let sent = 0;
  const t = await time(() =>
    Promise.all(Array.from({ length: 16 }, async () => {
      while (sent < nReq) {
        sent++;
        const res = await fetch(`${server.url}/v2/sum`, { method: "POST", body, headers });
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`status ${res.status}`);
      }
    })),
  );
  rows.push(`| /v2/sum on a 4 KiB object (size given: one range GET), 16 clients | ${t.ms.toFixed(0)} | ${((nReq / t.ms) * 1000).toFixed(0)} requests/s |`);

  console.log(`${nChunks} chunks of ${side}×${side} float32 (shuffle+zlib, ${(stored / 2 ** 20).toFixed(1)} MiB stored), s3rver + server on 127.0.0.1`);
  console.log("| run | ms | bytes |\n|---|---|---|\n" + rows.join("\n"));
  console.log(`local and remote partials agree: ${agree}; peak server memory budget in use: ${server.budget.peak} B`);
  await server.close();
  await store.close();
  await s3.stop();
}


/** wrk on `/v2/sum` over one 1 MiB float64 chunk on nginx, raw and shuffle+zlib, per connection count. */
async function loadPart(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "activestore-bench-load-"));
  const n = MiB / 8;
  const values = new Float64Array(n).map((_, i) => Math.sin(i * 0.001) * 100 + (i % 7));
  const codecs = [{ id: "shuffle", elementsize: 8 }, { id: "zlib", level: 1 }];
  const chain = await loadCodecChain(codecs, { dataType: "float64", shape: [n] });
  const zlib = await chain.encode(new Uint8Array(values.buffer));
  await writeFile(join(dir, "raw.bin"), new Uint8Array(values.buffer));
  await writeFile(join(dir, "zlib.bin"), zlib);
  const nginx = await startBenchNginx(dir);
  const cases = [
    { name: "uncompressed", body: { url: `${nginx.url}/raw.bin`, size: MiB } },
    {
      name: "shuffle+zlib",
      body: { url: `${nginx.url}/zlib.bin`, size: zlib.length, filters: [{ id: "shuffle", element_size: 8 }], compression: { id: "zlib" } },
    },
  ];
  console.log(`\n## load: 1 MiB float64 chunk (zlib+shuffle ${(zlib.length / MiB).toFixed(2)} MiB) on nginx over HTTP, budget ${flags["budget-mib"]} MiB, wrk ${flags.seconds}s`);
  console.log("| chunk | connections | requests/s | p50 ms | p99 ms | requests | non-2xx | peak RSS MiB (idle) | peak budget in use MiB (server.budget / metrics) |");
  console.log("|---|---|---|---|---|---|---|---|---|");
  try {
    for (const c of cases) {
      for (const connections of flags.connections.split(",").map(Number)) {
        const server = await quietServer();
        const body = JSON.stringify({ interface_type: "http", dtype: "float64", shape: [n], ...c.body });
        const check = await fetch(`${server.url}/v2/sum`, { method: "POST", body, headers: { "content-type": "application/json" } });
        if (check.status !== 200) throw new Error(`${c.name}: status ${check.status}: ${await check.text()}`);
        await check.arrayBuffer();
        const idle = process.memoryUsage().rss;
        const memory = sampleMemory(server);
        const w = await runWrk(dir, `${server.url}/v2/sum`, body, connections, Number(flags.seconds));
        const m = await memory.stop();
        console.log(
          `| ${c.name} | ${connections} | ${w.requestsPerSecond.toFixed(0)} | ${w.p50Ms.toFixed(1)} | ${w.p99Ms.toFixed(1)} | ${w.requests} | ${w.non2xx} ${w.errors} | ` +
            `${(m.peakRss / MiB).toFixed(0)} (${(idle / MiB).toFixed(0)}) | ${(server.budget.peak / MiB).toFixed(1)} / ${(m.peakMetricsInUse / MiB).toFixed(1)} |`,
        );
        await server.close();
      }
    }
  } finally {
    await nginx.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * `Active.mean` of a netCDF4 file on nginx: through the server against the local engine, in
 * alternating runs (local, server, local, server, ...) so both see the same machine load, with
 * wall time and this process's CPU seconds (it holds the client, the server and their codec workers;
 * nginx is not counted).
 */
async function activePart(): Promise<void> {
  const nginx = await startBenchNginx(flags.dir);
  const server = await quietServer();
  const url = `${nginx.url}/${flags.file}`;
  try {
    console.log(`\n## active: Active.mean of ${flags.file} "data" on nginx (HTTP), server budget ${flags["budget-mib"]} MiB, ${flags.repeat} alternating rounds`);
    console.log("| round | run | open ms | mean ms | CPU s | mean | chunks | bytes received by client | chunk bytes reduced |\n|---|---|---|---|---|---|---|---|---|");
    const results: Record<string, { ms: number; cpu: number; value: number }[]> = { "local engine": [], "via server": [] };
    const concurrency = flags.concurrency === undefined ? undefined : Number(flags.concurrency);
    for (let round = 1; round <= Number(flags.repeat); round++) {
      for (const [name, options] of [["local engine", {}], ["via server", { server: server.url }]] as const) {
        const t0 = performance.now();
        const active = await Active.open(url, "data", { ...options, concurrency });
        const t1 = performance.now();
        const cpu0 = process.cpuUsage();
        const r = await active.mean();
        const ms = performance.now() - t1;
        const used = process.cpuUsage(cpu0);
        const cpu = (used.user + used.system) / 1e6;
        const value = Number(r.value);
        results[name].push({ ms, cpu, value });
        console.log(
          `| ${round} | ${name} | ${(t1 - t0).toFixed(0)} | ${ms.toFixed(0)} | ${cpu.toFixed(2)} | ${value} | ${r.chunks} | ${r.bytesRead} | ${r.bytesReduced ?? "(all received)"} |`,
        );
      }
    }
    const l = results["local engine"], s = results["via server"];
    const ratios = s.map((x, i) => x.ms / l[i].ms);
    const cpuRatios = s.map((x, i) => x.cpu / l[i].cpu);
    const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor((v.length - 1) / 2)];
    console.log(`remote / local mean time per round: ${ratios.map((r) => r.toFixed(2)).join(" ")} (median ${median(ratios).toFixed(2)}×)`);
    console.log(`remote / local CPU per round: ${cpuRatios.map((r) => r.toFixed(2)).join(" ")} (median ${median(cpuRatios).toFixed(2)}×)`);
    const reduced = s[0] ? `; means agree to ${Math.abs(s[0].value - l[0].value) / Math.abs(l[0].value)} (relative)` : "";
    console.log(`requests: ${server.metrics.render().match(/activestore_requests_total\{operation="moments\/batch",status_code="200"\} (\d+)/)?.[1] ?? 0} batches${reduced}`);
    console.log(`server peak budget in use ${(server.budget.peak / MiB).toFixed(1)} MiB of ${flags["budget-mib"]} MiB`);
  } finally {
    await server.close();
    await nginx.stop();
  }
}
