/**
 * Fixed array index (layout v4 type 3, datasets with fixed maximum dimensions): a "FAHD" header
 * and one "FADB" data block holding one element per chunk of the maximum-shape grid, row-major.
 * Data blocks with more than 2^pageBits elements are paged: the block header carries a bitmap of
 * initialized pages, and each page has its own checksum. Pages never written hold no chunks.
 */
import type { Cursor, FileContext } from "../io.js";
import { UNDEFINED_ADDRESS, verifyChecksum } from "../io.js";
import type { ChunkEntry } from "../model.js";
import type { ArrayElementReader } from "./common.js";

interface FixedArrayHeader {
  clientId: number;
  elementSize: number;
  pageBits: number;
  elements: number;
  dataBlock: number;
}

const PREFIX = 6; // signature, version, client id
/** Pages per read of a paged data block (64 pages of 1024 8-byte entries: 512 KiB). */
const WINDOW_PAGES = 64;

async function readHeader(ctx: FileContext, address: number): Promise<{ h: FixedArrayHeader; c: Cursor }> {
  const size = PREFIX + 2 + ctx.sizes.lengthSize + ctx.sizes.offsetSize + 4;
  const c = await ctx.cursor(address, size, "fixed array header");
  c.signature("FAHD");
  const version = c.u8();
  if (version !== 0) throw c.error(`unknown fixed array header version ${version}`, address);
  const h: FixedArrayHeader = {
    clientId: c.u8(),
    elementSize: c.u8(),
    pageBits: c.u8(),
    elements: c.length(),
    dataBlock: c.offset(),
  };
  verifyChecksum(c, 0, size - 4);
  return { h, c };
}

/**
 * Every written chunk of a fixed-array-indexed dataset. `expectedEntries` is the chunk count of
 * the maximum-shape grid; `reader` knows the element encoding (filtered or not).
 */
export async function readFixedArrayChunks(
  ctx: FileContext,
  address: number,
  expectedEntries: number,
  reader: ArrayElementReader,
  signal?: AbortSignal,
): Promise<ChunkEntry[]> {
  if (address === UNDEFINED_ADDRESS) return [];
  const { h, c: hc } = await readHeader(ctx, address);
  const filtered = reader.sizeWidth > 0;
  const elementSize = ctx.sizes.offsetSize + (filtered ? reader.sizeWidth + 4 : 0);
  if (h.clientId !== (filtered ? 1 : 0)) {
    throw hc.error(`client id ${h.clientId} for a ${filtered ? "filtered" : "unfiltered"} dataset`, address);
  }
  if (h.elementSize !== elementSize) {
    throw hc.error(`element size ${h.elementSize}, expected ${elementSize}`, address);
  }
  if (h.elements !== expectedEntries) {
    throw hc.error(`${h.elements} entries, but the chunk grid has ${expectedEntries}`, address);
  }
  if (h.pageBits > 31) throw hc.error(`implausible page bits ${h.pageBits}`, address);
  const out: ChunkEntry[] = [];
  if (h.dataBlock === UNDEFINED_ADDRESS || h.elements === 0) return out;

  const pageElements = 2 ** h.pageBits;
  const headerPart = PREFIX + ctx.sizes.offsetSize;
  if (h.elements <= pageElements) {
    // One unpaged block: prefix, elements, checksum — a single read.
    const size = headerPart + h.elements * elementSize + 4;
    const c = await ctx.cursor(h.dataBlock, size, "fixed array data block");
    checkBlockPrefix(c, address);
    verifyChecksum(c, 0, size - 4);
    reader.read(c, 0, h.elements, out);
    return out;
  }

  const pages = Math.ceil(h.elements / pageElements);
  const bitmapSize = Math.ceil(pages / 8);
  const prefixSize = headerPart + bitmapSize + 4;
  const pc = await ctx.cursor(h.dataBlock, prefixSize, "fixed array data block");
  checkBlockPrefix(pc, address);
  const bitmap = pc.take(bitmapSize);
  verifyChecksum(pc, 0, prefixSize - 4);
  const initialized = (p: number) => (bitmap[p >> 3] & (0x80 >> (p & 7))) !== 0;

  // Pages are read in windows: one read per window from its first to its last initialized
  // page (skipped pages cost bytes, not round trips), and a huge array never becomes one
  // giant buffer. The windows are requested together.
  const fullPage = pageElements * elementSize + 4;
  const pageCount = (p: number) => (p === pages - 1 ? h.elements - p * pageElements : pageElements);
  const windows: Promise<ChunkEntry[]>[] = [];
  for (let w = 0; w < pages; w += WINDOW_PAGES) {
    let first = -1;
    let last = -1;
    for (let p = w; p < Math.min(pages, w + WINDOW_PAGES); p++) {
      if (initialized(p)) {
        if (first < 0) first = p;
        last = p;
      }
    }
    if (first < 0) continue;
    const start = h.dataBlock + prefixSize + first * fullPage;
    const span = (last - first) * fullPage + pageCount(last) * elementSize + 4;
    windows.push(
      ctx.cursor(start, span, "fixed array data block page").then((c) => {
        signal?.throwIfAborted();
        const part: ChunkEntry[] = [];
        for (let p = first; p <= last; p++) {
          if (!initialized(p)) continue;
          const at = (p - first) * fullPage;
          c.seek(at);
          verifyChecksum(c, at, at + pageCount(p) * elementSize);
          reader.read(c, p * pageElements, pageCount(p), part);
        }
        return part;
      }),
    );
  }
  for (const part of await Promise.all(windows)) for (const entry of part) out.push(entry);
  return out;
}

function checkBlockPrefix(c: Cursor, headerAddress: number): void {
  c.signature("FADB");
  const version = c.u8();
  if (version !== 0) throw c.error(`unknown fixed array data block version ${version}`, c.base);
  c.u8(); // client id, already checked in the header
  const owner = c.offset();
  if (owner !== headerAddress) {
    throw c.error(`data block belongs to header ${owner}, not ${headerAddress}`, c.base);
  }
}
