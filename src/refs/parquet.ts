/**
 * kerchunk's parquet layout for large reference sets (fsspec `LazyReferenceMapper`, written by
 * kerchunk.df.refs_to_dataframe):
 *
 *   <dir>/.zmetadata             {"metadata": {<every .z* key>: <its JSON object>}, "record_size": N}
 *   <dir>/<array>/refs.<i>.parq  rows `path` (string, null when inline), `offset` (int64),
 *                                `size` (int64), `raw` (binary, the inline bytes, else null)
 *
 * A chunk's record is found by arithmetic, not by a search: its index in C order over the array's
 * chunk grid (a scalar has a grid of [1]) is `n`, and it lives in file `n / N` at row `n % N`. A row
 * with neither path nor raw is a missing chunk; `offset = size = 0` with a path means the whole
 * object. Files of records without any chunk are not written (a reader treats them as all missing).
 * Differences from fsspec's writer that readers do not see: snappy instead of zstd compression, and
 * the last file of an array holds only the rows its chunks need, not a full N.
 */
import { ReferenceSetError } from "../errors.js";
import { loadHyparquetWriter } from "../stores/deps-lazy.js";
import { decodeInline } from "./inline.js";
import type { Reference, References } from "./types.js";

export const DEFAULT_RECORD_SIZE = 100_000;

/** One parquet file of the layout: its key below the directory and its bytes. */
export interface ParquetFile {
  key: string;
  bytes: Uint8Array;
}

export function isMetadataKey(key: string): boolean {
  return key.startsWith(".z") || key.includes("/.z");
}

/** Chunks per axis; scalars have one chunk (fsspec's convention). */
export function chunkGrid(shape: readonly number[], chunks: readonly number[]): number[] {
  const grid = shape.map((n, i) => Math.ceil(n / chunks[i]));
  return grid.length === 0 ? [1] : grid;
}

/** C-order number of a chunk key in `grid`, or undefined when the key is not a chunk of it. */
export function chunkNumber(chunk: string, grid: readonly number[]): number | undefined {
  const parts = chunk.split(".");
  if (parts.length !== grid.length || parts.some((p) => !/^\d+$/.test(p))) return undefined;
  let n = 0;
  for (let i = 0; i < grid.length; i++) {
    const index = Number(parts[i]);
    if (index >= grid[i]) return undefined;
    n = n * grid[i] + index;
  }
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Shape and chunks from `.zarray` JSON, checked so a lying field cannot drive the arithmetic. */
export function gridOf(zarray: unknown, key: string): number[] {
  const z = zarray as { shape?: unknown; chunks?: unknown };
  const ints = (v: unknown, min: number): v is number[] => Array.isArray(v) && v.every((n) => Number.isSafeInteger(n) && n >= min);
  if (!ints(z.shape, 0) || !ints(z.chunks, 1) || z.shape.length !== z.chunks.length) {
    throw new ReferenceSetError('.zarray needs "shape" and positive "chunks" of equal length', key);
  }
  return chunkGrid(z.shape, z.chunks);
}

function parseMetadata(text: string, key: string): Record<string, unknown> {
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value === "object" && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch (cause) {
    throw new ReferenceSetError("metadata is not valid JSON", key, undefined, { cause });
  }
  throw new ReferenceSetError("metadata must be a JSON object", key);
}

function expand(url: string, templates: Record<string, string> | undefined, key: string): string {
  if (!templates || !url.includes("{{")) return url;
  return url.replace(/\{\{\s*([^}\s]+)\s*\}\}/g, (_, name: string) => {
    const t = templates[name];
    if (t === undefined) throw new ReferenceSetError(`unknown template {{${name}}}`, key, url);
    return t;
  });
}

/**
 * The files of the parquet layout for a reference set: `.zmetadata` (JSON text, with every metadata
 * value written exactly as it stands in the set) and the record files.
 */
