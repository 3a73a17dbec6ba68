/** Element strides of a dense N-d array in C (row-major, the default) or F (column-major) order. */
export function stridesOf(shape: readonly number[], order: "C" | "F" = "C"): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  if (order === "C") {
    for (let d = shape.length - 1; d >= 0; d--) (strides[d] = s), (s *= shape[d]);
  } else {
    for (let d = 0; d < shape.length; d++) (strides[d] = s), (s *= shape[d]);
  }
  return strides;
}
