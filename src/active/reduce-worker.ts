/**
 * A reduction thread (see worker-engine.ts): gets batches of chunks (their encoded bytes, or where
 * they sit in local files), reduces each with the chunk kernel and answers with the partials only.
 * Raw chunks of local files (no codec, little-endian, C order) are read straight into an arena and
 * reduced in place, SIMD for float64, the bytes never leaving this thread's cache; everything else is
 * decoded by zarrita (worker-decode.ts, loaded on first use: a worker for raw chunks starts without
 * zarrita and the codecs).
 */
import { closeSync, openSync, readSync } from "node:fs";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { parentPort } from "node:worker_threads";
import { setCodecThreads } from "../codecs/pool.js";
import { CodecError } from "../errors.js";
import { ArenaPool } from "../stores/arena-pool.js";
import { elementsOf } from "./elements.js";
import { checkDecodedChunk, reduceChunk, type NumericArray } from "./kernel.js";
import { attachSimd, SIMD_RESERVED } from "./kernel-simd.js";
import type { Partials } from "./partials.js";
import type { BatchChunk, BatchReply, BatchRequest, WorkerRequest } from "./reduce-pool.js";

if (!parentPort) throw new Error("reduce-worker.js runs as a worker thread of the reduction pool");
const port = parentPort;
setCodecThreads(0); // this thread is the pool: codecs decode right here

/**
 * Where raw chunks are read and shuffled ones decoded: wasm memory the kernel's SIMD fold reads in
 * place. Regions are held for one chunk at a time; chunks past the arena (or a runtime without wasm
 * SIMD or the address space for it, ulimit -v) use plain buffers as before.
 */
const arena = ((): ArenaPool | undefined => {
  try {
    const pool = new ArenaPool(32 << 20, { reserved: SIMD_RESERVED, minSize: 4096 });
    return attachSimd(pool.memory) ? pool : undefined;
  } catch {
    return undefined;
  }
})();

type Decoding = typeof import("./worker-decode.js");
let decoding: Promise<Decoding> | undefined;
/** The module once loaded: what releases a chunk's decode regions (a failed load has none). */
let decoded: Decoding | undefined;

function decoder(): Promise<Decoding> {
  decoding ??= import("./worker-decode.js").then(
    (m) => {
      if (arena) m.decodeIntoArena(arena);
      decoded = m;
      return m;
    },
    (error: unknown) => {
      decoding = undefined; // answered as this chunk's failure; a later chunk tries again
      throw error;
    },
  );
  return decoding;
}

/** The codec error inside zarrita's pipeline error, re-keyed with the chunk. */
function failure(seq: number, error: unknown, chunkKey: string): BatchReply {
  let codecError: CodecError | undefined;
  let pipelineCodec: string | undefined;
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    if (e instanceof CodecError) {
      codecError = e;
      break;
    }
    if (e.name === "CodecPipelineError" && pipelineCodec === undefined) pipelineCodec = (e as { codec?: string }).codec;
  }
  if (codecError) {
    const prefix = `codec ${codecError.codec}${codecError.chunkKey ? ` (chunk ${codecError.chunkKey})` : ""}: `;
    const message = codecError.message.startsWith(prefix) ? codecError.message.slice(prefix.length) : codecError.message;
    return { seq, ok: false, kind: "codec", message, codec: codecError.codec, chunkKey };
  }
  const inner = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  const message = inner instanceof Error ? inner.message : String(inner);
  if (pipelineCodec !== undefined) return { seq, ok: false, kind: "codec", message, codec: pipelineCodec, chunkKey };
  return { seq, ok: false, kind: "other", message: `chunk ${chunkKey}: ${message}`, chunkKey };
}

/**
 * A young-generation collection after each batch. Every chunk decodes into fresh buffers (inflate
 * and unshuffle outputs) whose tiny JS handles hardly fill the young generation, so V8 let some
 * 30 MB of dead chunk bytes pile up per worker before collecting them; a scavenge per batch (well
 * under a millisecond) frees them. zlib25 whole mean: peak RSS 143-145 -> 131-132 MiB, same time.
 * V8's flags are the process's: `--expose-gc` is set only for the moment of making the one context
 * `gc` is taken from, then cleared, so no other context or worker of the process sees a global `gc`
 * (unless the process was started with it; its `gc` is then used as it is).
 */
const scavenge = ((): ((options: { type: "minor" }) => void) | undefined => {
  const own = (globalThis as { gc?: unknown }).gc;
  if (typeof own === "function") return own as (options: { type: "minor" }) => void;
  try {
    setFlagsFromString("--expose-gc");
    try {
      const gc = runInNewContext("gc") as unknown;
      return typeof gc === "function" ? (gc as (options: { type: "minor" }) => void) : undefined;
    } finally {
      setFlagsFromString("--no-expose-gc");
    }
  } catch {
    return undefined; // a runtime that refuses: V8's own pace
  }
})();

/** A local read that failed: reported as the main thread's reads report theirs (ReferenceSetError). */
class TargetError extends Error {}

/** The buffer local chunks are read into, reused chunk after chunk (decoding copies or views it). */
let scratch = new ArrayBuffer(0);
const KEEP_SCRATCH = 16 << 20;

/**
 * Reads a chunk that sits in a local file into `into`, else `scratch`; `files` holds the batch's
 * open files.
 */
