/**
 * One registry for every codec our references can name: zarrita's own `registry` map, which the
 * reference store, the active kernel and the server all decode through. zarrita turns each v2
 * filter `{id, ...}` into codec `numcodecs.<id>` and looks that name up here.
 */
import { registry } from "zarrita";
import { CodecError } from "../errors.js";
import { SZIP_UNSUPPORTED } from "./szip.js";
import type { BytesCodecClass, CodecConfig } from "./types.js";

type Loader = () => Promise<BytesCodecClass>;

// Each codec's module loads when zarrita first builds that codec: a process (or reduction worker)
// reading zlib+shuffle data never loads bz2, lz4 or the wasm codecs.
const loaders: Record<string, Loader> = {
  zlib: async () => (await import("./zlib.js")).ZlibCodec,
  gzip: async () => (await import("./zlib.js")).GzipCodec,
  shuffle: async () => (await import("./shuffle.js")).ShuffleCodec,
  fletcher32: async () => (await import("./fletcher32.js")).Fletcher32Codec,
  imagecodecs_lzf: async () => (await import("./lzf.js")).LzfCodec,
  imagecodecs_lz4h5: async () => (await import("./lz4h5.js")).Lz4h5Codec,
  imagecodecs_bitshuffle: async () => (await import("./bitshuffle.js")).BitshuffleCodec,
  hdf5_bitshuffle: async () => (await import("./bitshuffle.js")).BitshuffleCodec,
  bz2: async () => (await import("./bz2.js")).Bz2Codec,
  zstd: async () => (await import("./wasm.js")).loadZstd(),
  blosc: async () => (await import("./wasm.js")).loadBlosc(),
  lz4: async () => (await import("./wasm.js")).loadLz4(),
  hdf5_scaleoffset: async () => (await import("./scaleoffset.js")).ScaleOffsetCodec,
  hdf5_nbit: async () => (await import("./nbit.js")).NbitCodec,
  szip: async () => (await import("./szip.js")).SzipCodec,
};

/** The v2 codec ids we register (without zarrita's `numcodecs.` prefix). */
export const CODEC_IDS: readonly string[] = Object.freeze(Object.keys(loaders));

/** Register every codec into zarrita's registry. Safe to call any number of times. */
export function registerCodecs(): void {
  for (const [id, load] of Object.entries(loaders)) {
    registry.set(`numcodecs.${id}`, load as Parameters<typeof registry.set>[1]);
  }
}

/** The loader for a v2 codec id, or undefined when nobody registered it. */
export function codecLoader(id: string): Loader | undefined {
  return (loaders[id] ?? registry.get(`numcodecs.${id}`)) as Loader | undefined;
}

/**
 * Fail now, not at the first chunk read, for codecs we know we cannot run (szip) or do not know.
 * zarrita itself only builds codecs when a chunk is first encoded or decoded.
 */
export function assertCodecsSupported(configs: readonly CodecConfig[], where?: string): void {
  for (const config of configs) {
    if (config.id === "szip") throw new CodecError(SZIP_UNSUPPORTED + (where ? ` (${where})` : ""), "szip");
    if (!codecLoader(config.id)) {
      throw new CodecError(`unknown codec id "${config.id}"${where ? ` in ${where}` : ""}`, config.id);
    }
  }
}
