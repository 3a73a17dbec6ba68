/**
 * The odometer over the outer dimensions of a strided walk: every position of dimensions
 * 0..levels-1 (the last fastest), with an offset on each of two sides (source and destination,
 * data and output) stepped incrementally instead of recomputed. The chunk kernel's runs and the
 * chunk copy of `get` both walk their fused dimensions with it.
 */
export function walkOuter(
  counts: readonly number[],
  stepsA: readonly number[],
  stepsB: readonly number[],
  levels: number,
  a: number,
  b: number,
  visit: (a: number, b: number) => void,
): void {
  const at = new Array<number>(Math.max(0, levels)).fill(0);
  for (;;) {
    visit(a, b);
    let d = levels - 1;
    while (d >= 0 && ++at[d] === counts[d]) {
      at[d] = 0;
      a -= (counts[d] - 1) * stepsA[d];
      b -= (counts[d] - 1) * stepsB[d];
      d--;
    }
    if (d < 0) return;
    a += stepsA[d];
    b += stepsB[d];
  }
}
