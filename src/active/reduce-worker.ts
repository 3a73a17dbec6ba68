/**
 * A reduction thread (see worker-engine.ts): gets batches of ENCODED chunks, decodes each with
 * zarrita itself — an Array opened over a tiny store that serves the array's metadata document and
 * the bytes of the chunk being decoded — reduces it with the chunk kernel and answers with the
 * partials only. Decoding through zarrita keeps v2/v3, endianness, order, codecs and the fill chunk
 * of a never-written chunk exactly as the main thread would have them.
 */
import { closeSync, openSync, readSync } from "node:fs";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { parentPort } from "node:worker_threads";
import * as zarr from "zarrita";
import type { AsyncReadable } from "@zarrita/storage";
import { setCodecThreads } from "../codecs/pool.js";
import { decodeShufflesInto } from "../codecs/shuffle.js";
import { ShuffleArena } from "../codecs/shuffle-simd.js";
import { CODEC_IDS, codecLoader, registerCodecs } from "../codecs/registry.js";
import type { BytesCodecClass } from "../codecs/types.js";
import { CodecError } from "../errors.js";
import { ArenaPool } from "../stores/arena-pool.js";
import { checkDecodedChunk, reduceChunk, type NumericArray } from "./kernel.js";
import { attachSimd, SIMD_RESERVED } from "./kernel-simd.js";
import type { Partials } from "./partials.js";
import type { ArraySpec, BatchChunk, BatchReply, BatchRequest, WorkerRequest } from "./reduce-pool.js";

if (!parentPort) throw new Error("reduce-worker.js runs as a worker thread of the reduction pool");
const port = parentPort;
setCodecThreads(0); // this thread is the pool: codecs decode right here
registerCodecs();
// Our codecs, decoding with `decodeLocal` (what the codec pool's workers run): without a pool, zlib's
// `decode` would take node's async API for big chunks, a thread hop and a stream object per chunk
// on a thread that has nothing else to do.
for (const id of CODEC_IDS) {
  const load = codecLoader(id)!;
  zarr.registry.set(`numcodecs.${id}`, (async () => decodingHere(await load())) as Parameters<typeof zarr.registry.set>[1]);
}

/**
 * Shuffled chunks of 4- and 8-byte elements decode into an arena: a SIMD unshuffle, after which the
 * kernel's SIMD fold reads float64 elements in place (zlib25 whole mean: unshuffle and fold were a
 * fifth of a worker's time). Two regions per chunk, released after each; chunks past 16 MiB, or a
 * runtime without wasm SIMD or address space for it (ulimit -v), decode as before.
 */
const shuffles = ((): ShuffleArena | undefined => {
  try {
    const arena = new ArenaPool(32 << 20, { reserved: SIMD_RESERVED, minSize: 4096 });
    const target = attachSimd(arena.memory) ? ShuffleArena.attach(arena) : undefined;
    decodeShufflesInto(target);
    return target;
  } catch {
    return undefined;
  }
})();

function decodingHere(Codec: BytesCodecClass): BytesCodecClass {
  return {
    kind: Codec.kind,
    fromConfig(config, meta) {
      const codec = Codec.fromConfig(config, meta);
      if (codec.decodeLocal) codec.decode = codec.decodeLocal.bind(codec);
      return codec;
    },
  };
}

/** Serves the metadata documents, and for any other key the chunk being decoded right now. */
class BatchStore implements AsyncReadable {
  current: Uint8Array | undefined;
  constructor(private readonly docs: Map<string, Uint8Array>) {}
  get(key: string): Promise<Uint8Array | undefined> {
    return Promise.resolve(this.docs.get(key) ?? this.current);
  }
}

interface OpenArray {
  store: BatchStore;
  array: zarr.Array<zarr.DataType, BatchStore>;
}

const arrays = new Map<number, Promise<OpenArray>>();

async function openArray(spec: ArraySpec): Promise<OpenArray> {
  const encoder = new TextEncoder();
  const location = zarr.root().resolve(spec.path);
  const docs = new Map<string, Uint8Array>();
  for (const [name, text] of Object.entries(spec.docs)) docs.set(location.resolve(name).path, encoder.encode(text));
  const store = new BatchStore(docs);
  const at = zarr.root(store).resolve(spec.path);
  const array =
    spec.version === 2
      ? await zarr.open.v2(at, { kind: "array", attrs: false })
      : await zarr.open.v3(at, { kind: "array" });
  return { store, array };
}

function arrayFor(spec: ArraySpec): Promise<OpenArray> {
  let open = arrays.get(spec.id);
  if (!open) {
    open = openArray(spec);
    arrays.set(spec.id, open);
    open.catch(() => arrays.delete(spec.id));
  }
  return open;
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

/** Reads a chunk that sits in a local file into `scratch`; `files` holds the batch's open files. */
function readLocal(chunk: BatchChunk & { file: string }, files: Map<string, number>): Uint8Array {
  let fd = files.get(chunk.file);
  if (fd === undefined) {
    try {
      fd = openSync(chunk.file, "r");
    } catch (error) {
      throw new TargetError(`target unreachable: ${(error as Error).message}`);
    }
    files.set(chunk.file, fd);
  }
  if (scratch.byteLength < chunk.length) scratch = new ArrayBuffer(chunk.length);
  const view = new Uint8Array(scratch, 0, chunk.length);
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
async function reduceOne(
  request: BatchRequest,
  chunk: BatchChunk,
  store: BatchStore,
  array: OpenArray["array"],
  files: Map<string, number>,
): Promise<Partials | undefined> {
  try {
    if (chunk.length < 0) store.current = undefined;
    else if (chunk.file !== undefined) store.current = readLocal(chunk as BatchChunk & { file: string }, files);
    else store.current = new Uint8Array(request.buffer, chunk.offset, chunk.length);
    const decoded = await array.getChunk(chunk.coords);
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
    store.current = undefined;
    shuffles?.release();
  }
}

async function reduceBatch(request: BatchRequest): Promise<void> {
  const { array, store } = await arrayFor(request.array);
  const blocks: Partials[] = [];
  let big = false;
  const files = new Map<string, number>();
  try {
    for (const chunk of request.chunks) {
      const block = await reduceOne(request, chunk, store, array, files);
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

// One batch at a time: the store's `current` chunk is this thread's only state per decode.
let queue: Promise<void> = Promise.resolve();

port.on("message", (request: WorkerRequest) => {
  if (request.kind === "exit") process.exit(request.code);
  if (request.kind === "release") {
    arrays.delete(request.id);
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
