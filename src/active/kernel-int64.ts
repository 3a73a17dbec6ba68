/**
 * 64-bit integer runs without BigInt arithmetic where that is exact. Reading a BigInt64Array makes
 * a BigInt per element (~25 ns); reading its two 32-bit words and adding in float64 costs about a
 * nanosecond, and is exact while every partial sum stays below 2^53: so a run is folded this way
 * only when each value's magnitude is below 2^53 / n (its high word below 2^21 / n), which counts,
 * indices and day offsets meet. Anything else (a large value, a fill such as netCDF's -2^63 + 2)
 * makes the fold give up, and the caller takes the BigInt path for that run. One mask (the fill
 * value) is compared word by word and left out, so a fill does not make the fold give up.
 */

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The 32-bit words of 64-bit integer data (low word first), or undefined on a big-endian machine. */
export function int64Words(data: BigInt64Array | BigUint64Array): Uint32Array | undefined {
  return LITTLE_ENDIAN ? new Uint32Array(data.buffer, data.byteOffset, data.length * 2) : undefined;
}

/** The words of a 64-bit mask value, [high, low]; [-1, -1] (matches no word) without one. */
export function maskWords(mask: bigint | undefined): [number, number] {
  if (mask === undefined) return [-1, -1];
  const u = BigInt.asUintN(64, mask);
  return [Number(u >> 32n), Number(u & 0xffffffffn)];
}

/**
 * Folds `n` elements from `off` (in elements of the 64-bit array), leaving out the mask with words
 * (maskHigh, maskLow), into out = [sum, min, max, masked], all exact integers in float64; false
 * when a value is too large for that (nothing is folded then).
 */
export function foldInt64(
  words: Uint32Array,
  signed: boolean,
  off: number,
  stride: number,
  n: number,
  maskHigh: number,
  maskLow: number,
  out: Float64Array,
): boolean {
  // |v| < limit * 2^32 <= 2^53 / n, so no sum of up to n of them reaches 2^53.
  const limit = Math.floor(2 ** 21 / Math.max(1, n));
  if (limit < 1) return false;
  let s = 0;
  let lo = Infinity;
  let hi = -Infinity;
  let masked = 0;
  for (let j = 0, w = 2 * off; j < n; j++, w += 2 * stride) {
    if (words[w + 1] === maskHigh && words[w] === maskLow) {
      masked++;
      continue;
    }
    const high = signed ? words[w + 1] | 0 : words[w + 1];
    if (high >= limit || high < -limit) return false;
    const v = high * 4294967296 + words[w];
    s += v;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  out[0] = s;
  out[1] = lo;
  out[2] = hi;
  out[3] = masked;
  return true;
}
