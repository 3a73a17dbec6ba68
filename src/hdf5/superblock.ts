/**
 * Superblock: finds the format signature (at 0, 512, 1024, ... when the file has a user block) and
 * decodes versions 0–3. Everything else in the file is addressed relative to the signature's offset.
 */
import { Hdf5FormatError } from "../errors.js";
import { CachedSource, Cursor, UNDEFINED_ADDRESS, verifyChecksum } from "./io.js";

const SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

/** Cached location of the root group's symbol table (superblock v0/v1 scratch pad). */
export interface SymbolTableCache {
  btreeAddress: number;
  heapAddress: number;
}

export interface Superblock {
  version: number;
  /** Absolute file offset of the signature; addresses in the file are relative to it. */
  base: number;
  offsetSize: number;
  lengthSize: number;
  /** End-of-file address as recorded by the writer (from the start of the file, user block included). */
  eofAddress: number;
  rootAddress: number;
  /** v0/v1 only, when the root entry caches its symbol table. */
  rootSymbolTable?: SymbolTableCache;
  /** v2/v3: address of the superblock extension object header, if any. */
  extensionAddress?: number;
  groupLeafK?: number;
  groupInternalK?: number;
}

/** Names a well-known non-HDF5 format from the first bytes, so the error says what the file is. */
export function describeForeignFormat(head: Uint8Array): string | undefined {
  const ascii = String.fromCharCode(...head.subarray(0, 4));
  if (ascii === "CDF\x01") return "netCDF-3 classic";
  if (ascii === "CDF\x02") return "netCDF-3 64-bit offset";
  if (ascii === "CDF\x05") return "netCDF-3 64-bit data (CDF-5)";
  if (ascii.startsWith("\x0e\x03\x13\x01")) return "HDF4";
  if (head[0] === 0x1f && head[1] === 0x8b) return "gzip-compressed data";
  if (ascii.startsWith("PK\x03\x04")) return "a zip archive";
  if (ascii.startsWith("{")) return "JSON text";
  return undefined;
}

function hasSignature(bytes: Uint8Array): boolean {
  return SIGNATURE.every((b, i) => bytes[i] === b);
}

/** Reads 8 bytes at `offset`, or undefined at end of file (not an error while searching). */
async function probe(source: CachedSource, offset: number, size: number | undefined) {
  if (size !== undefined && offset + 8 > size) return undefined;
  try {
    return await source.read(offset, 8, "superblock");
  } catch (e) {
    if (e instanceof Hdf5FormatError && size === undefined) return undefined;
    throw e;
  }
}

/** Finds and decodes the superblock. */
export async function readSuperblock(source: CachedSource): Promise<Superblock> {
  const size = await source.size();
  let base = -1;
  let head: Uint8Array | undefined;
  // The signature sits at 0 or at a power of two ≥ 512 (the user block size).
  for (let at = 0; ; at = at === 0 ? 512 : at * 2) {
    const bytes = await probe(source, at, size);
    if (bytes === undefined) break;
    if (at === 0) head = bytes;
    if (hasSignature(bytes)) {
      base = at;
      break;
    }
    if (at > 2 ** 40) break;
  }
  if (base < 0) {
    const what = head ? describeForeignFormat(head) : "an empty or too short file";
    throw new Hdf5FormatError(
      `not an HDF5 file${what ? ` (looks like ${what})` : ""}: no HDF5 signature at offset 0, 512, 1024, ...`,
      0,
      "superblock",
      { source: source.name },
    );
  }
  // 8-byte offsets/lengths need at most 8+4+8*4+... bytes; read a generous fixed prefix.
  const available = size === undefined ? 256 : Math.min(256, size - base);
  const bytes = await source.read(base, available, "superblock");
  const c = new Cursor(bytes, 0, "superblock", { offsetSize: 8, lengthSize: 8 }, source.name);
  c.skip(8);
  const version = c.u8();
  let superblock: Superblock;
  if (version === 0 || version === 1) superblock = decodeV0V1(c, version, base);
  else if (version === 2 || version === 3) superblock = decodeV2V3(c, version, base);
  else throw c.error(`unknown superblock version ${version}`, 8);
  // As the HDF5 library does: a file shorter than its recorded end is truncated (a partial copy).
  // The end-of-file address counts from the start of the file, user block included.
  if (size !== undefined && superblock.eofAddress !== UNDEFINED_ADDRESS && superblock.eofAddress > size) {
    throw new Hdf5FormatError(
      `file truncated: the superblock records ${superblock.eofAddress} bytes, the file has ${size}`,
      base,
      "superblock",
      { source: source.name },
    );
  }
  return superblock;
}

