/**
 * Version 1 B-trees ("TREE" nodes, format spec III.A.1). Two node types exist:
 *  - type 0, group nodes: keys are local-heap offsets of names, leaf children are symbol table
 *    node ("SNOD") addresses;
 *  - type 1, raw data chunk nodes: keys are (chunk size, filter mask, element offsets incl. the
 *    trailing element-size dimension), leaf children are chunk addresses.
 *
 * Traversal is breadth-first, one level at a time: every node of a level is requested at once
 * (the block cache merges neighbouring reads) and children keep their left-to-right order.
 * No recursion, so depth is bounded by the level field, which we check strictly.
 */
import { Cursor, UNDEFINED_ADDRESS, type FileContext } from "./io.js";
import { Hdf5FormatError } from "../errors.js";

/** HDF5 never builds trees this deep; a larger level is a corrupt node, not a deep tree. */
const MAX_LEVEL = 64;
/** HDF5's default B-tree K (indexed storage and group internal nodes); nodes hold up to 2K entries. */
const DEFAULT_K = 32;
/** A corrupt entry count must not make every read of a level large. */
const MAX_GUESS = 64 * 1024;

export interface BTree1Options {
  signal?: AbortSignal;
}

/** One leaf entry of a raw-data chunk tree (node type 1). */
export interface BTree1ChunkRecord {
  /** Chunk address in the file. */
  address: number;
  /** Stored (filtered) size in bytes. */
  size: number;
  /** Bit i set = filter i was skipped for this chunk. */
  filterMask: number;
  /**
   * Dataset element offsets of the chunk's first element, one per dataspace dimension (the
   * trailing element-size dimension stored in the key is dropped).
   */
  offsets: number[];
}

/**
 * Addresses of the symbol table nodes ("SNOD") of a group's v1 B-tree, in key (name) order.
 * `address` is the B-tree address from the symbol table message.
 */
export async function readGroupBTree1(
  ctx: FileContext,
  address: number,
  options: BTree1Options = {},
): Promise<number[]> {
  const out: number[] = [];
  const keySize = ctx.sizes.lengthSize;
  await walk(ctx, address, 0, keySize, options, (c) => {
    c.skip(keySize); // left key: heap offset of a name, not needed to list the group
    out.push(c.offset());
  });
  return out;
}

/**
 * Every chunk of a chunked dataset indexed by a v1 B-tree (layout message v1–v3), in the
 * tree's (row-major chunk offset) order. `rank` is the dataspace rank, without the
 * element-size dimension that the keys carry.
 */
export async function readChunkBTree1(
  ctx: FileContext,
  address: number,
  rank: number,
  options: BTree1Options = {},
): Promise<BTree1ChunkRecord[]> {
  const out: BTree1ChunkRecord[] = [];
  await forEachChunkBTree1(ctx, address, rank, (address, size, filterMask, offsets) => {
    out.push({ address, size, filterMask, offsets });
  }, options);
  return out;
}

/**
 * Streaming form of readChunkBTree1: calls `visit` for each chunk in order, without building
 * intermediate records (what the chunk index uses for large trees). `offsets` is a fresh array
 * the visitor may keep.
 */
export async function forEachChunkBTree1(
  ctx: FileContext,
  address: number,
  rank: number,
  visit: (address: number, size: number, filterMask: number, offsets: number[]) => void,
  options: BTree1Options = {},
): Promise<void> {
  const keySize = 8 + 8 * (rank + 1);
  await walk(ctx, address, 1, keySize, options, (c) => {
    const size = c.u32();
    const filterMask = c.u32();
    const offsets = new Array<number>(rank);
    for (let d = 0; d < rank; d++) offsets[d] = c.uint(8);
    c.skip(8); // element-size dimension: always 0 in a key
    const chunk = c.offset();
    if (chunk === UNDEFINED_ADDRESS) throw c.error("chunk entry with undefined address");
    visit(chunk, size, filterMask, offsets);
  });
}

interface NodeHeader {
  address: number;
  level: number;
  entries: number;
}

