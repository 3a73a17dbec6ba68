/**
 * Version 2 B-trees (format spec III.A.2): a "BTHD" header, "BTIN" internal and "BTLF" leaf
 * nodes, each with a lookup3 checksum. The walker is generic: it knows node geometry only, and a
 * per-record-type decoder turns each record's bytes into a value.
 *
 * Nodes are read one level at a time with every node of the level requested together, then the
 * records are emitted in key order (an in-order walk), so creation-order indexes (types 6, 9)
 * come back in creation order and name indexes (5, 8) in hash order.
 */
import { Hdf5FormatError } from "../errors.js";
import type { Cursor, FileContext } from "./io.js";
import { UNDEFINED_ADDRESS, verifyChecksum } from "./io.js";

/** Signature + version + type before the records; checksum after them. */
const NODE_PREFIX = 6;
const CHECKSUM = 4;
/** A depth beyond this cannot be addressed with 64-bit record counts; the header is corrupt. */
const MAX_DEPTH = 64;

export interface BTree2Header {
  /** File address of the "BTHD" header. */
  address: number;
  /** Record type: 1–11 (5/6 links, 8/9 attributes, 10/11 dataset chunks, ...). */
  type: number;
  nodeSize: number;
  recordSize: number;
  /** 0 = the root is a leaf. */
  depth: number;
  splitPercent: number;
  mergePercent: number;
  rootAddress: number;
  rootRecords: number;
  totalRecords: number;
}

/** Decodes one record; the cursor is at the record's first byte. */
export type BTree2RecordDecoder<T> = (cursor: Cursor, header: BTree2Header) => T;

export interface BTree2Options {
  signal?: AbortSignal;
}

export async function readBTree2Header(ctx: FileContext, address: number): Promise<BTree2Header> {
  const o = ctx.sizes.offsetSize;
  const size = 4 + 1 + 1 + 4 + 2 + 2 + 1 + 1 + o + 2 + ctx.sizes.lengthSize + CHECKSUM;
  const c = await ctx.cursor(address, size, "v2 B-tree header");
  c.signature("BTHD");
  const version = c.u8();
  if (version !== 0) throw c.error(`unknown v2 B-tree header version ${version}`, address);
  const header: BTree2Header = {
    address,
    type: c.u8(),
    nodeSize: c.u32(),
    recordSize: c.u16(),
    depth: c.u16(),
    splitPercent: c.u8(),
    mergePercent: c.u8(),
    rootAddress: c.offset(),
    rootRecords: c.u16(),
    totalRecords: c.length(),
  };
  verifyChecksum(c, 0, size - CHECKSUM);
  if (header.recordSize === 0 || header.nodeSize <= NODE_PREFIX + CHECKSUM + header.recordSize) {
    throw c.error(
      `node size ${header.nodeSize} cannot hold a record of ${header.recordSize} bytes`,
      address,
    );
  }
  if (header.depth > MAX_DEPTH) throw c.error(`implausible tree depth ${header.depth}`, address);
  return header;
}

/**
 * Every record of the v2 B-tree whose header is at `address`, decoded with `decode`, in key
 * order. An empty tree (undefined root) yields [].
 */
export async function readBTree2Records<T>(
  ctx: FileContext,
  address: number,
  decode: BTree2RecordDecoder<T>,
  options: BTree2Options = {},
): Promise<T[]> {
  const header = await readBTree2Header(ctx, address);
  return readBTree2RecordsWithHeader(ctx, header, decode, options);
}

/** Same, with an already parsed header (to pick the decoder by `header.type` first). */
export async function readBTree2RecordsWithHeader<T>(
  ctx: FileContext,
  header: BTree2Header,
  decode: BTree2RecordDecoder<T>,
  options: BTree2Options = {},
): Promise<T[]> {
  if (header.rootAddress === UNDEFINED_ADDRESS || header.totalRecords === 0) return [];
  const geometry = nodeGeometry(header, ctx.sizes.offsetSize);
  const nodes = new Map<number, ParsedNode<T>>();
  let frontier: ChildPointer[] = [{ address: header.rootAddress, records: header.rootRecords }];
  for (let depth = header.depth; frontier.length > 0; depth--) {
    options.signal?.throwIfAborted();
    const parsed = await Promise.all(
      frontier.map((p) => readNode(ctx, header, geometry, p, depth, decode, nodes)),
    );
    frontier = [];
    for (const n of parsed) frontier.push(...n.children);
    if (depth === 0 && frontier.length > 0) {
      throw new Hdf5FormatError("leaf with children", header.address, "v2 B-tree");
    }
  }
  const out: T[] = [];
  emit(nodes, header.rootAddress, out);
  if (out.length !== header.totalRecords) {
    throw new Hdf5FormatError(
      `found ${out.length} records, header says ${header.totalRecords}`,
      header.address,
      "v2 B-tree header",
      { source: ctx.source.name },
    );
  }
  return out;
}

