/**
 * Fractal heap ("FRHP" header, "FHIB" indirect and "FHDB" direct blocks): where dense groups keep
 * link messages and dense attribute storage keeps attribute messages. Objects are found by heap
 * ID: managed objects by walking the doubling table from the root block to the direct block that
 * holds the object's heap offset; tiny objects live inside the ID itself.
 */
import { UnsupportedFeatureError } from "../errors.js";
import { readBTree2Records, type BTree2RecordDecoder } from "./btree2.js";
import { Cursor, FileContext, UNDEFINED_ADDRESS, verifyChecksum } from "./io.js";
import { memo } from "./memo.js";

/** floor(log2(n)) / 8 + 1: bytes HDF5 uses to encode values up to n. */
function encodedSize(n: number): number {
  return Math.floor(Math.floor(Math.log2(Math.max(1, n))) / 8) + 1;
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && Number.isSafeInteger(n) && Number.isInteger(Math.log2(n));
}

export class FractalHeap {
  readonly heapIdLength: number;
  readonly maxManagedSize: number;
  readonly tableWidth: number;
  readonly startBlockSize: number;
  readonly maxDirectBlockSize: number;
  readonly maxHeapBits: number;
  readonly rootAddress: number;
  readonly rootRows: number;
  /** v2 B-tree (record type 1) that maps huge object IDs to their address and length. */
  readonly hugeIndexAddress: number;
  private readonly hugeObjects = new Map<0, Promise<Map<number, HugeObject>>>();
  private readonly indirectBlocks = new Map<number, Promise<number[]>>();
  private readonly directBlocks = new Map<number, Promise<void>>();
  readonly filtered: boolean;
  readonly checksummedDirectBlocks: boolean;
  /** Rows of a doubling table that hold direct blocks; later rows hold indirect blocks. */
  readonly maxDirectRows: number;
  readonly offsetBytes: number;
  readonly lengthBytes: number;

  constructor(
    private readonly ctx: FileContext,
    readonly address: number,
    c: Cursor,
  ) {
    c.signature("FRHP");
    const version = c.u8();
    if (version !== 0) throw c.error(`unknown fractal heap version ${version}`, address);
    this.heapIdLength = c.u16();
    const filterLength = c.u16();
    const flags = c.u8();
    this.maxManagedSize = c.u32();
    c.length(); // next huge object id
    this.hugeIndexAddress = c.offset();
    c.length(); // free space
    c.offset(); // free space manager
    for (let i = 0; i < 8; i++) c.length(); // managed/allocated/iterator/counts of managed, huge, tiny
    this.tableWidth = c.u16();
    this.startBlockSize = c.length();
    this.maxDirectBlockSize = c.length();
    this.maxHeapBits = c.u16();
    c.u16(); // starting rows of the root indirect block
    this.rootAddress = c.offset();
    this.rootRows = c.u16();
    this.filtered = filterLength > 0;
    if (this.filtered) c.skip(this.ctx.sizes.lengthSize + 4 + filterLength);
    verifyChecksum(c, 0, c.pos);
    this.checksummedDirectBlocks = (flags & 0x02) !== 0;
    if (this.tableWidth === 0 || this.tableWidth > 65536 || !isPowerOfTwo(this.tableWidth)) {
      throw c.error(`invalid doubling table width ${this.tableWidth}`, address);
    }
    for (const [what, n] of [["starting block size", this.startBlockSize], ["maximum direct block size", this.maxDirectBlockSize]] as const) {
      if (!isPowerOfTwo(n) || n > 2 ** 40) throw c.error(`invalid ${what} ${n}`, address);
    }
    if (this.maxHeapBits < 1 || this.maxHeapBits > 64) throw c.error(`invalid maximum heap size ${this.maxHeapBits} bits`, address);
    this.maxDirectRows = Math.log2(this.maxDirectBlockSize) - Math.log2(this.startBlockSize) + 2;
    this.offsetBytes = Math.ceil(this.maxHeapBits / 8);
    this.lengthBytes = Math.min(encodedSize(this.maxDirectBlockSize), encodedSize(this.maxManagedSize));
  }

  /** Size of the blocks in row `row` of a doubling table. */
  private blockSize(row: number): number {
    return row === 0 ? this.startBlockSize : this.startBlockSize * 2 ** (row - 1);
  }

  /** The bytes of the object named by a heap ID. */
  async object(id: Uint8Array, where: string): Promise<Uint8Array> {
    const c = new Cursor(id, this.address, "fractal heap ID", this.ctx.sizes, this.ctx.source.name);
    const first = c.u8();
    if (first >> 6 !== 0) throw c.error(`unknown heap ID version ${first >> 6}`);
    const kind = (first >> 4) & 0x03;
    if (kind === 2) {
      // Tiny: the object is the ID's remaining bytes; the extended form spends a second length byte.
      const extended = this.heapIdLength > 18;
      const length = extended ? (((first & 0x0f) << 8) | c.u8()) + 1 : (first & 0x0f) + 1;
      return c.take(length).slice();
    }
    if (kind === 1) return this.huge(c, where);
    if (kind !== 0) throw c.error(`unknown heap ID type ${kind}`);
    if (this.filtered) {
      throw new UnsupportedFeatureError("filtered fractal heap", `${where} (heap at offset ${this.address})`);
    }
    const offset = c.uint(this.offsetBytes);
    const length = c.uint(this.lengthBytes);
    return this.managed(offset, length);
  }

