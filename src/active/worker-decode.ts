/**
 * Decoding in a reduction worker, through zarrita: an Array opened over a tiny store that serves the
 * array's metadata document and the bytes of the chunk being decoded. Decoding through zarrita keeps
 * v2/v3, endianness, order, codecs and the fill chunk of a never-written chunk exactly as the main
 * thread would have them. Loaded by reduce-worker.ts on the first chunk that needs it, so a worker
 * that only reduces raw chunks starts without zarrita and the codecs.
 */
import * as zarr from "zarrita";
import type { AsyncReadable } from "@zarrita/storage";
import { decodeShufflesInto } from "../codecs/shuffle.js";
import { ShuffleArena } from "../codecs/shuffle-simd.js";
import { CODEC_IDS, codecLoader, registerCodecs } from "../codecs/registry.js";
import type { BytesCodecClass } from "../codecs/types.js";
import type { ArenaPool } from "../stores/arena-pool.js";
import type { ArraySpec } from "./reduce-pool.js";

registerCodecs();
// Our codecs, decoding with `decodeLocal` (what the codec pool's workers run): without a pool, zlib's
// `decode` would take node's async API for big chunks, a thread hop and a stream object per chunk
// on a thread that has nothing else to do.
for (const id of CODEC_IDS) {
  const load = codecLoader(id)!;
  zarr.registry.set(`numcodecs.${id}`, (async () => decodingHere(await load())) as Parameters<typeof zarr.registry.set>[1]);
}

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

let shuffles: ShuffleArena | undefined;

/**
 * Shuffled chunks of 4- and 8-byte elements decode into `arena`: a SIMD unshuffle, after which the
 * kernel's SIMD fold reads float64 elements in place (zlib25 whole mean: unshuffle and fold were a
 * fifth of a worker's time). Two regions per chunk, released by `releaseDecoded` after each.
 */
export function decodeIntoArena(arena: ArenaPool): void {
  shuffles = ShuffleArena.attach(arena);
  decodeShufflesInto(shuffles);
}

/** Gives back what the last chunk's decode took from the arena. */
export function releaseDecoded(): void {
  shuffles?.release();
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

/** Forgets an array the main thread no longer has. */
export function releaseArray(id: number): void {
  arrays.delete(id);
}

/** A chunk decoded by zarrita from its stored `bytes` (undefined: never written, the fill chunk). */
export async function decodeChunk(spec: ArraySpec, coords: number[], bytes: Uint8Array | undefined): Promise<zarr.Chunk<zarr.DataType>> {
  const { store, array } = await arrayFor(spec);
  store.current = bytes;
  try {
    return await array.getChunk(coords);
  } finally {
    store.current = undefined;
  }
}
