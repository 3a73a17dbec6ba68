/**
 * Transparent compression of whole objects, recorded as the object's Content-Encoding. gzip and
 * brotli use node:zlib (libuv's thread pool); zstd uses numcodecs' wasm build because Node 20's zlib
 * has no zstd.
 */
import { promisify } from "node:util";
import * as zlib from "node:zlib";
import type { Compression } from "./types.js";

const gzip = promisify(zlib.gzip);
const gunzip = promisify(zlib.gunzip);
const brotliCompress = promisify(zlib.brotliCompress);
const brotliDecompress = promisify(zlib.brotliDecompress);

interface ZstdCodec {
  encode(data: Uint8Array): Promise<Uint8Array>;
  decode(data: Uint8Array): Promise<Uint8Array>;
}

const zstdCodecs = new Map<number, Promise<ZstdCodec>>();
function zstd(level: number): Promise<ZstdCodec> {
  let codec = zstdCodecs.get(level);
  if (!codec) {
    codec = import("numcodecs/zstd").then((m) => m.default.fromConfig({ level }) as ZstdCodec);
    zstdCodecs.set(level, codec);
  }
  return codec;
}

export const COMPRESSIONS: readonly Compression[] = ["gzip", "br", "zstd"];

export function isCompression(value: string): value is Compression {
  return (COMPRESSIONS as readonly string[]).includes(value);
}

/** Content-Encodings that mean "stored as is". */
export function isIdentityEncoding(encoding: string | undefined): boolean {
  return encoding === undefined || encoding === "" || encoding === "identity";
}

export async function compress(
  data: Uint8Array,
  method: Compression,
  level?: number,
): Promise<Uint8Array> {
  switch (method) {
    case "gzip":
      return new Uint8Array(await gzip(data, { level: level ?? 6 }));
    case "br":
      return new Uint8Array(
        await brotliCompress(data, {
          params: {
            [zlib.constants.BROTLI_PARAM_QUALITY]: level ?? 6,
            [zlib.constants.BROTLI_PARAM_SIZE_HINT]: data.length,
          },
        }),
      );
    case "zstd":
      return (await zstd(level ?? 3)).encode(data);
  }
}

/** Undoes a Content-Encoding; throws (a plain Error, wrapped by the caller) on corrupt input. */
export async function decompress(data: Uint8Array, encoding: Compression): Promise<Uint8Array> {
  switch (encoding) {
    case "gzip":
      return new Uint8Array(await gunzip(data));
    case "br":
      return new Uint8Array(await brotliDecompress(data));
    case "zstd":
      return (await zstd(3)).decode(data);
  }
}
