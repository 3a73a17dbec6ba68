/**
 * Codecs for the chunk bytes our kerchunk references point at, registered into zarrita's registry by
 * `registerCodecs()` under the `numcodecs.<id>` names zarrita looks up for zarr v2 `filters`.
 * src/refs/filters.ts maps HDF5 filter pipelines onto these ids; nothing else decodes chunk bytes.
 *
 * | id                       | configuration                               | HDF5 filter        | format defined by                      | encode |
 * |--------------------------|---------------------------------------------|--------------------|----------------------------------------|--------|
 * | `zlib`                   | `level`                                     | 1 deflate          | RFC 1950 (zlib stream); numcodecs Zlib | yes    |
 * | `gzip`                   | `level`                                     | –                  | RFC 1952; numcodecs GZip               | yes    |
 * | `shuffle`                | `elementsize`                               | 2 shuffle          | H5Zshuffle.c; numcodecs Shuffle        | yes    |
 * | `fletcher32`             | –                                           | 3 fletcher32       | H5checksum.c/H5Zfletcher32.c; numcodecs Fletcher32 (4-byte LE trailer) | yes |
 * | `szip`                   | `mask, pixels_per_block, bits_per_pixel, pixels_per_scanline` | 4 szip | CCSDS 121.0 / libaec: **refused** (no JS decoder) | no |
 * | `hdf5_nbit`              | `dtype`, `parameters` (client data)         | 5 nbit             | H5Znbit.c (ours: no Python codec)      | no     |
 * | `hdf5_scaleoffset`       | `dtype`, `parameters` (client data)         | 6 scaleoffset      | H5Zscaleoffset.c (ours)                | no     |
 * | `bz2`                    | `level`                                     | 307 bzip2          | bzip2 stream; numcodecs BZ2            | no     |
 * | `imagecodecs_lzf`        | `header: false`                             | 32000 lzf          | liblzf via h5py lzf_filter.c; imagecodecs Lzf | no |
 * | `blosc`                  | `cname, clevel, shuffle, blocksize`         | 32001 blosc        | c-blosc frame; numcodecs Blosc (wasm)  | yes    |
 * | `imagecodecs_lz4h5`      | `blocksize?`                                | 32004 lz4          | HDF5 lz4 plugin framing; imagecodecs Lz4h5 | no |
 * | `imagecodecs_bitshuffle` | `itemsize, blocksize`                       | 32008, no compression | bitshuffle; imagecodecs Bitshuffle   | no     |
 * | `hdf5_bitshuffle`        | `itemsize, blocksize, compression: "lz4"`   | 32008, LZ4 mode    | bitshuffle bshuf_h5filter.c (ours)     | no     |
 * | `zstd`                   | `level`                                     | 32015 zstd         | RFC 8878 frame; numcodecs Zstd (wasm)  | yes    |
 * | `lz4`                    | `acceleration`                              | –                  | numcodecs LZ4 (u32 LE size + block)    | yes    |
 *
 * Pipeline order: HDF5 filters all work on the stored bytes, so every codec here is bytes_to_bytes.
 * zarrita sorts codecs by kind, so for a big-endian dtype the `bytes` codec it adds (array_to_bytes)
 * runs after all of them on decode, whatever its place in the v2→v3 list: stored bytes → filters in
 * reverse → big-endian bytes → values. nbit and scaleoffset therefore emit the dataset's byte order.
 *
 * Threads: big chunks (>= 64 KiB encoded or decoded) of zlib/gzip, shuffle, zstd/blosc/lz4, bz2, lzf,
 * lz4h5 and bitshuffle decode on a process-wide pool of worker threads (pool.ts; default
 * min(cores, 4), `setCodecThreads(0)` or ACTIVESTORE_CODEC_THREADS=0 turns it off).
 *
 * Errors: every failure is a CodecError naming the codec. zarrita passes codecs no chunk key and wraps
 * decode failures in its CodecPipelineError (the CodecError is its `cause`); `loadCodecChain` adds
 * the key itself. Every size read from data is checked against the chunk's size before allocating.
 */
export { BitshuffleCodec } from "./bitshuffle.js";
export { Bz2Codec } from "./bz2.js";
export { type CodecChain, loadCodecChain } from "./chain.js";
export { Fletcher32Codec, fletcher32 } from "./fletcher32.js";
export { lz4DecodeBlock } from "./lz4-block.js";
export { Lz4h5Codec } from "./lz4h5.js";
export { LzfCodec, lzfDecompress } from "./lzf.js";
export { NbitCodec } from "./nbit.js";
export { assertCodecsSupported, CODEC_IDS, registerCodecs } from "./registry.js";
export { closeCodecPool, codecThreads, setCodecThreads } from "./pool.js";
export { ScaleOffsetCodec } from "./scaleoffset.js";
export { ShuffleCodec } from "./shuffle.js";
export { SzipCodec } from "./szip.js";
export type { BytesCodec, ChunkMeta, CodecConfig } from "./types.js";
export { GzipCodec, ZlibCodec } from "./zlib.js";