/**
 * Shared walker: `leafEntry` is called with the cursor at each leaf entry's left key and must
 * consume key + child pointer.
 */
async function walk(
  ctx: FileContext,
  root: number,
  nodeType: number,
  keySize: number,
  options: BTree1Options,
  leafEntry: (c: Cursor) => void,
): Promise<void> {
  if (root === UNDEFINED_ADDRESS) return; // an empty tree (e.g. no chunk written yet)
  const offsetSize = ctx.sizes.offsetSize;
  const headerSize = 8 + 2 * offsetSize;
  const seen = new Set<number>();
  let level: number | undefined;
  let frontier = [root];
  let fullEntries = DEFAULT_K;
  while (frontier.length > 0) {
    options.signal?.throwIfAborted();
    for (const a of frontier) {
      if (seen.has(a)) {
        throw new Hdf5FormatError("cycle: node reached twice", a, "v1 B-tree node", {
          source: ctx.source.name,
        });
      }
      seen.add(a);
    }
    // The whole level in one batch of reads, each sized for a full node (HDF5 allocates every node
    // of a tree for 2K entries, K = 32 unless the file says otherwise). The guess can be short: the
    // nodes it missed are read again in a second batch, with their exact sizes.
    const guess = Math.min(MAX_GUESS, headerSize + (2 * fullEntries + 1) * keySize + 2 * fullEntries * offsetSize);
    const spans = await ctx.source.readSpans(frontier.map((a) => ({ offset: ctx.base + a, length: guess })));
    const cursorOf = (i: number, length: number) => {
      const bytes = spans[i];
      return bytes.length >= length
        ? new Cursor(bytes.subarray(0, length), frontier[i], "v1 B-tree node", ctx.sizes, ctx.source.name)
        : undefined;
    };
    const headers = await Promise.all(
      frontier.map(async (a, i) => readHeader(cursorOf(i, headerSize) ?? (await ctx.cursor(a, headerSize, "v1 B-tree node")), nodeType)),
    );
    const sizes = headers.map((h) => headerSize + (h.entries + 1) * keySize + h.entries * offsetSize);
    const short = frontier.flatMap((a, i) => (spans[i].length < sizes[i] ? [i] : []));
    if (short.length > 0) {
      const again = await ctx.source.readSpans(short.map((i) => ({ offset: ctx.base + frontier[i], length: sizes[i] })));
      short.forEach((i, j) => (spans[i] = again[j]));
    }
    const nodes = await Promise.all(
      frontier.map(async (a, i) => {
        // Still short only at end of file: the cached read raises the truncation error.
        const c = cursorOf(i, sizes[i]) ?? (await ctx.cursor(a, sizes[i], "v1 B-tree node"));
        c.seek(headerSize);
        return { h: headers[i], c };
      }),
    );
    for (const { h } of nodes) fullEntries = Math.max(fullEntries, h.entries / 2);
    const next: number[] = [];
    for (const { h, c } of nodes) {
      if (level === undefined) {
        if (h.level > MAX_LEVEL) throw c.error(`implausible node level ${h.level}`, h.address);
        level = h.level;
      } else if (h.level !== level) {
        throw c.error(`node level ${h.level} where ${level} was expected`, h.address);
      }
      if (h.level === 0) {
        for (let i = 0; i < h.entries; i++) leafEntry(c);
      } else {
        for (let i = 0; i < h.entries; i++) {
          c.skip(keySize);
          const child = c.offset();
          if (child === UNDEFINED_ADDRESS) throw c.error("child pointer is the undefined address");
          next.push(child);
        }
      }
    }
    if (level === 0) break;
    level = (level ?? 1) - 1;
    frontier = next;
  }
}

function readHeader(c: Cursor, nodeType: number): NodeHeader {
  const address = c.base;
  c.signature("TREE");
  const type = c.u8();
  if (type !== nodeType) throw c.error(`node type ${type} where ${nodeType} was expected`, address);
  const level = c.u8();
  const entries = c.u16();
  c.offset(); // left sibling
  c.offset(); // right sibling
  return { address, level, entries };
}
