/**
 * Extensible array index (layout v4 type 4, datasets with exactly one unlimited dimension).
 *
 * Structure: an "EAHD" header; an "EAIB" index block holding the first few elements directly,
 * then addresses of the data blocks of the first super blocks, then addresses of the remaining
 * "EASB" super blocks; each super block lists its "EADB" data blocks. Super block s has
 * 2^floor(s/2) data blocks of 2^floor((s+1)/2) * minElements elements. Data blocks larger than
 * 2^pageBits elements are paged, with page-initialized bitmaps kept in the super block.
 *
 * Element i is the chunk whose coordinates, with the unlimited dimension moved first, have
 * row-major index i over the chunk grid of the fixed dimensions.
 */
import type { Cursor, FileContext } from "../io.js";
import { UNDEFINED_ADDRESS, verifyChecksum } from "../io.js";
import type { ChunkEntry } from "../model.js";
import type { ArrayElementReader } from "./common.js";

const PREFIX = 6; // signature, version, client id

interface ExtensibleArrayHeader {
  address: number;
  clientId: number;
  elementSize: number;
  maxBits: number;
  indexElements: number;
  minElements: number;
  minPointers: number;
  pageBits: number;
  /** One past the highest element index ever set. */
  maxIndexSet: number;
  indexBlock: number;
}

interface SuperBlockInfo {
  dataBlocks: number;
  dataBlockElements: number;
  /** First element index covered (not counting index block elements). */
  start: number;
  /** Running count of data blocks before this super block. */
  firstDataBlock: number;
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && Number.isInteger(Math.log2(n));
}

async function readHeader(ctx: FileContext, address: number): Promise<ExtensibleArrayHeader> {
  const { offsetSize, lengthSize } = ctx.sizes;
  const size = PREFIX + 6 + 6 * lengthSize + offsetSize + 4;
  const c = await ctx.cursor(address, size, "extensible array header");
  c.signature("EAHD");
  const version = c.u8();
  if (version !== 0) throw c.error(`unknown extensible array header version ${version}`, address);
  const clientId = c.u8();
  const elementSize = c.u8();
  const maxBits = c.u8();
  const indexElements = c.u8();
  const minElements = c.u8();
  const minPointers = c.u8();
  const pageBits = c.u8();
  c.skip(4 * lengthSize); // super/data block counts and sizes: statistics only
  const maxIndexSet = c.length();
  c.length(); // elements realized
  const indexBlock = c.offset();
  verifyChecksum(c, 0, size - 4);
  if (maxBits === 0 || maxBits > 53 || pageBits > 31) {
    throw c.error(`implausible parameters: max bits ${maxBits}, page bits ${pageBits}`, address);
  }
  if (!isPowerOfTwo(minElements) || !isPowerOfTwo(minPointers)) {
    throw c.error(`min elements ${minElements} and min pointers ${minPointers} must be powers of two`, address);
  }
  if (maxIndexSet > 2 ** maxBits) throw c.error(`max index ${maxIndexSet} beyond 2^${maxBits}`, address);
  return {
    address, clientId, elementSize, maxBits, indexElements, minElements, minPointers, pageBits,
    maxIndexSet, indexBlock,
  };
}

function superBlockTable(h: ExtensibleArrayHeader): SuperBlockInfo[] {
  const count = 1 + h.maxBits - Math.log2(h.minElements);
  const table: SuperBlockInfo[] = [];
  let start = 0;
  let firstDataBlock = 0;
  for (let s = 0; s < count; s++) {
    const dataBlocks = 2 ** Math.floor(s / 2);
    const dataBlockElements = 2 ** Math.floor((s + 1) / 2) * h.minElements;
    table.push({ dataBlocks, dataBlockElements, start, firstDataBlock });
    start += dataBlocks * dataBlockElements;
    firstDataBlock += dataBlocks;
  }
  return table;
}

