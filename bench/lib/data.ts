/**
 * Benchmark objects: incompressible bytes, different for every key, cheap to produce and to check.
 * Every object is a window into one shared pseudo-random pool, so making 10,000 of them costs no
 * memory and reading one back can be checked with a memcmp.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";

export interface Dataset {
  name: string;
  /** Keys relative to the store root: `<name>/<index>`. */
  keys: string[];
  objectSize: number;
  bytes: number;
  /** The bytes of `keys[i]`. */
  payload(i: number): Uint8Array;
}

/** xorshift32: deterministic, so every run moves the same bytes. */
function randomPool(size: number, seed: number): Uint8Array {
  const pool = new Uint8Array(size);
  const words = new Uint32Array(pool.buffer);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    words[i] = x;
  }
  return pool;
}

export function makeDataset(name: string, count: number, objectSize: number, seed = 42): Dataset {
  // Twice the object size, so windows at different offsets differ.
  const pool = randomPool(Math.max(2 * objectSize, 1 << 20), seed);
  const span = pool.length - objectSize;
  const keys = Array.from({ length: count }, (_, i) => `${name}/${String(i).padStart(6, "0")}`);
  return {
    name,
    keys,
    objectSize,
    bytes: count * objectSize,
    payload(i) {
      const offset = ((i * 7919 * 8) % span) & ~7;
      return pool.subarray(offset, offset + objectSize);
    },
  };
}

export function indexOf(key: string): number {
  return Number(key.slice(key.lastIndexOf("/") + 1));
}

/** Whether `bytes` are the bytes of `key`; the benchmark refuses to report speed for wrong data. */
export function matches(dataset: Dataset, key: string, bytes: Uint8Array | undefined): boolean {
  return bytes !== undefined && Buffer.compare(bytes, dataset.payload(indexOf(key))) === 0;
}

/** Writes the dataset as plain files under `root` (what nginx serves and rclone uploads). */
export async function writeDatasetFiles(root: string, dataset: Dataset): Promise<void> {
  await mkdir(join(root, dataset.name), { recursive: true });
  for (let i = 0; i < dataset.keys.length; i++) {
    const path = join(root, dataset.keys[i]);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, dataset.payload(i));
  }
}
