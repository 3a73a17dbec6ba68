/** Attribute message (0x000C), versions 1–3. The value stays raw here; attributes.ts decodes it. */
import { Cursor } from "../io.js";
import type { Datatype } from "../model.js";
import { decodeDataspace, type Dataspace } from "./dataspace.js";
import { decodeDatatype } from "./datatype.js";
import { decodeShared, type SharedMessage } from "./shared.js";

export interface RawAttribute {
  name: string;
  /** The datatype, or where to find it when it is shared (a committed datatype). */
  type: Datatype | { shared: SharedMessage };
  space: Dataspace | { shared: SharedMessage };
  /** Raw value bytes: element count × element size. */
  data: Uint8Array;
  dataAddress: number;
}

const utf8 = new TextDecoder();

function sub(c: Cursor, length: number, structure: string): Cursor {
  const at = c.address;
  return new Cursor(c.take(length), at, structure, c.sizes, c.sourceName);
}

export function decodeAttribute(c: Cursor): RawAttribute {
  const version = c.u8();
  if (version < 1 || version > 3) throw c.error(`unknown attribute message version ${version}`);
  const flags = c.u8();
  const nameSize = c.u16();
  const typeSize = c.u16();
  const spaceSize = c.u16();
  if (version === 3) c.u8(); // name charset; UTF-8 decoding covers ASCII
  // Version 1 pads each field to a multiple of 8 bytes.
  const pad = (n: number) => (version === 1 ? Math.ceil(n / 8) * 8 : n);
  const nameBytes = c.take(pad(nameSize));
  const nul = nameBytes.indexOf(0);
  const name = utf8.decode(nameBytes.subarray(0, nul === -1 ? Math.min(nameSize, nameBytes.length) : nul));
  const typeCursor = sub(c, pad(typeSize), "attribute datatype");
  const type = flags & 0x01 ? { shared: decodeShared(typeCursor) } : decodeDatatype(typeCursor);
  const spaceCursor = sub(c, pad(spaceSize), "attribute dataspace");
  const space = flags & 0x02 ? { shared: decodeShared(spaceCursor) } : decodeDataspace(spaceCursor);
  const dataAddress = c.address;
  return { name, type, space, data: c.take(c.remaining), dataAddress };
}
