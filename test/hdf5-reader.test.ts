/**
 * The HDF5 reader against what h5py (HDF5 1.10.8) reads from the same files: our own fixtures
 * (test/fixtures/hdf5-core, made by generate.py) and the shared corpus of files other projects wrote.
 */
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { Hdf5FormatError } from "../src/errors.js";
import { decodeValue } from "../src/hdf5/datatype-values.js";
import { openHdf5, type Hdf5File } from "../src/hdf5/file.js";
import type { AttributeValue, Datatype, Group, Node } from "../src/hdf5/model.js";
import { bytesSource, fileSource } from "./fixtures/hdf5-core/file-source.js";

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, "fixtures", "hdf5-core");
const corpus = resolve(here, "..", "..", "shared", "corpus");

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
interface ExpectedNode {
  kind: string;
  address?: number;
  attrs?: Record<string, { dtype: Json; shape: number[] | null; value: Json }>;
  shape?: number[] | null;
  maxshape?: (number | null)[] | null;
  dtype?: Json;
  layout?: string;
  chunks?: number[];
  filters?: { id: number; optional: boolean; clientData: number[] }[];
  fill?: { defined: string; allocTime: number; fillTime: number; value?: Json };
  contiguous?: { offset: number; size: number };
  target?: string;
  file?: string;
}
interface ExpectedFile {
  superblockVersion: number;
  userblock: number;
  nodes: Record<string, ExpectedNode>;
}
const expected = JSON.parse(readFileSync(join(fixtures, "expected.json"), "utf8")) as Record<string, ExpectedFile>;

function pathOf(name: string): string {
  return name.startsWith("corpus/") ? join(corpus, name.slice(7)) : join(fixtures, name);
}

/** Our datatype in the shape generate.py's describe_dtype gives h5py's. */
function describeType(t: Datatype): Json {
  const order = (le: boolean, size: number) => (size === 1 ? "|" : le ? "<" : ">");
  switch (t.class) {
    case "integer":
      return `${order(t.littleEndian, t.size)}${t.signed ? "i" : "u"}${t.size}`;
    case "float":
      return `${order(t.littleEndian, t.size)}f${t.size}`;
    case "string":
      return `|S${t.size}`;
    case "vlen-string":
      return { vlen_str: t.charset };
    case "vlen-sequence":
      return { vlen: describeType(t.base) };
    case "enum": {
      const names = t.members.map((m) => m.name).sort();
      if (names.join() === "FALSE,TRUE") return "|b1";
      return { enum: describeType(t.base), members: Object.fromEntries(t.members.map((m) => [m.name, Number(m.value)])) };
    }
    case "compound":
      return { compound: t.members.map((m) => [m.name, describeType(m.type), m.offset]), itemsize: t.size };
    case "array":
      return { array: describeType(t.base), shape: t.dims };
    case "opaque":
      return `|V${t.size}`;
    case "reference":
      return { ref: t.kind };
    default:
      return `${t.class}${(t as { size: number }).size}`;
  }
}

/** Our decoded value in the JSON shape generate.py's jsonable gives h5py's. */
function normalize(v: AttributeValue, t: Datatype): Json {
  if (Array.isArray(v)) {
    const inner = t.class === "array" ? t.base : t.class === "vlen-sequence" ? t.base : t;
    if (t.class === "vlen-sequence" && v.every((x) => !Array.isArray(x))) return v.map((x) => normalize(x, inner));
    return v.map((x) => normalize(x, Array.isArray(x) && t.class !== "array" && t.class !== "vlen-sequence" ? t : inner));
  }
  if (t.class === "reference") {
    if (t.kind === "region") return { region_ref: true };
    return { ref: v as number | null };
  }
  if (typeof v === "bigint") return { bigint: v.toString() };
  if (typeof v === "number") {
    if (Number.isNaN(v)) return { float: "NaN" };
    if (!Number.isFinite(v)) return { float: v > 0 ? "Infinity" : "-Infinity" };
    return v;
  }
  if (v instanceof Uint8Array) return { bytes: Array.from(v) };
  if (v !== null && typeof v === "object" && t.class === "compound") {
    return Object.fromEntries(t.members.map((m) => [m.name, normalize((v as Record<string, AttributeValue>)[m.name], m.type)]));
  }
  return v as Json;
}

