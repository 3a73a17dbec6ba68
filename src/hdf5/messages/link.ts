/** Group-structure messages: link (0x0006), link info (0x0002), group info (0x000A), symbol table (0x0011). */
import { Cursor, UNDEFINED_ADDRESS } from "../io.js";

export type LinkMessage =
  | { kind: "hard"; name: string; address: number; creationOrder?: number }
  | { kind: "soft"; name: string; target: string; creationOrder?: number }
  | { kind: "external"; name: string; file: string; target: string; creationOrder?: number };

const utf8 = new TextDecoder();

export function decodeLink(c: Cursor): LinkMessage {
  const version = c.u8();
  if (version !== 1) throw c.error(`unknown link message version ${version}`);
  const flags = c.u8();
  const type = flags & 0x08 ? c.u8() : 0;
  const creationOrder = flags & 0x04 ? Number(c.u64big() & 0x1fffffffffffffn) : undefined;
  if (flags & 0x10) c.u8(); // name charset: names are decoded as UTF-8 either way (ASCII ⊂ UTF-8)
  const nameLength = c.uint(1 << (flags & 0x03));
  if (nameLength === 0) throw c.error("link with an empty name");
  const name = utf8.decode(c.take(nameLength));
  switch (type) {
    case 0:
      return { kind: "hard", name, address: c.offset(), creationOrder };
    case 1: {
      const length = c.u16();
      return { kind: "soft", name, target: utf8.decode(c.take(length)), creationOrder };
    }
    case 64: {
      const length = c.u16();
      const info = new Cursor(c.take(length), c.address - length, c.structure, c.sizes, c.sourceName);
      info.u8(); // version and flags
      const file = info.cstring();
      const target = info.remaining > 0 ? info.cstring() : "";
      return { kind: "external", name, file, target, creationOrder };
    }
    default:
      throw c.error(`unknown link type ${type} for link "${name}"`);
  }
}

/** Where a new-style group keeps links that do not fit in the header (dense storage). */
export interface LinkInfo {
  fractalHeapAddress: number;
  nameIndexAddress: number;
  creationOrderIndexAddress?: number;
}

export function decodeLinkInfo(c: Cursor): LinkInfo {
  const version = c.u8();
  if (version !== 0) throw c.error(`unknown link info message version ${version}`);
  const flags = c.u8();
  if (flags & 0x01) c.skip(8); // maximum creation index
  const fractalHeapAddress = c.offset();
  const nameIndexAddress = c.offset();
  const creationOrderIndexAddress = flags & 0x02 ? c.offset() : undefined;
  return { fractalHeapAddress, nameIndexAddress, creationOrderIndexAddress };
}

/** Attribute info (0x0015) has the same shape as link info, for dense attribute storage. */
export function decodeAttributeInfo(c: Cursor): LinkInfo {
  const version = c.u8();
  if (version !== 0) throw c.error(`unknown attribute info message version ${version}`);
  const flags = c.u8();
  if (flags & 0x01) c.skip(2);
  const fractalHeapAddress = c.offset();
  const nameIndexAddress = c.offset();
  const creationOrderIndexAddress = flags & 0x02 ? c.offset() : undefined;
  return { fractalHeapAddress, nameIndexAddress, creationOrderIndexAddress };
}

export function hasDenseStorage(info: LinkInfo): boolean {
  return info.fractalHeapAddress !== UNDEFINED_ADDRESS;
}

export interface SymbolTableMessage {
  btreeAddress: number;
  heapAddress: number;
}

export function decodeSymbolTable(c: Cursor): SymbolTableMessage {
  return { btreeAddress: c.offset(), heapAddress: c.offset() };
}
