/**
 * One variable of a reference set (or any zarr v2 hierarchy) read with zarrita into a NumPy .npy
 * array: what `activestore dump` writes. Integer indices drop their dimension, as in NumPy.
 */
import * as zarr from "zarrita";
import { get } from "../zarr/get.js";
import type { Readable } from "@zarrita/storage";
import type { NpyArray } from "./npy.js";

export type Selection = (zarr.Slice | number | null)[];

/** Reads `variable` (a path such as "tas" or "forecast/t2m") restricted to `selection`. */
export async function readVariable(store: Readable, variable: string, selection: Selection = []): Promise<NpyArray> {
  const arr = await zarr.open(zarr.root(store).resolve(variable.replace(/^\/+/, "")), { kind: "array" });
  const dataType = arr.dtype as string;
  const full: Selection = arr.shape.map((_, i) => selection[i] ?? null);
  // Integers become one-element slices so zarrita always returns a chunk; their dims are dropped after.
  const kept: boolean[] = full.map((s) => typeof s !== "number");
  const asSlices = full.map((s) => (typeof s === "number" ? zarr.slice(s, s + 1) : s));
  const outShape = (shape: number[]) => shape.filter((_, i) => kept[i]);

  if (arr.shape.length === 0) {
    const value = await get(arr);
    return toNpy(dataType, [], [value]);
  }
  if (arr.shape.includes(0)) {
    // zarrita cannot index empty arrays; the result is empty whatever the selection.
    const shape = outShape(asSlices.map((s, i) => (s === null ? arr.shape[i] : sliceLength(s as zarr.Slice, arr.shape[i]))));
    return toNpy(dataType, shape, []);
  }
  const chunk = (await get(arr, asSlices)) as { data: unknown; shape: number[] };
  return toNpy(dataType, outShape(chunk.shape), chunk.data);
}

function sliceLength(s: zarr.Slice, length: number): number {
  const [start, stop, step] = zarr._zarrita_internal_sliceIndices(s, length);
  return Math.max(0, Math.ceil((stop - start) / step));
}

const DESCR: Record<string, string> = {
  int8: "|i1",
  uint8: "|u1",
  int16: "<i2",
  uint16: "<u2",
  int32: "<i4",
  uint32: "<u4",
  int64: "<i8",
  uint64: "<u8",
  float16: "<f2",
  float32: "<f4",
  float64: "<f8",
  bool: "|b1",
};

/** zarrita's decoded data (native little-endian typed arrays, string arrays) as .npy content. */
function toNpy(dataType: string, shape: number[], data: unknown): NpyArray {
  const count = shape.reduce((a, b) => a * b, 1);
  if (dataType === "v2:object" || dataType === "string") {
    // Variable-length strings: NumPy's fixed-width unicode, as wide as the longest value.
    const values = Array.from(data as Iterable<unknown>, (v) => String(v ?? ""));
    const width = Math.max(1, ...values.map((v) => [...v].length));
    const out = new Uint8Array(values.length * width * 4);
    const view = new DataView(out.buffer);
    values.forEach((v, i) => [...v].forEach((ch, c) => view.setUint32((i * width + c) * 4, ch.codePointAt(0)!, true)));
    return { descr: `<U${width}`, shape, data: out };
  }
  const fixed = /^v2:([SU])(\d+)$/.exec(dataType);
  const descr = fixed ? `${fixed[1] === "S" ? "|" : "<"}${fixed[1]}${fixed[2]}` : DESCR[dataType];
  if (descr === undefined) throw new TypeError(`no NumPy dtype for zarr data type ${dataType}`);
  if (count === 0) return { descr, shape, data: new Uint8Array(0) };
  if (Array.isArray(data)) data = scalarArray(dataType, data as unknown[]);
  const view = data as { buffer: ArrayBufferLike; byteOffset: number; byteLength: number };
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  const itemSize = fixed ? Number(fixed[2]) * (fixed[1] === "U" ? 4 : 1) : Number(descr.slice(2));
  return { descr, shape, data: bytes.slice(0, count * itemSize) };
}

/** A 0-d read comes back from zarrita as a bare scalar; give it the bytes of a one-element array. */
function scalarArray(dataType: string, values: unknown[]): { buffer: ArrayBufferLike; byteOffset: number; byteLength: number } {
  const v = values[0];
  switch (dataType) {
    case "int8": return Int8Array.of(Number(v));
    case "uint8": return Uint8Array.of(Number(v));
    case "int16": return Int16Array.of(Number(v));
    case "uint16": return Uint16Array.of(Number(v));
    case "int32": return Int32Array.of(Number(v));
    case "uint32": return Uint32Array.of(Number(v));
    case "int64": return BigInt64Array.of(BigInt(v as bigint));
    case "uint64": return BigUint64Array.of(BigInt(v as bigint));
    case "float32": return Float32Array.of(Number(v));
    case "float64": return Float64Array.of(Number(v));
    case "bool": return Uint8Array.of(v ? 1 : 0);
  }
  const fixed = /^v2:S(\d+)$/.exec(dataType);
  if (fixed) {
    const out = new Uint8Array(Number(fixed[1]));
    out.set(new TextEncoder().encode(String(v)).subarray(0, out.length));
    return out;
  }
  throw new TypeError(`cannot write a scalar of zarr data type ${dataType}`);
}