function flatten(group: Group, out = new Map<string, Node>()): Map<string, Node> {
  out.set(group.path, group);
  for (const child of group.children) {
    if (child.kind === "group") flatten(child, out);
    else out.set(child.path, child);
  }
  return out;
}

async function compareFile(name: string, file: Hdf5File) {
  const want = expected[name];
  expect(file.superblockVersion).toBe(want.superblockVersion);
  const nodes = flatten(await file.root());
  const wantPaths = Object.keys(want.nodes).filter((p) => want.nodes[p].kind !== "datatype").sort();
  expect([...nodes.keys()].sort()).toEqual(wantPaths);
  for (const path of wantPaths) {
    const w = want.nodes[path];
    const got = nodes.get(path)!;
    expect({ path, kind: got.kind }).toEqual({ path, kind: w.kind });
    if (got.kind === "soft-link") expect(got.target).toBe(w.target);
    if (got.kind === "external-link") expect({ file: got.file, target: got.target }).toEqual({ file: w.file, target: w.target });
    if (got.kind !== "group" && got.kind !== "dataset") continue;
    expect({ path, address: got.address }).toEqual({ path, address: w.address });
    const attrs: Record<string, unknown> = {};
    for (const a of got.attributes) {
      attrs[a.name] = { dtype: describeType(a.type), shape: a.shape, value: a.shape === null ? null : normalize(a.value, a.type) };
    }
    expect({ path, attrs }).toEqual({ path, attrs: w.attrs });
    if (got.kind !== "dataset") continue;
    expect({ path, shape: got.shape, maxshape: got.maxShape, dtype: describeType(got.type) }).toEqual({
      path,
      shape: w.shape,
      // With 4-byte lengths HDF5 1.10 decodes the all-ones "unlimited" as 2^32-1 instead of H5S_UNLIMITED;
      // the spec says all ones means unlimited, which is what we report.
      maxshape: w.maxshape?.map((m) => (name === "sizes4.h5" && m === 2 ** 32 - 1 ? null : m)) ?? null,
      dtype: w.dtype,
    });
    expect({ path, layout: got.layout.kind }).toEqual({ path, layout: w.layout });
    if (got.layout.kind === "chunked") expect({ path, chunks: got.layout.chunkShape }).toEqual({ path, chunks: w.chunks });
    if (got.layout.kind === "contiguous" && w.contiguous) {
      expect({ path, offset: file.context.base + got.layout.address, size: got.layout.size }).toEqual({ path, ...w.contiguous });
    }
    expect({ path, filters: got.filters.map(({ id, optional, clientData }) => ({ id, optional, clientData })) }).toEqual({
      path,
      filters: w.filters,
    });
    const fill = w.fill!;
    if (got.fill.allocTime !== undefined) {
      expect({ path, alloc: got.fill.allocTime, fillTime: got.fill.fillTime }).toEqual({ path, alloc: fill.allocTime, fillTime: fill.fillTime });
    }
    if (fill.defined === "user") {
      expect(got.fill.bytes, `${path} fill`).toBeDefined();
      const value = await decodeValue(file.context, got.type, [], got.fill.bytes!, { address: got.address, structure: "fill" });
      expect({ path, fill: normalize(value, got.type) }).toEqual({ path, fill: fill.value });
    }
  }
  return nodes;
}

describe("HDF5 reader matches h5py", () => {
  for (const name of Object.keys(expected)) {
    it(name, async () => {
      const file = await openHdf5(fileSource(pathOf(name)));
      await compareFile(name, file);
    });
  }
});
