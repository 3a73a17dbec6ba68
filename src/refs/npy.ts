/**
 * NumPy `.npy` files (format versions 1.0 and 2.0): a magic string, a Python-literal header dict
 * with `descr`, `fortran_order` and `shape`, padded so the data starts 64-byte aligned, then the
 * raw C-order data.
 */
import { ReferenceSetError } from "../errors.js";

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"

export interface NpyArray {
  /** Array-interface typestr: "<f8", "|u1", "|b1", "|S10", "<U7"... */
  descr: string;
  shape: number[];
  /** Raw element bytes in C order, in the byte order `descr` says. */
  data: Uint8Array;
}

/** Serialises an array as .npy, version 1.0 unless the header needs 2.0's 4-byte length. */
export function encodeNpy(array: NpyArray): Uint8Array {
  const shape = array.shape.length === 1 ? `(${array.shape[0]},)` : `(${array.shape.join(", ")})`;
  const dict = `{'descr': '${array.descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const encoder = new TextEncoder();
  let version = 1;
  let prefix = 10;
  const padded = (n: number) => {
    const unpadded = n + dict.length + 1; // + "\n"
    return dict + " ".repeat((64 - (unpadded % 64)) % 64) + "\n";
  };
  let header = padded(prefix);
  if (header.length > 0xffff) {
    version = 2;
    prefix = 12;
    header = padded(prefix);
  }
  const out = new Uint8Array(prefix + header.length + array.data.length);
  out.set(MAGIC, 0);
  out[6] = version;
  out[7] = 0;
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, header.length, true);
  else view.setUint32(8, header.length, true);
  out.set(encoder.encode(header), prefix);
  out.set(array.data, prefix + header.length);
  return out;
}

/** Parses a .npy file written by NumPy or by `encodeNpy` (C order only). */
export function decodeNpy(bytes: Uint8Array, name = "npy"): NpyArray {
  const fail = (why: string) => new ReferenceSetError(`not a readable .npy file: ${why}`, name);
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) throw fail("bad magic");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = bytes[6];
  const prefix = version === 1 ? 10 : 12;
  if (version < 1 || version > 3 || bytes.length < prefix) throw fail(`version ${version}`);
  const headerLength = version === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  if (prefix + headerLength > bytes.length) throw fail("truncated header");
  const header = new TextDecoder().decode(bytes.subarray(prefix, prefix + headerLength));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw fail("bad header");
  if (fortran === "True") throw fail("Fortran order is not supported");
  const shape = shapeText
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  if (shape.some((n) => !Number.isSafeInteger(n) || n < 0)) throw fail(`bad shape (${shapeText})`);
  return { descr, shape, data: bytes.subarray(prefix + headerLength) };
}
