/** Dataspace message (0x0001), versions 1 and 2. */
import { Cursor, UNDEFINED_ADDRESS } from "../io.js";

export interface Dataspace {
  /** [] for scalar, null for a null dataspace (no elements). */
  shape: number[] | null;
  /** null entries are unlimited; null overall for a null dataspace. */
  maxShape: (number | null)[] | null;
}

/** Number of elements; 0 for a null dataspace. */
export function elementCount(space: Dataspace): number {
  if (space.shape === null) return 0;
  return space.shape.reduce((a, b) => a * b, 1);
}

export function decodeDataspace(c: Cursor): Dataspace {
  const version = c.u8();
  if (version !== 1 && version !== 2) throw c.error(`unknown dataspace message version ${version}`);
  const rank = c.u8();
  const flags = c.u8();
  if (rank > 32) throw c.error(`dataspace rank ${rank} exceeds HDF5's maximum of 32`);
  let kind = rank === 0 ? 0 : 1;
  if (version === 1) {
    c.skip(5);
  } else {
    kind = c.u8();
    if (kind > 2) throw c.error(`unknown dataspace type ${kind}`);
  }
  if (kind === 2) return { shape: null, maxShape: null };
  const shape: number[] = [];
  for (let i = 0; i < rank; i++) {
    const n = c.length();
    if (n === UNDEFINED_ADDRESS) throw c.error(`dimension ${i} has undefined size`);
    shape.push(n);
  }
  let maxShape: (number | null)[] = shape.slice();
  if (flags & 0x01) {
    maxShape = [];
    for (let i = 0; i < rank; i++) {
      const n = c.length();
      maxShape.push(n === UNDEFINED_ADDRESS ? null : n);
    }
  }
  return { shape, maxShape };
}