export async function readExtensibleArrayChunks(
  ctx: FileContext,
  address: number,
  reader: ArrayElementReader,
  signal?: AbortSignal,
): Promise<ChunkEntry[]> {
  if (address === UNDEFINED_ADDRESS) return [];
  const h = await readHeader(ctx, address);
  const hc = await ctx.cursor(address, 0, "extensible array header");
  const filtered = reader.sizeWidth > 0;
  const elementSize = ctx.sizes.offsetSize + (filtered ? reader.sizeWidth + 4 : 0);
  if (h.clientId !== (filtered ? 1 : 0)) {
    throw hc.error(`client id ${h.clientId} for a ${filtered ? "filtered" : "unfiltered"} dataset`);
  }
  if (h.elementSize !== elementSize) throw hc.error(`element size ${h.elementSize}, expected ${elementSize}`);
  const out: ChunkEntry[] = [];
  if (h.indexBlock === UNDEFINED_ADDRESS || h.maxIndexSet === 0) return out;

  const o = ctx.sizes.offsetSize;
  const table = superBlockTable(h);
  const direct = 2 * Math.log2(h.minPointers); // super blocks whose data blocks the index block lists
  const directDataBlocks = 2 * (h.minPointers - 1);
  const superBlockAddrs = Math.max(0, table.length - direct);
  const blockOffsetSize = Math.ceil(h.maxBits / 8);
  const pageElements = 2 ** h.pageBits;

  // Index block: elements, data block addresses, super block addresses, checksum.
  const ibSize = PREFIX + o + h.indexElements * elementSize + (directDataBlocks + superBlockAddrs) * o + 4;
  const ib = await ctx.cursor(h.indexBlock, ibSize, "extensible array index block");
  checkPrefix(ib, "EAIB", h);
  verifyChecksum(ib, 0, ibSize - 4);
  const inIndex = Math.min(h.indexElements, h.maxIndexSet);
  reader.read(ib, 0, inIndex, out);
  ib.seek(PREFIX + o + h.indexElements * elementSize);
  const dataBlockAddrs: number[] = [];
  for (let i = 0; i < directDataBlocks; i++) dataBlockAddrs.push(ib.offset());
  const superAddrs: number[] = [];
  for (let i = 0; i < superBlockAddrs; i++) superAddrs.push(ib.offset());

  // Blocks in element order; super blocks are requested together, then all data blocks, so a
  // remote file costs a few round trips rather than one per block.
  const groups: (Block[] | Promise<Block[]>)[] = [];
  for (let s = 0; s < table.length; s++) {
    const info = table[s];
    const first = h.indexElements + info.start;
    if (first >= h.maxIndexSet) break;
    if (s < direct) {
      if (info.dataBlockElements > pageElements) {
        throw hc.error(`index-block data blocks of ${info.dataBlockElements} elements would be paged`);
      }
      for (let b = 0; b < info.dataBlocks; b++) {
        const addr = dataBlockAddrs[info.firstDataBlock + b];
        const blockStart = info.start + b * info.dataBlockElements;
        if (addr !== UNDEFINED_ADDRESS && h.indexElements + blockStart < h.maxIndexSet) {
          groups.push([{ address: addr, blockStart, elements: info.dataBlockElements, pages: undefined, direct: true }]);
        }
      }
    } else {
      const addr = superAddrs[s - direct];
      if (addr === UNDEFINED_ADDRESS) continue;
      groups.push(readSuperBlock(ctx, h, addr, info, blockOffsetSize, pageElements));
    }
  }
  const blocks = (await Promise.all(groups)).flat();
  signal?.throwIfAborted();
  const parts = await Promise.all(
    blocks.map(async (block) => {
      const part: ChunkEntry[] = [];
      await readDataBlock(ctx, h, block, elementSize, blockOffsetSize, pageElements, reader, part);
      return part;
    }),
  );
  for (const part of parts) for (const entry of part) out.push(entry);
  return out;
}

/** A data block to read; `pages` is its page-initialized bitmap when paged. */
interface Block {
  address: number;
  /** Element index of its first element, not counting index block elements. */
  blockStart: number;
  elements: number;
  pages: ((p: number) => boolean) | undefined;
  /**
   * Listed by the index block. HDF5 writes these blocks' "block offset" field from their
   * position in the index block's list rather than within their super block, so it does not
   * equal the first element's index; it is informational and we do not check it there.
   */
  direct: boolean;
}

