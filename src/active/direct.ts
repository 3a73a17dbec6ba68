/**
 * Raw chunks read straight from local files by the in-thread engine: when a chunk's bytes are its
 * elements (no codec, little-endian, C order) and its reference points into a plain local file, the
 * engine reads those bytes into its buffer pool itself and hands the kernel a typed view of them,
 * the very array zarrita's decode would have made. That skips the store layers and zarrita's per
 * chunk work, and lets the engine keep just a few reads in flight: copies out of the page cache are
 * bound by memory bandwidth, so more of them at once only slow each other down (raw75 whole mean in
 * bench/active, 5 runs each, twice: 3 in flight 0.21-0.30 s, 2: 0.29-0.39, 4: 0.25-0.33; 16 was
 * worse still in a standalone pipeline of reads and SIMD sums).
 */
import { open } from "node:fs/promises";
import { ReferenceSetError } from "../errors.js";
import type { BufferPool } from "../stores/buffer-pool.js";
import { HandleCache, type OpenFile } from "../stores/handle-cache.js";
import { stridesOf } from "../util/strides.js";
import { elementsOf, ITEM_SIZE } from "./elements.js";
import type { NumericArray } from "./kernel.js";
import type { ArrayLayout, ZarrArrayLike } from "./layout.js";

/** Reads in flight when chunks are read here (the engine's default concurrency then). */
export const DIRECT_READS = 3;

export interface DirectChunk {
  data: NumericArray;
  shape: number[];
  stride: number[];
}

export class DirectReader {
  private readonly files = new HandleCache(8);
  private readonly elements: number;
  private readonly stride: number[];
  private readonly itemSize: number;

  private constructor(
    private readonly array: ZarrArrayLike,
    private readonly layout: ArrayLayout,
    private readonly buffers: BufferPool,
  ) {
    this.elements = array.chunks.reduce((a, b) => a * b, 1);
    this.stride = stridesOf(array.chunks);
    this.itemSize = ITEM_SIZE[array.dtype];
  }

  /** A reader for this array's chunks, or undefined when zarrita must decode them. */
  static for(array: ZarrArrayLike, layout: ArrayLayout | undefined, buffers: BufferPool | undefined): DirectReader | undefined {
    if (!layout?.local || !layout.plainElements || !buffers || !array.store.localRange || !ITEM_SIZE[array.dtype]) return undefined;
    return new DirectReader(array, layout, buffers);
  }

  /**
   * The chunk's elements, or undefined when it is not a plain range of a local file (never
   * written, inline, elsewhere): zarrita reads that one.
   */
  async getChunk(coords: readonly number[], signal?: AbortSignal): Promise<DirectChunk | undefined> {
    const key = this.layout.keyOf(coords);
    const range = await this.array.store.localRange!(key);
    const itemSize = this.itemSize;
    if (!range || range.length !== this.elements * itemSize) return undefined;
    signal?.throwIfAborted();
    const name = key.replace(/^\/+/, "");
    const bytes = this.buffers.take(range.length);
    let filled = 0;
    try {
      // A few files open at once, least recently used closed: a set over thousands of files must
      // not run out of descriptors.
      filled = await this.files.with(range.path, () => openFile(range.path), async (file) => {
        let n = 0;
        while (n < bytes.length) {
          const { bytesRead } = await file!.handle.read(bytes, n, bytes.length - n, range.offset + n);
          if (bytesRead === 0) break;
          n += bytesRead;
        }
        return n;
      });
    } catch (cause) {
      throw new ReferenceSetError(`target unreachable: ${(cause as Error).message}`, name, range.path, { cause });
    }
    if (filled < bytes.length) {
      this.buffers.give(bytes);
      throw new ReferenceSetError(`target too short: got ${filled} of ${range.length} bytes at offset ${range.offset}`, name, range.path);
    }
    const data = elementsOf(this.array.dtype, bytes);
    if (!data) {
      this.buffers.give(bytes);
      return undefined; // never with the pools' aligned buffers; zarrita copies such bytes
    }
    return { data, shape: [...this.array.chunks], stride: this.stride };
  }

  async close(): Promise<void> {
    await this.files.closeAll();
  }
}

async function openFile(path: string): Promise<OpenFile> {
  const handle = await open(path, "r");
  return { handle, size: 0 };
}