interface ChildPointer {
  address: number;
  records: number;
}

interface ParsedNode<T> {
  records: T[];
  children: ChildPointer[];
}

interface Geometry {
  /** Maximum records per node, by depth (0 = leaf). */
  maxRecords: number[];
  /** Bytes of the "records in child" field of a child pointer. */
  recordCountSize: number;
  /** Bytes of the "total records below child" field, by depth of the child (0 for leaves). */
  totalCountSize: number[];
}

/** Node capacities and pointer field widths follow from node and record sizes alone. */
function nodeGeometry(header: BTree2Header, offsetSize: number): Geometry {
  const overhead = NODE_PREFIX + CHECKSUM;
  const leafMax = Math.floor((header.nodeSize - overhead) / header.recordSize);
  const maxRecords = [leafMax];
  const cumulative = [leafMax];
  const totalCountSize = [0];
  const recordCountSize = bytesFor(leafMax);
  for (let d = 1; d <= header.depth; d++) {
    const pointer = offsetSize + recordCountSize + totalCountSize[d - 1];
    const max = Math.floor((header.nodeSize - (overhead + pointer)) / (header.recordSize + pointer));
    if (max < 1) {
      throw new Hdf5FormatError(
        `node size ${header.nodeSize} leaves no room for records at depth ${d}`,
        header.address,
        "v2 B-tree header",
      );
    }
    const below = (max + 1) * cumulative[d - 1] + max;
    if (!Number.isSafeInteger(below)) {
      throw new Hdf5FormatError(`record counts overflow at depth ${d}`, header.address, "v2 B-tree header");
    }
    maxRecords.push(max);
    cumulative.push(below);
    totalCountSize.push(bytesFor(cumulative[d]));
  }
  return { maxRecords, recordCountSize, totalCountSize };
}

/** Bytes needed to encode counts up to `n`: floor(log2(n) / 8) + 1. */
function bytesFor(n: number): number {
  return n < 1 ? 1 : Math.floor(Math.floor(Math.log2(n)) / 8) + 1;
}

async function readNode<T>(
  ctx: FileContext,
  header: BTree2Header,
  g: Geometry,
  pointer: ChildPointer,
  depth: number,
  decode: BTree2RecordDecoder<T>,
  nodes: Map<number, ParsedNode<T>>,
): Promise<ParsedNode<T>> {
  const leaf = depth === 0;
  const structure = leaf ? "v2 B-tree leaf node" : "v2 B-tree internal node";
  const { address, records: count } = pointer;
  if (address === UNDEFINED_ADDRESS) {
    throw new Hdf5FormatError("child pointer is the undefined address", header.address, structure);
  }
  if (nodes.has(address)) {
    throw new Hdf5FormatError("cycle: node reached twice", address, structure, {
      source: ctx.source.name,
    });
  }
  if (count > g.maxRecords[depth]) {
    throw new Hdf5FormatError(
      `${count} records exceed the node capacity ${g.maxRecords[depth]}`,
      address,
      structure,
      { source: ctx.source.name },
    );
  }
  const pointerSize = leaf
    ? 0
    : ctx.sizes.offsetSize + g.recordCountSize + g.totalCountSize[depth - 1];
  const used = NODE_PREFIX + count * header.recordSize + (leaf ? 0 : (count + 1) * pointerSize);
  if (used + CHECKSUM > header.nodeSize) {
    throw new Hdf5FormatError(`${count} records do not fit a ${header.nodeSize}-byte node`, address, structure, {
      source: ctx.source.name,
    });
  }
  const node: ParsedNode<T> = { records: new Array<T>(count), children: [] };
  nodes.set(address, node);
  const c = await ctx.cursor(address, used + CHECKSUM, structure);
  c.signature(leaf ? "BTLF" : "BTIN");
  const version = c.u8();
  if (version !== 0) throw c.error(`unknown node version ${version}`, address);
  const type = c.u8();
  if (type !== header.type) throw c.error(`record type ${type} in a type ${header.type} tree`, address);
  verifyChecksum(c, 0, used);
  for (let i = 0; i < count; i++) {
    const start = NODE_PREFIX + i * header.recordSize;
    c.seek(start);
    node.records[i] = decode(c, header);
    if (c.pos > start + header.recordSize) throw c.error("record decoder overran the record", address + start);
  }
  if (!leaf) {
    c.seek(NODE_PREFIX + count * header.recordSize);
    for (let i = 0; i <= count; i++) {
      const child = c.offset();
      const records = c.uint(g.recordCountSize);
      if (depth > 1) c.skip(g.totalCountSize[depth - 1]);
      node.children.push({ address: child, records });
    }
  }
  return node;
}