function readLocal(chunk: BatchChunk & { file: string }, files: Map<string, number>, into?: Uint8Array): Uint8Array {
  let fd = files.get(chunk.file);
  if (fd === undefined) {
    try {
      fd = openSync(chunk.file, "r");
    } catch (error) {
      throw new TargetError(`target unreachable: ${(error as Error).message}`);
    }
    files.set(chunk.file, fd);
  }
  if (!into && scratch.byteLength < chunk.length) scratch = new ArrayBuffer(chunk.length);
  const view = into ?? new Uint8Array(scratch, 0, chunk.length);
  let filled = 0;
  try {
    while (filled < chunk.length) {
      const n = readSync(fd, view, filled, chunk.length - filled, chunk.offset + filled);
      if (n === 0) break;
      filled += n;
    }
  } catch (error) {
    throw new TargetError(`target unreachable: ${(error as Error).message}`);
  }
  if (filled < chunk.length) {
    throw new TargetError(`target too short: got ${filled} of ${chunk.length} bytes at offset ${chunk.offset}`);
  }
  return view;
}

/** Float partials of a batch packed in two buffers: per chunk count, sum, min, max[, m2] and nan. */
function pack(blocks: Partials[], moments: boolean): { values: Float64Array; nan: Uint8Array } {
  const fields = moments ? 5 : 4;
  let total = 0;
  for (const b of blocks) total += b.count.length;
  const values = new Float64Array(total * fields);
  const nan = new Uint8Array(total);
  let v = 0;
  let k = 0;
  for (const b of blocks) {
    values.set(b.count, v);
    values.set(b.sum as Float64Array, (v += b.count.length));
    values.set(b.min as Float64Array, (v += b.count.length));
    values.set(b.max as Float64Array, (v += b.count.length));
    v += b.count.length;
    if (moments) {
      values.set(b.m2!, v);
      v += b.count.length;
    }
    nan.set(b.nan, k);
    k += b.count.length;
  }
  return { values, nan };
}

/** One chunk's partials, or undefined once a failure was answered for the batch. */
async function reduceOne(request: BatchRequest, chunk: BatchChunk, files: Map<string, number>): Promise<Partials | undefined> {
  const raw = request.array.raw;
  let held: Uint8Array | undefined;
  try {
    if (raw && chunk.file !== undefined && chunk.length === raw.bytes) {
      held = arena?.take(chunk.length);
      const data = elementsOf(raw.dtype, readLocal(chunk as BatchChunk & { file: string }, files, held));
      if (!data) throw new Error(`chunk ${chunk.key}: no ${raw.dtype} view of its bytes`);
      return reduceChunk({ data, chunkShape: raw.chunks, pieces: chunk.pieces, collapsed: request.collapsed }, request.kernel);
    }
    const bytes =
      chunk.length < 0
        ? undefined
        : chunk.file !== undefined
          ? readLocal(chunk as BatchChunk & { file: string }, files)
          : new Uint8Array(request.buffer, chunk.offset, chunk.length);
    const decoded = await (await decoder()).decodeChunk(request.array, chunk.coords, bytes);
    checkDecodedChunk(decoded.data as NumericArray, decoded.shape, chunk.key);
    return reduceChunk(
      {
        data: decoded.data as NumericArray,
        chunkShape: decoded.shape,
        strides: decoded.stride,
        pieces: chunk.pieces,
        collapsed: request.collapsed,
      },
      request.kernel,
    );
  } catch (error) {
    if (error instanceof TargetError) {
      port.postMessage({ seq: request.seq, ok: false, kind: "target", message: error.message, chunkKey: chunk.key, url: chunk.file } satisfies BatchReply);
    } else {
      port.postMessage(failure(request.seq, error, chunk.key));
    }
    return undefined;
  } finally {
    if (held) arena!.give(held);
    decoded?.releaseDecoded();
  }
}

async function reduceBatch(request: BatchRequest): Promise<void> {
  const blocks: Partials[] = [];
  let big = false;
  const files = new Map<string, number>();
  try {
    for (const chunk of request.chunks) {
      const block = await reduceOne(request, chunk, files);
      if (!block) return;
      if (Array.isArray(block.sum)) big = true;
      blocks.push(block);
    }
  } finally {
    for (const fd of files.values()) closeSync(fd);
    if (scratch.byteLength > KEEP_SCRATCH) scratch = new ArrayBuffer(0);
  }
  if (big) {
    port.postMessage({ seq: request.seq, ok: true, blocks, buffer: request.buffer } satisfies BatchReply, [request.buffer]);
    return;
  }
  const { values, nan } = pack(blocks, request.kernel.moments === true);
  // The batch buffer goes back too (every decoded chunk is done with it), for the next batch.
  const reply: BatchReply = { seq: request.seq, ok: true, values, nan, buffer: request.buffer };
  port.postMessage(reply, [values.buffer as ArrayBuffer, nan.buffer as ArrayBuffer, request.buffer]);
}

// One batch at a time: the chunk being decoded (worker-decode.ts) is this thread's only state.
let queue: Promise<void> = Promise.resolve();

port.on("message", (request: WorkerRequest) => {
  if (request.kind === "exit") process.exit(request.code);
  if (request.kind === "release") {
    void decoding?.then((m) => m.releaseArray(request.id));
    return;
  }
  queue = queue.then(() =>
    reduceBatch(request)
      .catch((error: unknown) => {
        const message = error instanceof Error ? error.message : String(error);
        port.postMessage({ seq: request.seq, ok: false, kind: "other", message } satisfies BatchReply);
      })
      .finally(() => scavenge?.({ type: "minor" })), // once the answer is on its way
  );
});

port.postMessage({ ready: true });
