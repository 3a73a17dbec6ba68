/**
 * A decoding thread of the codec pool (pool.ts): rebuilds each codec from the same registry the main
 * thread uses and runs its on-this-thread decode. Results go back by transfer when the buffer holds
 * nothing else; anything else (Node's shared small-buffer pool, wasm memory views) is copied first.
 */
import { parentPort } from "node:worker_threads";
import { CodecError } from "../errors.js";
import { type PoolReply, type PoolRequest, type TaskSpec, setCodecThreads } from "./pool.js";
import { codecLoader, registerCodecs } from "./registry.js";
import type { BytesCodec, ChunkMeta } from "./types.js";

if (!parentPort) throw new Error("pool-worker.js runs as a worker thread of the codec pool");
const port = parentPort;
setCodecThreads(0); // a worker's codecs decode right here
registerCodecs();

const codecs = new Map<string, Promise<BytesCodec>>();
/**
 * Inputs that came in by transfer are ours once decoded: same-length codecs (shuffle) decode into
 * one of them instead of a fresh buffer, which spares the allocation, its page faults and the
 * garbage collections that external memory triggers.
 */
const spares: ArrayBuffer[] = [];
const MAX_SPARES = 4;

function spareFor(length: number): Uint8Array | undefined {
  const at = spares.findIndex((b) => b.byteLength >= length && b.byteLength - length <= Math.max(4096, length >>> 3));
  if (at < 0) return undefined;
  const [buffer] = spares.splice(at, 1);
  return new Uint8Array(buffer, 0, length);
}

/**
 * A decoded input's buffer: kept for this worker's next same-length decode, or handed back to the
 * main thread, which copies the next chunk into it instead of allocating (see pool.ts).
 */
function recycle(input: Uint8Array, output: Uint8Array, sameLength: boolean): ArrayBuffer | undefined {
  const buffer = input.buffer;
  if (!(buffer instanceof ArrayBuffer) || buffer === output.buffer || buffer.byteLength < 4096) return undefined;
  if (!sameLength) return buffer;
  spares.push(buffer);
  if (spares.length > MAX_SPARES) spares.shift();
  return undefined;
}

async function build(id: string, config: unknown, meta?: ChunkMeta): Promise<BytesCodec> {
  const load = codecLoader(id);
  if (!load) throw new CodecError(`unknown codec id "${id}" in the decoding worker`, id);
  const Codec = await load();
  return Codec.fromConfig(config, meta);
}

function codecFor(task: TaskSpec): Promise<BytesCodec> {
  let codec = codecs.get(task.key);
  if (!codec) {
    codec = build(task.id, task.config, task.meta);
    codecs.set(task.key, codec);
    codec.catch(() => codecs.delete(task.key));
  }
  return codec;
}

async function decode(task: TaskSpec, bytes: Uint8Array): Promise<{ codec: BytesCodec; out: Uint8Array }> {
  const codec = await codecFor(task);
  const into = codec.decodeInto ? spareFor(bytes.length) : undefined;
  const out = into ? codec.decodeInto!(bytes, into) : await (codec.decodeLocal ?? codec.decode).call(codec, bytes);
  if (into && out.buffer !== into.buffer) spares.push(into.buffer as ArrayBuffer); // not used after all
  return { codec, out };
}

/** A result goes back by transfer when its buffer holds nothing else, else as a copy. */
function transferable(out: Uint8Array): Uint8Array {
  const buffer = out.buffer;
  const slack = buffer.byteLength - out.byteLength;
  const own =
    buffer instanceof ArrayBuffer && out.byteOffset === 0 && out.byteLength >= 4096 && slack <= Math.max(4096, out.byteLength >>> 3);
  return own ? out : out.slice();
}

function failure(seq: number, id: string, error: unknown): PoolReply {
  if (error instanceof CodecError) {
    const prefix = `codec ${error.codec}${error.chunkKey ? ` (chunk ${error.chunkKey})` : ""}: `;
    const message = error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message;
    return { seq, ok: false, message, codec: error.codec, chunkKey: error.chunkKey };
  }
  return { seq, ok: false, message: error instanceof Error ? error.message : String(error), codec: id };
}

port.on("message", async (request: PoolRequest) => {
  if (request.kind === "exit") process.exit(request.code);
  let out: Uint8Array;
  let giveBack: ArrayBuffer | undefined;
  // Buffers the main thread is done with: outputs to decode into (or to drop here, off its heap).
  for (const gift of request.gifts ?? []) {
    spares.push(gift);
    if (spares.length > MAX_SPARES) spares.shift();
  }
  try {
    const decoded = await decode(request.task, request.bytes);
    out = transferable(decoded.out);
    giveBack = recycle(request.bytes, out, decoded.codec.decodeInto !== undefined);
  } catch (error) {
    port.postMessage(failure(request.seq, request.task.id, error));
    return;
  }
  let next: Uint8Array | undefined;
  if (request.next) {
    // Decode ahead for the codec that will most likely get `out` next; on any failure leave it to
    // that codec's own call, which reports the error properly.
    try {
      next = transferable((await decode(request.next, out)).out);
      if (next.buffer === out.buffer) next = undefined;
    } catch {
      next = undefined;
    }
  }
  const transfer = [out.buffer as ArrayBuffer];
  if (next) transfer.push(next.buffer as ArrayBuffer);
  if (giveBack) transfer.push(giveBack);
  port.postMessage({ seq: request.seq, ok: true, bytes: out, next, spare: giveBack } satisfies PoolReply, transfer);
});
