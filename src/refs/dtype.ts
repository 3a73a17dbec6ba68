/**
 * HDF5 datatypes as zarr v2 dtype strings (NumPy array-interface typestr), limited to what both
 * zarrita and Python zarr read: integers, floats, bool, fixed byte strings and vlen strings.
 */
import type { Datatype } from "../hdf5/model.js";

export type DtypeMapping =
  | {
      ok: true;
      /** zarr v2 dtype, e.g. "<f8", ">i2", "|u1", "|b1", "|S10", "|O". */
      dtype: string;
      /** Bytes per element in storage (for vlen strings: the heap reference size, 16). */
      itemSize: number;
      /** "vlen-string": values live in the global heap and must be decoded and inlined. */
      kind: "number" | "bool" | "bytes" | "vlen-string";
    }
  | { ok: false; reason: string };

/** Size of a vlen element in storage: u32 length + heap collection address (8) + u32 index. */
export const VLEN_REFERENCE_SIZE = 16;

const order = (littleEndian: boolean, size: number) => (size === 1 ? "|" : littleEndian ? "<" : ">");

export function toZarrDtype(type: Datatype): DtypeMapping {
  switch (type.class) {
    case "integer":
      if (![1, 2, 4, 8].includes(type.size)) {
        return { ok: false, reason: `${type.size}-byte integers have no NumPy dtype` };
      }
      return {
        ok: true,
        dtype: `${order(type.littleEndian, type.size)}${type.signed ? "i" : "u"}${type.size}`,
        itemSize: type.size,
        kind: "number",
      };
    case "float":
      if (![2, 4, 8].includes(type.size)) {
        return { ok: false, reason: `${type.size}-byte floats are not supported by zarr` };
      }
      return {
        ok: true,
        dtype: `${order(type.littleEndian, type.size)}f${type.size}`,
        itemSize: type.size,
        kind: "number",
      };
    case "bitfield":
      // h5py reads bitfields as unsigned integers of the same size.
      return toZarrDtype({ class: "integer", size: type.size, littleEndian: type.littleEndian, signed: false });
    case "enum": {
      // h5py stores numpy bool as an int8 enum {FALSE: 0, TRUE: 1}; any other enum reads as its base.
      if (isH5pyBool(type)) return { ok: true, dtype: "|b1", itemSize: 1, kind: "bool" };
      return toZarrDtype(type.base);
    }
    case "string":
      // Fixed-length strings read as NumPy bytes (h5py does the same, whatever the charset).
      return { ok: true, dtype: `|S${type.size}`, itemSize: type.size, kind: "bytes" };
    case "vlen-string":
      return { ok: true, dtype: "|O", itemSize: VLEN_REFERENCE_SIZE, kind: "vlen-string" };
    case "compound":
      return { ok: false, reason: "compound datatypes are not readable by zarrita" };
    case "array":
      return { ok: false, reason: "array datatypes (per-element sub-arrays) have no zarr v2 mapping" };
    case "vlen-sequence":
      return { ok: false, reason: "variable-length sequences (ragged arrays) have no zarr v2 mapping" };
    case "opaque":
      return { ok: false, reason: `opaque datatype (tag "${type.tag}") has no zarr v2 mapping` };
    case "reference":
      return { ok: false, reason: `${type.kind} references point into the HDF5 file and cannot be represented` };
    case "time":
      return { ok: false, reason: "the HDF5 time datatype is deprecated and has no zarr mapping" };
  }
}

function isH5pyBool(type: Extract<Datatype, { class: "enum" }>): boolean {
  if (type.base.class !== "integer" || type.base.size !== 1 || type.members.length !== 2) return false;
  const byName = new Map(type.members.map((m) => [m.name, Number(m.value)]));
  return byName.get("FALSE") === 0 && byName.get("TRUE") === 1;
}
