/**
 * Active-storage server benchmark: one array of compressed float32 chunks in s3rver, reduced
 * (a) locally — every chunk fetched, decoded and reduced in this process — and (b) remotely with
 * reduceRemote against our server on the same machine (moments protocol), plus small-request
 * throughput. Everything is local, so this measures overheads and bytes moved, not a WAN.
 *
 *   npx vite-node bench/server.ts -- [--chunks 64] [--chunk-mib 1] [--requests 400]
 */
import { parseArgs } from "node:util";
import { reduceArray, type ChunkSource } from "../src/active/engine.js";
import { reduceRemote, type RemoteChunk } from "../src/active/remote.js";
import { loadCodecChain, registerCodecs } from "../src/codecs/index.js";
import { startServer } from "../src/server/index.js";
import { S3Store } from "../src/stores/s3.js";
import { S3RVER_CREDENTIALS, startS3rver } from "../test/servers/s3rver.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
const { values: flags } = parseArgs({
  options: { chunks: { type: "string", default: "64" }, "chunk-mib": { type: "string", default: "1" }, requests: { type: "string", default: "400" } },
  allowPositionals: true,
});
const nChunks = Number(flags.chunks);
const side = Math.round(Math.sqrt((Number(flags["chunk-mib"]) * 2 ** 20) / 4));
const chunkShape = [side, side];
const shape = [side * nChunks, side];

registerCodecs();
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
