/**
 * Decodes raw bytes of a datatype into JS values: attribute values and fill values. Variable-length
 * data is fetched from the global heap; references become the referenced object header address.
 */
import { Hdf5FormatError } from "../errors.js";
import { readGlobalHeapObject } from "./global-heap.js";
import { FileContext, UNDEFINED_ADDRESS } from "./io.js";
import { datatypeSize, integerFromBytes } from "./messages/datatype.js";
import type { AttributeValue, Datatype } from "./model.js";

const utf8 = new TextDecoder();

/** Attribute and fill values are metadata; more elements than this is a corrupt dataspace. */
const MAX_ELEMENTS = 1 << 26;

/** Where the bytes came from, for error messages. */
export interface ValueOrigin {
  address: number;
  structure: string;
}

/** `count` consecutive elements of `type` from `bytes`. */
export async function decodeElements(
  ctx: FileContext,
  type: Datatype,
  bytes: Uint8Array,
  count: number,
  origin: ValueOrigin,
): Promise<AttributeValue[]> {
  const size = datatypeSize(type, ctx.sizes.offsetSize);
  // Zero-sized elements cost nothing to store, so a lying count must be stopped before allocating.
  if (!Number.isSafeInteger(count) || count > MAX_ELEMENTS || (size === 0 && count > bytes.length + 1024)) {
    throw new Hdf5FormatError(`implausible element count ${count}`, origin.address, origin.structure, {
      source: ctx.source.name,
    });
  }
  if (count * size > bytes.length) {
    throw new Hdf5FormatError(
      `${count} elements of ${size} bytes need ${count * size} bytes, only ${bytes.length} stored`,
      origin.address,
      origin.structure,
      { source: ctx.source.name },
    );
  }
  const out: AttributeValue[] = new Array(count);
  for (let i = 0; i < count; i++) {
    out[i] = await decodeElement(ctx, type, bytes.subarray(i * size, (i + 1) * size), origin);
  }
  return out;
}

/** A value shaped like its dataspace: scalar for shape [], a flat C-order array otherwise. */
export async function decodeValue(
  ctx: FileContext,
  type: Datatype,
  shape: number[] | null,
  bytes: Uint8Array,
  origin: ValueOrigin,
): Promise<AttributeValue> {
  if (shape === null) return null;
  const count = shape.reduce((a, b) => a * b, 1);
  const values = await decodeElements(ctx, type, bytes, count, origin);
  return shape.length === 0 ? values[0] : values;
}

function decodeFloat(b: Uint8Array, littleEndian: boolean): number | Uint8Array {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.length === 8) return view.getFloat64(0, littleEndian);
  if (b.length === 4) return view.getFloat32(0, littleEndian);
  if (b.length === 2) return half(view.getUint16(0, littleEndian));
  return b.slice();
}

/** IEEE 754 binary16 → number. */
function half(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

function fixedString(b: Uint8Array, padding: number): string {
  let end = b.length;
  if (padding === 2) {
    while (end > 0 && b[end - 1] === 0x20) end--;
  } else {
    // Null-terminated and null-padded both end at the first NUL, as numpy's S dtype reads them.
    const nul = b.indexOf(0);
    if (nul !== -1) end = nul;
  }
  return utf8.decode(b.subarray(0, end));
}

function isBoolEnum(type: Extract<Datatype, { class: "enum" }>): boolean {
  const m = type.members;
  return (
    m.length === 2 &&
    m.some((x) => x.name === "FALSE" && Number(x.value) === 0) &&
    m.some((x) => x.name === "TRUE" && Number(x.value) === 1)
  );
}

async function decodeElement(
  ctx: FileContext,
  type: Datatype,
  b: Uint8Array,
  origin: ValueOrigin,
): Promise<AttributeValue> {
  switch (type.class) {
    case "integer":
      return integerFromBytes(b, type.littleEndian, type.signed);
    case "bitfield":
      return integerFromBytes(b, type.littleEndian, false);
    case "float":
      return decodeFloat(b, type.littleEndian);
    case "string":
      return fixedString(b, type.padding);
    case "enum": {
      const v = integerFromBytes(b, type.base.class === "integer" ? type.base.littleEndian : true, type.base.class === "integer" && type.base.signed);
      return isBoolEnum(type) ? Number(v) !== 0 : v;
    }
    case "compound": {
      const out: { [field: string]: AttributeValue } = {};
      for (const m of type.members) {
        const size = datatypeSize(m.type, ctx.sizes.offsetSize);
        if (m.offset + size > b.length) {
          throw new Hdf5FormatError(`compound member "${m.name}" overruns its element`, origin.address, origin.structure, { source: ctx.source.name });
        }
        out[m.name] = await decodeElement(ctx, m.type, b.subarray(m.offset, m.offset + size), origin);
      }
      return out;
    }
    case "array": {
      const count = type.dims.reduce((x, y) => x * y, 1);
      return decodeElements(ctx, type.base, b, count, origin);
    }
    case "opaque":
    case "time":
      return b.slice();
    case "reference": {
      if (type.kind === "object") {
        const address = readAddress(b, ctx.sizes.offsetSize);
        return address === 0 || address === UNDEFINED_ADDRESS ? null : address;
      }
      // A region reference names a global heap object: the object's address, then the selection.
      const collection = readAddress(b, ctx.sizes.offsetSize);
      const index = readU32(b, ctx.sizes.offsetSize);
      if (collection === 0 || collection === UNDEFINED_ADDRESS) return null;
      const data = await readGlobalHeapObject(ctx, { collection, index });
      if (data.length < ctx.sizes.offsetSize) {
        throw new Hdf5FormatError("region reference object too short", collection, "global heap object", { source: ctx.source.name });
      }
      return { object: readAddress(data, ctx.sizes.offsetSize), selection: data.slice(ctx.sizes.offsetSize) };
    }
    case "vlen-string":
    case "vlen-sequence": {
      const length = readU32(b, 0);
      const collection = readAddress(b.subarray(4), ctx.sizes.offsetSize);
      const index = readU32(b, 4 + ctx.sizes.offsetSize);
      if (type.class === "vlen-string") {
        if (length === 0 || collection === 0 || collection === UNDEFINED_ADDRESS) return "";
        const data = await readGlobalHeapObject(ctx, { collection, index });
        let end = Math.min(length, data.length);
        while (end > 0 && data[end - 1] === 0) end--;
        return utf8.decode(data.subarray(0, end));
      }
      if (length === 0 || collection === 0 || collection === UNDEFINED_ADDRESS) return [];
      const data = await readGlobalHeapObject(ctx, { collection, index });
      return decodeElements(ctx, type.base, data, length, { address: collection, structure: "global heap object" });
    }
  }
}

function readU32(b: Uint8Array, at: number): number {
  if (at + 4 > b.length) return 0;
  return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
}

function readAddress(b: Uint8Array, size: number): number {
  let allOnes = true;
  let v = 0;
  let scale = 1;
  for (let i = 0; i < size && i < b.length; i++) {
    if (b[i] !== 0xff) allOnes = false;
    v += b[i] * scale;
    scale *= 256;
  }
  return allOnes ? UNDEFINED_ADDRESS : v;
}
