/**
 * What a zarrita array's chunks look like to code that reads them without zarrita: their store keys,
 * whether codecs stand between the stored bytes and the elements, and whether they sit in local
 * files. The threaded engine describes an array to its workers with this.
 */
import type { LocalRange } from "../refs/reference-store.js";
import type { BufferPool } from "../stores/buffer-pool.js";
import type { ChunkSource } from "./engine.js";
import { ITEM_SIZE } from "./elements.js";
import { newArrayId, releaseWhenCollected, type ArraySpec } from "./reduce-pool.js";

/** A zarrita array as the threaded engine reads it: the chunk source plus its store and path. */
export interface ZarrArrayLike extends ChunkSource {
  readonly store: {
    get(key: string, options?: { signal?: AbortSignal; buffers?: BufferPool }): Promise<Uint8Array | undefined>;
    /** Where a chunk sits on local disk (see ReferenceStore.localRange): workers then read it themselves. */
    localRange?(key: string): Promise<LocalRange | null | undefined>;
  };
  readonly path: string;
  resolve(path: string): { path: string };
}

export interface ArrayLayout {
  spec: ArraySpec;
  /** Store key of a chunk, as zarrita reads it. */
  keyOf(coords: readonly number[]): string;
  /** Codecs beyond the plain bytes layout (compression, filters). */
  compressed: boolean;
  /**
   * Chunks are byte ranges of local files (the first chunk is): workers read them themselves, so
   * this thread neither reads nor copies them, and raw chunks are worth threads too.
   */
  local: boolean;
  /** A chunk's bytes are its elements as they are: no codec, little-endian (or one byte), C order. */
  plainElements: boolean;
}

const layouts = new WeakMap<object, Promise<ArrayLayout | undefined>>();

function isZarrArray(array: ChunkSource): array is ZarrArrayLike {
  const a = array as Partial<ZarrArrayLike>;
  return typeof a.path === "string" && typeof a.resolve === "function" && typeof a.store?.get === "function";
}

async function describe(array: ZarrArrayLike): Promise<ArrayLayout | undefined> {
  const text = (bytes: Uint8Array | undefined) => (bytes ? new TextDecoder().decode(bytes) : undefined);
  const v2 = text(await array.store.get(array.resolve(".zarray").path));
  const v3 = v2 === undefined ? text(await array.store.get(array.resolve("zarr.json").path)) : undefined;
  const doc = JSON.parse(v2 ?? v3 ?? "null") as Record<string, unknown> | null;
  if (!doc) return undefined;
  let encode: (coords: readonly number[]) => string;
  let compressed: boolean;
  let plainElements: boolean;
  if (v2 !== undefined) {
    const sep = typeof doc.dimension_separator === "string" ? doc.dimension_separator : ".";
    encode = (c) => (c.length ? c.join(sep) : "0");
    compressed = doc.compressor != null || (Array.isArray(doc.filters) && doc.filters.length > 0);
    plainElements = !compressed && typeof doc.dtype === "string" && /^[<|]/.test(doc.dtype) && doc.order !== "F";
  } else {
    const codecs = (doc.codecs ?? []) as { name: string }[];
    if (codecs.some((c) => c.name === "sharding_indexed")) return undefined; // chunks are inside shards
    const enc = (doc.chunk_key_encoding ?? { name: "default" }) as { name: string; configuration?: { separator?: string } };
    if (enc.name === "v2") {
      const sep = enc.configuration?.separator ?? ".";
      encode = (c) => (c.length ? c.join(sep) : "0");
    } else {
      const sep = enc.configuration?.separator ?? "/";
      encode = (c) => ["c", ...c].join(sep);
    }
    compressed = codecs.some((c) => c.name !== "bytes" && c.name !== "transpose");
    const only = codecs as { name: string; configuration?: { endian?: string } }[];
    plainElements = only.length === 1 && only[0].name === "bytes" && only[0].configuration?.endian !== "big";
  }
  const first = array.store.localRange ? await array.store.localRange(array.resolve(encode(array.shape.map(() => 0))).path) : null;
  return {
    local: !!first,
    spec: {
      id: newArrayId(),
      path: array.path,
      version: v2 !== undefined ? 2 : 3,
      docs: v2 !== undefined ? { ".zarray": v2 } : { "zarr.json": v3! },
      ...(plainElements && ITEM_SIZE[array.dtype] && {
        raw: { dtype: array.dtype, chunks: [...array.chunks], bytes: array.chunks.reduce((a, b) => a * b, ITEM_SIZE[array.dtype]) },
      }),
    },
    keyOf: (coords) => array.resolve(encode(coords)).path,
    compressed,
    plainElements,
  };
}

/**
 * How a worker opens `array`, or undefined when it cannot (not a zarrita array, sharded). Reads the
 * metadata document once per array (call it before counting a reduction's bytes).
 */
export function arrayLayout(array: ChunkSource): Promise<ArrayLayout | undefined> {
  if (!isZarrArray(array)) return Promise.resolve(undefined);
  let layout = layouts.get(array);
  if (!layout) {
    layout = describe(array).catch(() => undefined);
    layouts.set(array, layout);
    void layout.then((l) => l && releaseWhenCollected(array, l.spec.id));
  }
  return layout;
}
