/**
 * A decoding thread of the codec pool (pool.ts): rebuilds each codec from the same registry the main
 * thread uses and runs its on-this-thread decode. Results go back by transfer when the buffer holds
 * nothing else; anything else (Node's shared small-buffer pool, wasm memory views) is copied first.
 */
import { parentPort } from "node:worker_threads";
import { CodecError } from "../errors.js";
import { type PoolReply, type PoolRequest, setCodecThreads } from "./pool.js";
import { codecLoader, registerCodecs } from "./registry.js";
import type { BytesCodec, ChunkMeta } from "./types.js";

if (!parentPort) throw new Error("pool-worker.js runs as a worker thread of the codec pool");
const port = parentPort;
setCodecThreads(0); // a worker's codecs decode right here
registerCodecs();

const codecs = new Map<string, Promise<BytesCodec>>();

async function build(id: string, config: unknown, meta?: ChunkMeta): Promise<BytesCodec> {
  const load = codecLoader(id);
  if (!load) throw new CodecError(`unknown codec id "${id}" in the decoding worker`, id);
  const Codec = await load();
  return Codec.fromConfig(config, meta);
}

function codecFor(request: Extract<PoolRequest, { kind: "decode" }>): Promise<BytesCodec> {
  let codec = codecs.get(request.key);
  if (!codec) {
    codec = build(request.id, request.config, request.meta);
    codecs.set(request.key, codec);
    codec.catch(() => codecs.delete(request.key));
  }
  return codec;
}

function reply(seq: number, out: Uint8Array): void {
  const buffer = out.buffer;
  const slack = buffer.byteLength - out.byteLength;
  const own =
    buffer instanceof ArrayBuffer && out.byteOffset === 0 && out.byteLength >= 4096 && slack <= Math.max(4096, out.byteLength >>> 3);
  const bytes = own ? out : out.slice();
  port.postMessage({ seq, ok: true, bytes } satisfies PoolReply, [bytes.buffer as ArrayBuffer]);
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
  try {
    const codec = await codecFor(request);
    const out = await (codec.decodeLocal ?? codec.decode).call(codec, request.bytes);
    reply(request.seq, out);
  } catch (error) {
    port.postMessage(failure(request.seq, request.id, error));
  }
});