/** In-order: child 0, record 0, child 1, record 1, ..., child n. Depth is bounded by MAX_DEPTH. */
function emit<T>(nodes: Map<number, ParsedNode<T>>, address: number, out: T[]): void {
  const node = nodes.get(address)!;
  if (node.children.length === 0) {
    for (const r of node.records) out.push(r);
    return;
  }
  for (let i = 0; i < node.records.length; i++) {
    emit(nodes, node.children[i].address, out);
    out.push(node.records[i]);
  }
  emit(nodes, node.children[node.records.length].address, out);
}

// ---- Record decoders for the types the reader needs ------------------------------------------

/** Type 5: link in a dense-storage group, indexed by name hash. */
export interface LinkNameRecord {
  hash: number;
  /** Fractal heap ID of the link message (opaque; resolved against the group's fractal heap). */
  heapId: Uint8Array;
}

/** Type 6: link in a dense-storage group, indexed by creation order. */
export interface LinkCreationOrderRecord {
  creationOrder: number;
  heapId: Uint8Array;
}

/** Type 8: densely stored attribute, indexed by name hash. */
export interface AttributeNameRecord {
  heapId: Uint8Array;
  /** Message flags (bit 1 = shared message). */
  flags: number;
  creationOrder: number;
  hash: number;
}

/** Type 9: densely stored attribute, indexed by creation order. */
export interface AttributeCreationOrderRecord {
  heapId: Uint8Array;
  flags: number;
  creationOrder: number;
}

/** Types 10 (unfiltered) and 11 (filtered) chunk records of a dataset's v2 B-tree index. */
export interface ChunkRecord {
  address: number;
  /** Stored size for type 11; undefined for type 10 (every chunk is the full chunk size). */
  size: number | undefined;
  filterMask: number;
  /** Chunk grid coordinates (element offset / chunk dimension), one per dataspace dimension. */
  scaled: number[];
}

function expectType(c: Cursor, h: BTree2Header, type: number): void {
  if (h.type !== type) throw c.error(`type ${type} decoder used on a type ${h.type} tree`, h.address);
}

function heapIdWidth(c: Cursor, h: BTree2Header, fixed: number): number {
  const n = h.recordSize - fixed;
  if (n < 1) throw c.error(`record size ${h.recordSize} leaves no room for a heap ID`, h.address);
  return n;
}

export const decodeLinkNameRecord: BTree2RecordDecoder<LinkNameRecord> = (c, h) => {
  expectType(c, h, 5);
  const hash = c.u32();
  return { hash, heapId: c.take(heapIdWidth(c, h, 4)).slice() };
};

export const decodeLinkCreationOrderRecord: BTree2RecordDecoder<LinkCreationOrderRecord> = (c, h) => {
  expectType(c, h, 6);
  const creationOrder = c.uint(8);
  return { creationOrder, heapId: c.take(heapIdWidth(c, h, 8)).slice() };
};

export const decodeAttributeNameRecord: BTree2RecordDecoder<AttributeNameRecord> = (c, h) => {
  expectType(c, h, 8);
  const heapId = c.take(heapIdWidth(c, h, 9)).slice();
  return { heapId, flags: c.u8(), creationOrder: c.u32(), hash: c.u32() };
};

export const decodeAttributeCreationOrderRecord: BTree2RecordDecoder<AttributeCreationOrderRecord> = (
  c,
  h,
) => {
  expectType(c, h, 9);
  const heapId = c.take(heapIdWidth(c, h, 5)).slice();
  return { heapId, flags: c.u8(), creationOrder: c.u32() };
};

/**
 * Decoder for chunk records (types 10 and 11) of a dataset of rank `rank`. The width of the
 * filtered "chunk size" field is whatever the record size leaves after address, filter mask and
 * coordinates, which the writer derived from the chunk's byte size.
 */
export function chunkRecordDecoder(rank: number): BTree2RecordDecoder<ChunkRecord> {
  return (c, h) => {
    const o = c.sizes.offsetSize;
    if (h.type !== 10 && h.type !== 11) {
      throw c.error(`chunk decoder used on a type ${h.type} tree`, h.address);
    }
    const sizeWidth = h.type === 11 ? h.recordSize - o - 4 - 8 * rank : 0;
    const expected = h.type === 10 ? o + 8 * rank : o + sizeWidth + 4 + 8 * rank;
    if (expected !== h.recordSize || (h.type === 11 && (sizeWidth < 1 || sizeWidth > 8))) {
      throw c.error(
        `record size ${h.recordSize} does not fit a type ${h.type} chunk record of rank ${rank}`,
        h.address,
      );
    }
    const address = c.offset();
    const size = h.type === 11 ? c.uint(sizeWidth) : undefined;
    const filterMask = h.type === 11 ? c.u32() : 0;
    const scaled = new Array<number>(rank);
    for (let d = 0; d < rank; d++) scaled[d] = c.uint(8);
    return { address, size, filterMask, scaled };
  };
}