  /**
   * Huge objects (larger than the managed maximum) live outside the heap's blocks. When the heap ID
   * is wide enough it holds their address and length; otherwise it holds a key into a v2 B-tree.
   */
  private async huge(c: Cursor, where: string): Promise<Uint8Array> {
    if (this.filtered) {
      throw new UnsupportedFeatureError("filtered fractal heap huge object", `${where} (heap at offset ${this.address})`);
    }
    const { offsetSize, lengthSize } = this.ctx.sizes;
    if (this.heapIdLength >= 1 + offsetSize + lengthSize) {
      const address = c.offset();
      const length = c.length();
      return (await this.ctx.cursor(address, length, "fractal heap huge object")).bytes;
    }
    const key = c.uint(Math.min(this.heapIdLength - 1, lengthSize));
    const index = memo(this.hugeObjects, 0, () =>
      readBTree2Records(this.ctx, this.hugeIndexAddress, decodeHugeRecord).then((records) => new Map(records.map((r) => [r.id, r]))),
    );
    const object = (await index).get(key);
    if (!object) throw this.error(`huge object ${key} not in the heap's huge object index`, this.hugeIndexAddress);
    return (await this.ctx.cursor(object.address, object.length, "fractal heap huge object")).bytes;
  }

  private async managed(offset: number, length: number): Promise<Uint8Array> {
    if (this.rootAddress === UNDEFINED_ADDRESS) {
      throw new Cursor(new Uint8Array(0), this.address, "fractal heap", this.ctx.sizes, this.ctx.source.name).error("object in an empty heap");
    }
    let block = this.rootAddress;
    let rows = this.rootRows;
    let within = offset;
    let blockSize = this.startBlockSize;
    const seen = new Set<number>();
    // Descend indirect blocks; each level narrows `within` to an offset inside the child.
    while (rows > 0) {
      if (seen.has(block)) throw this.error(`indirect block cycle at ${block}`, block);
      seen.add(block);
      const { row, col, rest } = this.locate(within, rows, block);
      // Entries run row by row: direct blocks first, then indirect ones, which is the same order.
      const children = await this.indirectChildren(block, rows);
      const child = children[row * this.tableWidth + col];
      if (child === UNDEFINED_ADDRESS) throw this.error(`heap offset ${offset} is in an unallocated block`, block);
      blockSize = this.blockSize(row);
      within = rest;
      block = child;
      rows = row < this.maxDirectRows ? 0 : Math.log2(blockSize) - Math.log2(this.startBlockSize * this.tableWidth) + 1;
      if (seen.size > 64) throw this.error("fractal heap nested too deeply", block);
    }
    const header = 5 + this.ctx.sizes.offsetSize + this.offsetBytes + (this.checksummedDirectBlocks ? 4 : 0);
    if (within < header || within + length > blockSize) {
      throw this.error(`object at heap offset ${offset} (+${length}) outside its ${blockSize}-byte direct block`, block);
    }
    await memo(this.directBlocks, block, async () => {
      (await this.ctx.cursor(block, 4, "fractal heap direct block")).signature("FHDB");
    });
    return (await this.ctx.cursor(block + within, length, "fractal heap direct block")).bytes;
  }

  /** Child block addresses of an indirect block with `rows` rows, read and checked once. */
  private indirectChildren(block: number, rows: number): Promise<number[]> {
    return memo(this.indirectBlocks, block, async () => {
      const count = rows * this.tableWidth;
      const size = 5 + this.ctx.sizes.offsetSize + this.offsetBytes + count * this.ctx.sizes.offsetSize + 4;
      const c = await this.ctx.cursor(block, size, "fractal heap indirect block");
      c.signature("FHIB");
      c.skip(1 + this.ctx.sizes.offsetSize + this.offsetBytes); // version, heap header, block offset
      const children: number[] = [];
      for (let i = 0; i < count; i++) children.push(c.offset());
      verifyChecksum(c, 0, c.pos);
      return children;
    });
  }

  /** Row and column of the doubling-table entry that covers `offset`, and the offset inside it. */
  private locate(offset: number, rows: number, block: number): { row: number; col: number; rest: number } {
    let start = 0;
    for (let row = 0; row < rows; row++) {
      const size = this.blockSize(row);
      const span = size * this.tableWidth;
      if (offset < start + span) {
        const col = Math.floor((offset - start) / size);
        return { row, col, rest: offset - start - col * size };
      }
      start += span;
    }
    throw this.error(`heap offset ${offset} beyond the indirect block's ${rows} rows`, block);
  }

  private error(message: string, at: number) {
    return new Cursor(new Uint8Array(0), at, "fractal heap", this.ctx.sizes, this.ctx.source.name).error(message, at);
  }
}

interface HugeObject {
  id: number;
  address: number;
  length: number;
}

/** v2 B-tree record type 1: an indirectly accessed, unfiltered huge object. */
const decodeHugeRecord: BTree2RecordDecoder<HugeObject> = (c, header) => {
  if (header.type !== 1) throw c.error(`huge object index has record type ${header.type}, expected 1`, header.address);
  const address = c.offset();
  const length = c.length();
  return { address, length, id: c.length() };
};

export async function readFractalHeap(ctx: FileContext, address: number): Promise<FractalHeap> {
  const o = ctx.sizes.offsetSize;
  const l = ctx.sizes.lengthSize;
  const fixed = 4 + 1 + 2 + 2 + 1 + 4 + 12 * l + 3 * o + 2 + 2 + 2 + 2 + 4;
  const c = await ctx.cursorUpTo(address, fixed + l + 4 + 1024, "fractal heap header");
  return new FractalHeap(ctx, address, c);
}
