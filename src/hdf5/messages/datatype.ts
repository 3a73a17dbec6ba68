/** Datatype message (0x0003): classes 0–10, versions 1–3. */
import { UnsupportedFeatureError } from "../../errors.js";
import { Cursor } from "../io.js";
import type { CompoundMember, Datatype } from "../model.js";

/** Nesting limit for compound/array/vlen/enum types: real types are shallow, corrupt ones loop. */
const MAX_DEPTH = 32;

export function decodeDatatype(c: Cursor, depth = 0): Datatype {
  if (depth > MAX_DEPTH) throw c.error(`datatype nested more than ${MAX_DEPTH} levels`);
  const start = c.address;
  const b0 = c.u8();
  const cls = b0 & 0x0f;
  const version = b0 >> 4;
  if (version < 1 || version > 5) throw c.error(`unknown datatype version ${version}`, start);
  const bits = c.u8() | (c.u8() << 8) | (c.u8() << 16);
  const size = c.u32();
  switch (cls) {
    case 0: {
      c.skip(4); // bit offset, precision
      return { class: "integer", size, littleEndian: (bits & 1) === 0, signed: (bits & 0x08) !== 0 };
    }
    case 1: {
      c.skip(12);
      if (bits & 0x40) {
        throw new UnsupportedFeatureError("VAX byte order float", `datatype at offset ${start}`);
      }
      return { class: "float", size, littleEndian: (bits & 1) === 0 };
    }
    case 2:
      c.skip(2);
      return { class: "time", size, littleEndian: (bits & 1) === 0 };
    case 3:
      return { class: "string", size, padding: bits & 0x0f, charset: charset((bits >> 4) & 0x0f) };
    case 4:
      c.skip(4);
      return { class: "bitfield", size, littleEndian: (bits & 1) === 0 };
    case 5: {
      // The tag field is NUL-padded to a multiple of 8; the flags give the padded length.
      const raw = c.take(bits & 0xff);
      const end = raw.indexOf(0);
      const tag = new TextDecoder().decode(end === -1 ? raw : raw.subarray(0, end));
      return { class: "opaque", size, tag };
    }
    case 6:
      return decodeCompound(c, version, bits & 0xffff, size, depth, start);
    case 7: {
      if (version >= 4) {
        throw new UnsupportedFeatureError("HDF5 1.12 reference type", `datatype at offset ${start}`);
      }
      return { class: "reference", size, kind: (bits & 0x0f) === 0 ? "object" : "region" };
    }
    case 8:
      return decodeEnum(c, version, bits & 0xffff, depth);
    case 9: {
      const base = decodeDatatype(c, depth + 1);
      if ((bits & 0x0f) === 1) {
        return { class: "vlen-string", charset: charset((bits >> 8) & 0x0f), padding: (bits >> 4) & 0x0f };
      }
      return { class: "vlen-sequence", base };
    }
    case 10: {
      const rank = c.u8();
      if (version < 3) c.skip(3);
      const dims: number[] = [];
      for (let i = 0; i < rank; i++) dims.push(c.u32());
      if (version < 3) c.skip(4 * rank); // permutation, never used
      return { class: "array", base: decodeDatatype(c, depth + 1), dims };
    }
    case 11:
      throw new UnsupportedFeatureError(
        "complex number datatype (HDF5 2.0)",
        `datatype at offset ${start}`,
        "complex types have no zarr v2 / numcodecs mapping here yet",
      );
    default:
      throw c.error(`unknown datatype class ${cls}`, start);
  }
}

function charset(code: number): "ascii" | "utf-8" {
  return code === 1 ? "utf-8" : "ascii";
}

/** Name field of compound/enum members: NUL-terminated, padded to 8 bytes before version 3. */
function memberName(c: Cursor, version: number): string {
  const start = c.pos;
  const name = c.cstring();
  if (version < 3) c.seek(Math.min(c.bytes.length, start + Math.ceil((c.pos - start) / 8) * 8));
  return name;
}

function decodeCompound(
  c: Cursor,
  version: number,
  count: number,
  size: number,
  depth: number,
  start: number,
): Datatype {
  const members: CompoundMember[] = [];
  // Version 3 stores member offsets in as few bytes as the compound's size needs.
  const offsetWidth = size < 2 ** 8 ? 1 : size < 2 ** 16 ? 2 : size < 2 ** 24 ? 3 : 4;
  for (let i = 0; i < count; i++) {
    const name = memberName(c, version);
    const offset = version >= 3 ? c.uint(offsetWidth) : c.u32();
    let type: Datatype;
    if (version === 1) {
      const rank = c.u8();
      c.skip(3 + 4 + 4);
      const dims: number[] = [];
      for (let d = 0; d < 4; d++) dims.push(c.u32());
      const base = decodeDatatype(c, depth + 1);
      type = rank > 0 ? { class: "array", base, dims: dims.slice(0, rank) } : base;
    } else {
      type = decodeDatatype(c, depth + 1);
    }
    if (offset > size) throw c.error(`compound member "${name}" at offset ${offset} beyond size ${size}`, start);
    members.push({ name, offset, type });
  }
  return { class: "compound", size, members };
}

function decodeEnum(c: Cursor, version: number, count: number, depth: number): Datatype {
  const base = decodeDatatype(c, depth + 1);
  if (base.class !== "integer") throw c.error(`enum base type is ${base.class}, not integer`);
  const names: string[] = [];
  for (let i = 0; i < count; i++) names.push(memberName(c, version));
  const members = names.map((name) => ({ name, value: readInteger(c, base.size, base.littleEndian, base.signed) }));
  return { class: "enum", base, members };
}

/** An integer of 1–8 bytes; bigint only when it does not fit a double exactly. */
export function readInteger(
  c: Cursor,
  size: number,
  littleEndian: boolean,
  signed: boolean,
): number | bigint {
  return integerFromBytes(c.take(size), littleEndian, signed);
}

export function integerFromBytes(b: Uint8Array, littleEndian: boolean, signed: boolean): number | bigint {
  if (b.length <= 6) {
    // Fits a double exactly: no bigint needed (the common case, kept cheap).
    let n = 0;
    for (let i = 0; i < b.length; i++) n = n * 256 + (littleEndian ? b[b.length - 1 - i] : b[i]);
    if (signed && b.length > 0 && n >= 2 ** (8 * b.length - 1)) n -= 2 ** (8 * b.length);
    return n;
  }
  let v = 0n;
  for (let i = 0; i < b.length; i++) {
    const byte = littleEndian ? b[b.length - 1 - i] : b[i];
    v = (v << 8n) | BigInt(byte);
  }
  if (signed && b.length > 0 && v >= 1n << BigInt(8 * b.length - 1)) v -= 1n << BigInt(8 * b.length);
  return v >= -(2n ** 53n) && v <= 2n ** 53n ? Number(v) : v;
}

/** Size in bytes of one element of `type` as stored in a dataset or attribute. */
export function datatypeSize(type: Datatype, offsetSize: number): number {
  switch (type.class) {
    case "vlen-string":
    case "vlen-sequence":
      return 4 + offsetSize + 4; // length + global heap collection address + object index
    case "enum":
      return datatypeSize(type.base, offsetSize);
    case "array":
      return datatypeSize(type.base, offsetSize) * type.dims.reduce((a, b) => a * b, 1);
    default:
      return (type as { size: number }).size;
  }
}
