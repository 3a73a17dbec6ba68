/**
 * Copying a decoded chunk's selected part into the output array of a read: the step zarrita's
 * `get` spends most of its time in once chunks are small. zarrita recurses one dimension at a time
 * and makes two subarrays per row (625 recursive calls and 1,250 subarrays for a 25³ chunk), which
 * took 3.0 of 7.6 s reading a 500³ float64 variable in 25³ chunks (bench/refs-read, zlib25 local).
 * Here the projection becomes a flat list of (count, source step, destination step) with memory-
 * contiguous dimensions fused, and one odometer walks it: long contiguous runs are one `set`, short
 * ones a loop over 32-bit words (8-byte elements copy as two words, so NaN payloads and int64 bits
 * are kept exactly).
 */
import type { Projection } from "zarrita";
import { walkOuter } from "../util/odometer.js";

/** A typed array in the element layout the copy works on (strides in elements). */
export interface ChunkView {
  data: ArrayBufferView;
  shape: readonly number[];
  stride: readonly number[];
}

/** Runs at least this many words long are copied with `set`; shorter ones in a loop. */
const SET_MIN_WORDS = 64;

type Words = Uint8Array | Uint16Array | Uint32Array;

/** `data` as words of the element's size (8-byte elements: pairs of 32-bit words). */
function wordsOf(data: ArrayBufferView, bytesPerElement: number): { words: Words; perElement: number } {
  const { buffer, byteOffset, byteLength } = data;
  if (bytesPerElement % 4 === 0 && byteOffset % 4 === 0) {
    return { words: new Uint32Array(buffer, byteOffset, byteLength / 4), perElement: bytesPerElement / 4 };
  }
  if (bytesPerElement === 2 && byteOffset % 2 === 0) {
    return { words: new Uint16Array(buffer, byteOffset, byteLength / 2), perElement: 1 };
  }
  return bytesOf(data, bytesPerElement);
}

function bytesOf(data: ArrayBufferView, bytesPerElement: number): { words: Words; perElement: number } {
  return { words: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), perElement: bytesPerElement };
}

interface Walk {
  counts: number[];
  srcSteps: number[];
  dstSteps: number[];
  srcBase: number;
  dstBase: number;
}

/** The projection as fused dimensions, in words; null when it selects nothing. */
function walkOf(projections: readonly Projection[], dst: readonly number[], src: readonly number[], perElement: number): Walk | null {
  const counts: number[] = [];
  const srcSteps: number[] = [];
  const dstSteps: number[] = [];
  let srcBase = 0;
  let dstBase = 0;
  let d = 0;
  let s = 0;
  for (const p of projections) {
    if (p.from === null) {
      dstBase += dst[d++] * p.to; // a dimension of the output only
    } else if (p.to === null) {
      srcBase += src[s++] * p.from; // an integer selection: the dimension is dropped
    } else {
      const [from, to, step] = p.to;
      const [sfrom, , sstep] = p.from;
      const count = lengthOf(from, to, step);
      if (count === 0) return null;
      dstBase += dst[d] * from;
      srcBase += src[s] * sfrom;
      const dstStep = dst[d++] * step;
      const srcStep = src[s++] * sstep;
      if (count === 1) continue;
      const k = counts.length - 1;
      // Fuse with the dimension outside when this one spans exactly one of its steps on both sides.
      if (k >= 0 && srcSteps[k] === count * srcStep && dstSteps[k] === count * dstStep) {
        counts[k] *= count;
        srcSteps[k] = srcStep;
        dstSteps[k] = dstStep;
      } else {
        counts.push(count);
        srcSteps.push(srcStep);
        dstSteps.push(dstStep);
      }
    }
  }
  const scale = (v: number) => v * perElement;
  return { counts, srcSteps: srcSteps.map(scale), dstSteps: dstSteps.map(scale), srcBase: scale(srcBase), dstBase: scale(dstBase) };
}

function lengthOf(start: number, stop: number, step: number): number {
  if (step < 0) return stop < start ? Math.floor((start - stop - 1) / -step) + 1 : 0;
  return start < stop ? Math.floor((stop - start - 1) / step) + 1 : 0;
}

/**
 * Copies the part of `src` that `projections` select into `dst`, exactly as zarrita's setter does
 * (same projections, same result byte for byte). Both must be typed arrays of one element size.
 */
export function copyChunk(dst: ChunkView, src: ChunkView, projections: readonly Projection[], bytesPerElement: number): void {
  let to = wordsOf(dst.data, bytesPerElement);
  let from = wordsOf(src.data, bytesPerElement);
  // Both sides must be cut into the same words; they are unless one side is oddly aligned.
  if (to.perElement !== from.perElement) {
    to = bytesOf(dst.data, bytesPerElement);
    from = bytesOf(src.data, bytesPerElement);
  }
  const walk = walkOf(projections, dst.stride, src.stride, to.perElement);
  if (walk) copyWalk(to.words, from.words, walk, to.perElement);
}

function copyWalk(dst: Words, src: Words, walk: Walk, perElement: number): void {
  const { counts, srcSteps, dstSteps } = walk;
  const last = counts.length - 1;
  if (last < 0) return copyRun(dst, src, walk.dstBase, walk.srcBase, 1, perElement, perElement, perElement);
  const [n, sStep, dStep] = [counts[last], srcSteps[last], dstSteps[last]];
  walkOuter(counts, srcSteps, dstSteps, last, walk.srcBase, walk.dstBase, (so, dOff) => copyRun(dst, src, dOff, so, n, dStep, sStep, perElement));
}

/** One innermost run of `n` elements, `perElement` words each, at the given word steps. */
function copyRun(dst: Words, src: Words, dOff: number, sOff: number, n: number, dStep: number, sStep: number, perElement: number): void {
  if (dStep === perElement && sStep === perElement) {
    const words = n * perElement;
    if (words >= SET_MIN_WORDS) {
      dst.set(src.subarray(sOff, sOff + words), dOff);
      return;
    }
    for (let i = 0; i < words; i++) dst[dOff + i] = src[sOff + i];
    return;
  }
  for (let i = 0; i < n; i++, dOff += dStep, sOff += sStep) {
    for (let w = 0; w < perElement; w++) dst[dOff + w] = src[sOff + w];
  }
}
