/**
 * SIMD folds for chunk data that sits in a WebAssembly memory: an ArenaPool's, into which reads
 * land, so the kernel reads the bytes in place (copying them into wasm memory first would cost as
 * much as the fold saves). The fold is three times the JavaScript loop's speed (0.25 against 0.71
 * ns per float64 on this machine), and lane for lane the same sums (see wasm/fold.wat), so results
 * do not depend on which path folded a run.
 */
import { FOLD_WASM } from "./wasm/fold-bytes.js";

/** Bytes at the start of an attached memory that the folds keep: lane sums, then row sums. */
export const SIMD_RESERVED = 4096;
const ROW_SUMS = 64;
/** Rows one `simdRowSumsF64` call sums at most. */
export const SIMD_MAX_ROWS = (SIMD_RESERVED - ROW_SUMS) / 8;

interface Fold {
  sumF64(ptr: number, n: number, m0: number, acc: number): number;
  rowSumsF64(ptr: number, rows: number, step: number, n: number, m0: number, out: number): number;
  /** The four lane sums at address 0. */
  lanes: Float64Array;
  rowSums: Float64Array;
}

let compiled: WebAssembly.Module | null | undefined;
const folds = new WeakMap<ArrayBufferLike, Fold>();

function foldModule(): WebAssembly.Module | null {
  if (compiled === undefined) {
    try {
      compiled = new WebAssembly.Module(Buffer.from(FOLD_WASM, "base64"));
    } catch {
      compiled = null; // a runtime without wasm SIMD: the JavaScript loops do everything
    }
  }
  return compiled ?? null;
}

/**
 * Lets the folds read data in `memory` (which must never grow: a grown memory is a new buffer).
 * False when this runtime cannot run them.
 */
export function attachSimd(memory: WebAssembly.Memory): boolean {
  const module = foldModule();
  if (!module) return false;
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  const sumF64 = instance.exports.sumF64 as Fold["sumF64"];
  const rowSumsF64 = instance.exports.rowSumsF64 as Fold["rowSumsF64"];
  const rowSums = new Float64Array(memory.buffer, ROW_SUMS, SIMD_MAX_ROWS);
  folds.set(memory.buffer, { sumF64, rowSumsF64, lanes: new Float64Array(memory.buffer, 0, 4), rowSums });
  return true;
}

/**
 * Adds `n` elements (a multiple of 4) from `off` to the lane sums acc[0..3], as the JavaScript
 * `sum` loop does; false when an element equals `m0` or the sums hold a NaN (the caller then folds
 * the run with the careful loops). Undefined when `data` is not in an attached memory.
 */
export function simdSumF64(data: Float64Array, off: number, n: number, m0: number, acc: Float64Array): boolean | undefined {
  const fold = folds.get(data.buffer);
  if (!fold) return undefined;
  const lanes = fold.lanes;
  lanes[0] = acc[0];
  lanes[1] = acc[1];
  lanes[2] = acc[2];
  lanes[3] = acc[3];
  const hit = fold.sumF64(data.byteOffset + off * 8, n, m0, 0);
  acc[0] = lanes[0];
  acc[1] = lanes[1];
  acc[2] = lanes[2];
  acc[3] = lanes[3];
  const s = acc[0] + acc[1] + acc[2] + acc[3];
  return hit === 0 && s === s;
}

/**
 * The sums of `rows` rows of `n` contiguous elements, row r starting at `off + r * step`, each as
 * kernel-fold's sumShortRun computes it (same lanes, same bits): a view valid until the next call.
 * Null when an element equals `m0` (a NaN shows as a NaN sum); undefined when `data` is not in an
 * attached memory. Edge chunks cut by a selection are thousands of such rows.
 */
export function simdRowSumsF64(data: Float64Array, off: number, rows: number, step: number, n: number, m0: number): Float64Array | null | undefined {
  const fold = folds.get(data.buffer);
  if (!fold) return undefined;
  const hit = fold.rowSumsF64(data.byteOffset + off * 8, rows, step * 8, n, m0, ROW_SUMS);
  return hit === 0 ? fold.rowSums : null;
}
