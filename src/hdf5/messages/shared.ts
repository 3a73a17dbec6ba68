/**
 * Shared message encoding (message flag bit 1) and the shared object header message table
 * (0x000F, in the superblock extension) that says where shared messages of each type live.
 */
import { Cursor } from "../io.js";

export type SharedMessage =
  /** The message lives in another object header (e.g. a committed datatype). */
  | { where: "header"; address: number }
  /** The message lives in the SOHM fractal heap; the id is a fractal heap ID. */
  | { where: "heap"; heapId: Uint8Array };

export function decodeShared(c: Cursor): SharedMessage {
  const version = c.u8();
  const type = c.u8();
  if (version === 1) {
    c.skip(6);
    return { where: "header", address: c.offset() };
  }
  if (version === 2) return { where: "header", address: c.offset() };
  if (version === 3) {
    if (type === 1) return { where: "heap", heapId: c.take(8) };
    if (type === 2) return { where: "header", address: c.offset() };
    throw c.error(`shared message type ${type} cannot be resolved`);
  }
  throw c.error(`unknown shared message version ${version}`);
}

export interface SharedMessageTableMessage {
  tableAddress: number;
  indexCount: number;
}

export function decodeSharedMessageTableMessage(c: Cursor): SharedMessageTableMessage {
  const version = c.u8();
  if (version !== 0) throw c.error(`unknown shared message table message version ${version}`);
  return { tableAddress: c.offset(), indexCount: c.u8() };
}

export interface SharedMessageIndex {
  /** Which message types the index holds: bit (1 << message type), as the HDF5 library writes it. */
  messageTypes: number;
  fractalHeapAddress: number;
}

/**
 * The "message type flags" bit of a message type. The library sets 1 << type id (and files the
 * new fill value message under the old one's id, 4), which is what real files contain.
 */
export function sharedMessageFlag(type: number): number {
  return 1 << (type === 0x5 ? 0x4 : type);
}

/** The "SMTB" table: one index (list or v2 B-tree) per group of message types. */
export function decodeSharedMessageTable(c: Cursor, indexCount: number): SharedMessageIndex[] {
  c.signature("SMTB");
  const out: SharedMessageIndex[] = [];
  for (let i = 0; i < indexCount; i++) {
    c.u8(); // version
    c.u8(); // index type: list or B-tree; we only need the heap
    const messageTypes = c.u16();
    c.skip(4 + 2 + 2 + 2); // minimum message size, list cutoff, B-tree cutoff, message count
    c.offset(); // index address
    out.push({ messageTypes, fractalHeapAddress: c.offset() });
  }
  return out;
}