function checkSizes(c: Cursor, offsetSize: number, lengthSize: number): void {
  for (const [what, n] of [["offsets", offsetSize], ["lengths", lengthSize]] as const) {
    if (![2, 4, 8].includes(n)) throw c.error(`invalid size of ${what}: ${n}`);
  }
}

function decodeV0V1(c: Cursor, version: number, base: number): Superblock {
  c.skip(4); // free-space, root symbol table entry, reserved, shared header versions
  const offsetSize = c.u8();
  const lengthSize = c.u8();
  checkSizes(c, offsetSize, lengthSize);
  c.skip(1);
  const groupLeafK = c.u16();
  const groupInternalK = c.u16();
  c.skip(4); // file consistency flags
  if (version === 1) c.skip(4); // indexed storage internal K + reserved
  const sized = new Cursor(c.bytes, 0, "superblock", { offsetSize, lengthSize }, c.sourceName);
  sized.seek(c.pos);
  sized.offset(); // base address: the signature location is authoritative (as in the HDF5 library)
  sized.offset(); // free-space info
  const eofAddress = sized.offset();
  sized.offset(); // driver info block
  const entry = readSymbolTableEntry(sized);
  return {
    version,
    base,
    offsetSize,
    lengthSize,
    eofAddress,
    rootAddress: entry.objectAddress,
    rootSymbolTable: entry.cache,
    groupLeafK,
    groupInternalK,
  };
}

function decodeV2V3(c: Cursor, version: number, base: number): Superblock {
  const offsetSize = c.u8();
  const lengthSize = c.u8();
  checkSizes(c, offsetSize, lengthSize);
  c.skip(1); // file consistency flags
  const sized = new Cursor(c.bytes, 0, "superblock", { offsetSize, lengthSize }, c.sourceName);
  sized.seek(c.pos);
  sized.offset(); // base address
  const extensionAddress = sized.offset();
  const eofAddress = sized.offset();
  const rootAddress = sized.offset();
  verifyChecksum(sized, 0, sized.pos);
  return {
    version,
    base,
    offsetSize,
    lengthSize,
    eofAddress,
    rootAddress,
    extensionAddress: extensionAddress === UNDEFINED_ADDRESS ? undefined : extensionAddress,
  };
}

export interface SymbolTableEntry {
  nameOffset: number;
  objectAddress: number;
  cache?: SymbolTableCache;
  /** Cache type 2: a soft link; the local-heap offset of its target path. */
  softLinkOffset?: number;
}

/** A symbol table entry (superblock root entry and "SNOD" entries): 2 offsets + 24 bytes. */
export function readSymbolTableEntry(c: Cursor): SymbolTableEntry {
  const nameOffset = c.offset();
  const objectAddress = c.offset();
  const cacheType = c.u32();
  c.skip(4);
  const scratch = c.pos;
  let cache: SymbolTableCache | undefined;
  let softLinkOffset: number | undefined;
  if (cacheType === 1) cache = { btreeAddress: c.offset(), heapAddress: c.offset() };
  else if (cacheType === 2) softLinkOffset = c.u32();
  c.seek(scratch + 16);
  return { nameOffset, objectAddress, cache, softLinkOffset };
}