async function readSuperBlock(
  ctx: FileContext,
  h: ExtensibleArrayHeader,
  address: number,
  info: SuperBlockInfo,
  blockOffsetSize: number,
  pageElements: number,
): Promise<Block[]> {
  const o = ctx.sizes.offsetSize;
  const paged = info.dataBlockElements > pageElements;
  const pagesPerBlock = paged ? info.dataBlockElements / pageElements : 0;
  const bitmapBytes = paged ? Math.ceil(pagesPerBlock / 8) : 0;
  const size = PREFIX + o + blockOffsetSize + info.dataBlocks * (bitmapBytes + o) + 4;
  const c = await ctx.cursor(address, size, "extensible array super block");
  checkPrefix(c, "EASB", h);
  const blockOffset = c.uint(blockOffsetSize);
  if (blockOffset !== info.start) throw c.error(`block offset ${blockOffset}, expected ${info.start}`, address);
  const bitmaps = c.take(info.dataBlocks * bitmapBytes);
  const blocks: Block[] = [];
  for (let b = 0; b < info.dataBlocks; b++) {
    const addr = c.offset();
    const blockStart = info.start + b * info.dataBlockElements;
    if (addr === UNDEFINED_ADDRESS || h.indexElements + blockStart >= h.maxIndexSet) continue;
    // One bit string for all data blocks: bit (block * pages + page), most significant first.
    const bit0 = b * pagesPerBlock;
    blocks.push({
      address: addr,
      blockStart,
      elements: info.dataBlockElements,
      pages: paged ? (p) => (bitmaps[(bit0 + p) >> 3] & (0x80 >> ((bit0 + p) & 7))) !== 0 : undefined,
      direct: false,
    });
  }
  verifyChecksum(c, 0, size - 4);
  return blocks;
}

async function readDataBlock(
  ctx: FileContext,
  h: ExtensibleArrayHeader,
  block: Block,
  elementSize: number,
  blockOffsetSize: number,
  pageElements: number,
  reader: ArrayElementReader,
  out: ChunkEntry[],
): Promise<void> {
  const o = ctx.sizes.offsetSize;
  const header = PREFIX + o + blockOffsetSize;
  const firstIndex = h.indexElements + block.blockStart;
  // Elements past the highest index ever set were never written (fill value); skip them.
  const live = Math.min(block.elements, h.maxIndexSet - firstIndex);
  if (block.pages === undefined) {
    const size = header + block.elements * elementSize + 4;
    const c = await ctx.cursor(block.address, size, "extensible array data block");
    checkPrefix(c, "EADB", h);
    if (block.direct) c.skip(blockOffsetSize);
    else checkBlockOffset(c, blockOffsetSize, block.blockStart);
    verifyChecksum(c, 0, size - 4);
    reader.read(c, firstIndex, live, out);
    return;
  }
  const pages = block.elements / pageElements;
  const livePages = Math.ceil(live / pageElements);
  const pc = await ctx.cursor(block.address, header + 4, "extensible array data block");
  checkPrefix(pc, "EADB", h);
  checkBlockOffset(pc, blockOffsetSize, block.blockStart);
  verifyChecksum(pc, 0, header);
  let first = -1;
  let last = -1;
  for (let p = 0; p < Math.min(pages, livePages); p++) {
    if (block.pages(p)) {
      if (first < 0) first = p;
      last = p;
    }
  }
  if (first < 0) return;
  const pageSize = pageElements * elementSize + 4;
  const c = await ctx.cursor(
    block.address + header + 4 + first * pageSize,
    (last - first + 1) * pageSize,
    "extensible array data block page",
  );
  for (let p = first; p <= last; p++) {
    if (!block.pages(p)) continue;
    const at = (p - first) * pageSize;
    c.seek(at);
    verifyChecksum(c, at, at + pageSize - 4);
    const count = Math.min(pageElements, live - p * pageElements);
    reader.read(c, firstIndex + p * pageElements, count, out);
  }
}

function checkPrefix(c: Cursor, signature: string, h: ExtensibleArrayHeader): void {
  c.signature(signature);
  const version = c.u8();
  if (version !== 0) throw c.error(`unknown version ${version}`, c.base);
  const clientId = c.u8();
  if (clientId !== h.clientId) throw c.error(`client id ${clientId}, header says ${h.clientId}`, c.base);
  const owner = c.offset();
  if (owner !== h.address) throw c.error(`block belongs to header ${owner}, not ${h.address}`, c.base);
}

function checkBlockOffset(c: Cursor, size: number, expected: number): void {
  const got = c.uint(size);
  if (got !== expected) throw c.error(`block offset ${got}, expected ${expected}`, c.base);
}
