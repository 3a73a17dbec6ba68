/**
 * One registry for every codec our references can name: zarrita's own `registry` map, which the
 * reference store, the active kernel and the server all decode through. zarrita turns each v2
 * filter `{id, ...}` into codec `numcodecs.<id>` and looks that name up here.
 */
import { registry } from "zarrita";
import { CodecError } from "../errors.js";
import { BitshuffleCodec } from "./bitshuffle.js";
import { Bz2Codec } from "./bz2.js";
import { Fletcher32Codec } from "./fletcher32.js";
import { Lz4h5Codec } from "./lz4h5.js";
import { LzfCodec } from "./lzf.js";
import { NbitCodec } from "./nbit.js";
import { ScaleOffsetCodec } from "./scaleoffset.js";
import { ShuffleCodec } from "./shuffle.js";
import { SZIP_UNSUPPORTED, SzipCodec } from "./szip.js";
import type { BytesCodecClass, CodecConfig } from "./types.js";
import { loadBlosc, loadLz4, loadZstd } from "./wasm.js";
import { GzipCodec, ZlibCodec } from "./zlib.js";

type Loader = () => Promise<BytesCodecClass>;

const loaders: Record<string, Loader> = {
  zlib: async () => ZlibCodec,
  gzip: async () => GzipCodec,
  shuffle: async () => ShuffleCodec,
  fletcher32: async () => Fletcher32Codec,
  imagecodecs_lzf: async () => LzfCodec,
  imagecodecs_lz4h5: async () => Lz4h5Codec,
  imagecodecs_bitshuffle: async () => BitshuffleCodec,
  hdf5_bitshuffle: async () => BitshuffleCodec,
  bz2: async () => Bz2Codec,
  zstd: loadZstd,
  blosc: loadBlosc,
  lz4: loadLz4,
  hdf5_scaleoffset: async () => ScaleOffsetCodec,
  hdf5_nbit: async () => NbitCodec,
  szip: async () => SzipCodec,
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