export async function referencesToParquet(references: References, recordSize = DEFAULT_RECORD_SIZE): Promise<ParquetFile[]> {
  if (!Number.isSafeInteger(recordSize) || recordSize < 1) throw new ReferenceSetError(`record size must be a positive integer, got ${recordSize}`);
  if (references.gen !== undefined && references.gen.length > 0) {
    throw new ReferenceSetError('"gen" keys cannot be written as parquet; expand them first');
  }
  const metadata: string[] = [];
  const grids = new Map<string, number[]>();
  const records = new Map<string, Map<number, Map<number, Reference>>>(); // field → record → row
  const chunkKeys: [string, Reference][] = [];
  for (const [key, ref] of Object.entries(references.refs)) {
    if (key === ".zmetadata" || key.endsWith("/.zmetadata")) continue; // rebuilt below
    if (!isMetadataKey(key)) {
      chunkKeys.push([key, ref]);
      continue;
    }
    if (typeof ref !== "string") throw new ReferenceSetError("metadata must be inline JSON to be written as parquet", key);
    const text = new TextDecoder().decode(decodeInline(ref, key));
    const value = parseMetadata(text, key);
    metadata.push(`${JSON.stringify(key)}:${text}`);
    if (key === ".zarray" || key.endsWith("/.zarray")) grids.set(key.slice(0, -".zarray".length).replace(/\/$/, ""), gridOf(value, key));
  }
  for (const [key, ref] of chunkKeys) {
    const slash = key.lastIndexOf("/");
    const field = slash < 0 ? undefined : key.slice(0, slash);
    const grid = field === undefined ? undefined : grids.get(field);
    if (field === undefined || grid === undefined) {
      throw new ReferenceSetError("not a chunk of any array in the set (parquet holds only metadata and chunks)", key);
    }
    const n = chunkNumber(key.slice(slash + 1), grid);
    if (n === undefined) throw new ReferenceSetError(`not a "."-separated chunk key inside the grid [${grid}] of "${field}"`, key);
    let byRecord = records.get(field);
    if (!byRecord) records.set(field, (byRecord = new Map()));
    const record = Math.floor(n / recordSize);
    let rows = byRecord.get(record);
    if (!rows) byRecord.set(record, (rows = new Map()));
    rows.set(n % recordSize, ref);
  }
  const files: ParquetFile[] = [
    { key: ".zmetadata", bytes: new TextEncoder().encode(`{"metadata":{${metadata.join(",")}},"record_size":${recordSize}}`) },
  ];
  const { parquetWriteBuffer } = await loadHyparquetWriter();
  for (const [field, byRecord] of records) {
    const chunks = grids.get(field)!.reduce((a, b) => a * b, 1);
    for (const [record, rows] of [...byRecord].sort((a, b) => a[0] - b[0])) {
      const length = Math.min(recordSize, chunks - record * recordSize);
      files.push({ key: `${field}/refs.${record}.parq`, bytes: recordFile(parquetWriteBuffer, rows, length, references.templates, field) });
    }
  }
  return files;
}

function recordFile(
  parquetWriteBuffer: typeof import("hyparquet-writer").parquetWriteBuffer,
  rows: Map<number, Reference>,
  length: number,
  templates: Record<string, string> | undefined,
  field: string,
): Uint8Array {
  const path: (string | null)[] = new Array<string | null>(length).fill(null);
  const offset = new BigInt64Array(length);
  const size = new BigInt64Array(length);
  const raw: (Uint8Array | null)[] = new Array<Uint8Array | null>(length).fill(null);
  for (const [row, ref] of rows) {
    if (typeof ref === "string") {
      raw[row] = decodeInline(ref, `${field}/row ${row}`);
    } else {
      // kerchunk's parquet layout has no target: a null path there means "no reference".
      if (!ref[0]) throw new ReferenceSetError("a reference with a null url (the set's target) cannot be written as parquet: give its url", `${field}/row ${row}`);
      path[row] = expand(ref[0], templates, field);
      if (ref.length === 3) {
        offset[row] = BigInt(ref[1]);
        size[row] = BigInt(ref[2]);
      }
    }
  }
  const buffer = parquetWriteBuffer({
    columnData: [
      { name: "path", data: path, type: "STRING" },
      { name: "offset", data: offset, type: "INT64", nullable: false },
      { name: "size", data: size, type: "INT64", nullable: false },
      { name: "raw", data: raw, type: "BYTE_ARRAY" },
    ],
    statistics: false,
    rowGroupSize: length,
  });
  return new Uint8Array(buffer);
}
