/**
 * A bytes-level codec chain for callers that hold raw chunk bytes rather than a zarrita array (the
 * active kernel, the server, tests). It resolves ids through the same registry zarrita uses, and
 * applies a v2 filter list the way zarrita does: encode in list order, decode in reverse.
 */
import { CodecError } from "../errors.js";
import { codecLoader } from "./registry.js";
import { type BytesCodec, type ChunkMeta, type CodecConfig, bytesPerElement } from "./types.js";

export interface CodecChain {
  encode(bytes: Uint8Array, chunkKey?: string): Promise<Uint8Array>;
  decode(bytes: Uint8Array, chunkKey?: string): Promise<Uint8Array>;
}

export async function loadCodecChain(configs: readonly CodecConfig[], meta: ChunkMeta): Promise<CodecChain> {
  const codecs: { id: string; codec: BytesCodec }[] = [];
  for (const { id, ...configuration } of configs) {
    const load = codecLoader(id);
    if (!load) throw new CodecError(`unknown codec id "${id}" (was registerCodecs() called?)`, id);
    const Codec = await load();
    const codec = Codec.fromConfig(configuration, meta);
    if (codec.kind !== "bytes_to_bytes") {
      throw new CodecError(`is ${String(codec.kind)}, a bytes-level chain needs bytes_to_bytes codecs`, id);
    }
    codecs.push({ id, codec });
  }
  const size = bytesPerElement(meta.dataType);
  const expected = size === undefined ? undefined : meta.shape.reduce((a, b) => a * b, size);
  const run = async (id: string, step: () => Uint8Array | Promise<Uint8Array>, chunkKey?: string) => {
    try {
      return await step();
    } catch (cause) {
      throw withChunk(cause, id, chunkKey);
    }
  };
  return {
    async encode(bytes, chunkKey) {
      for (const { id, codec } of codecs) bytes = await run(id, () => codec.encode(bytes), chunkKey);
      return bytes;
    },
    async decode(bytes, chunkKey) {
      for (let i = codecs.length - 1; i >= 0; i--) {
        const { id, codec } = codecs[i];
        bytes = await run(id, () => codec.decode(bytes), chunkKey);
      }
      // Codecs without a checksum can turn a damaged chunk into a plausible byte string; a wrong
      // length is the one thing we can always catch.
      if (expected !== undefined && bytes.length !== expected) {
        const last = codecs[0]?.id ?? "none";
        throw new CodecError(`decoded ${bytes.length} bytes, the chunk holds ${expected}`, last, chunkKey);
      }
      return bytes;
    },
  };
}

/** Codecs cannot know the chunk key; the chain does, so it adds it to the error. */
function withChunk(cause: unknown, id: string, chunkKey?: string): CodecError {
  if (cause instanceof CodecError) {
    if (!chunkKey || cause.chunkKey) return cause;
    const message = cause.message.replace(`codec ${cause.codec}: `, "");
    return new CodecError(message, cause.codec, chunkKey, { cause });
  }
  const message = cause instanceof Error ? cause.message : String(cause);
  return new CodecError(message, id, chunkKey, { cause });
}
