/**
 * Every operation over sampled dtype × order × byte order × shape × selection × axis × codec ×
 * missing rule, read from a real s3rver and a real HTTP server, checked against a brute-force
 * numpy.ma reference (fixtures/server/harness.ts) and against Reductionist's wire format.
 */
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { loadCodecChain, registerCodecs } from "../src/codecs/index.js";
import { startServer, type ReductionServer } from "../src/server/index.js";
import { S3Store } from "../src/stores/s3.js";
import {
  basic, DTYPES, encodeArray, ITEM, post, prng, reference, responseValues, values, type Missing, type TestDtype,
} from "./fixtures/server/harness.js";
import { startHttpServer, type TestServer } from "./servers/nginx.js";
import { startS3rver, S3RVER_CREDENTIALS, type S3rverHandle } from "./servers/s3rver.js";

const OPS = ["count", "sum", "min", "max", "select"] as const;
const SHAPES = [[24], [4, 6], [3, 4, 5]];
const CODECS: { request: Record<string, unknown>; chain: { id: string; [k: string]: unknown }[] }[] = [
  { request: {}, chain: [] },
  { request: { compression: { id: "zlib" } }, chain: [{ id: "zlib", level: 1 }] },
  { request: { compression: { id: "gzip" } }, chain: [{ id: "gzip", level: 1 }] },
  { request: { filters: [{ id: "shuffle", element_size: 0 }], compression: { id: "zlib" } }, chain: [{ id: "shuffle", elementsize: 0 }, { id: "zlib", level: 1 }] },
  { request: { filters: [{ id: "shuffle", element_size: 0 }] }, chain: [{ id: "shuffle", elementsize: 0 }] },
  { request: { compression: { id: "zstd", level: 1 } }, chain: [{ id: "zstd", level: 1 }] },
];

interface Case {
  op: (typeof OPS)[number];
  dtype: TestDtype;
  order: "C" | "F";
  byteOrder: "big" | "little";
  shape: number[];
  selection?: [number, number, number][];
  axis?: number | number[];
  codec: number;
  missing?: Missing;
  iface: "s3" | "http";
}

function sampleCases(n: number): Case[] {
  const r = prng(20261122);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)];
  const cases: Case[] = [];
  for (let i = 0; i < n; i++) {
    const dtype = DTYPES[i % DTYPES.length];
    const shape = pick(SHAPES);
    const selection = r() < 0.6
      ? shape.map((len) => {
          const step = pick([1, 2, 3, -1, -2]);
          const a = Math.floor(r() * len) - (r() < 0.3 ? len : 0);
          const b = step > 0 ? a + 1 + Math.floor(r() * len) : -len - 1 + Math.floor(r() * len);
          return [a, b, step] as [number, number, number];
        })
      : undefined;
    const axisKind = r();
    const axis = axisKind < 0.4 ? undefined : axisKind < 0.6 ? Math.floor(r() * shape.length)
      : axisKind < 0.85 ? [...new Set(shape.map((_, d) => d).filter(() => r() < 0.5))].sort() : [];
    const v = values(dtype, 64, r);
    const missingKinds: (Missing | undefined)[] = [
      undefined,
      { missing_value: v[0] },
      { missing_values: [v[1], v[2]] },
      { valid_min: v[3] },
      { valid_max: v[4] },
      { valid_range: v[5] < v[6] ? [v[5], v[6]] : v[5] > v[6] ? [v[6], v[5]] : [v[5], typeof v[5] === "bigint" ? v[5] + 1n : (v[5] as number) + 1] },
    ];
    cases.push({
      op: OPS[i % OPS.length],
      dtype,
      order: pick(["C", "F"] as const),
      byteOrder: pick(["big", "little"] as const),
      shape,
      selection: selection && (axis === undefined || true) ? selection : undefined,
      axis,
      codec: Math.floor(r() * CODECS.length),
      missing: pick(missingKinds),
      iface: pick(["s3", "http"] as const),
    });
  }
  return cases;
}

const LIMIT: Record<string, [number | bigint, number | bigint]> = {
  int32: [-(2 ** 31), 2 ** 31 - 1], uint32: [0, 2 ** 32 - 1], int64: [-(2n ** 63n), 2n ** 63n - 1n], uint64: [0n, 2n ** 64n - 1n],
  int8: [-128, 127], uint8: [0, 255], int16: [-32768, 32767], uint16: [0, 65535],
  float32: [-3.4028234663852886e38, 3.4028234663852886e38], float64: [-Number.MAX_VALUE, Number.MAX_VALUE],
};
const SUM_DTYPE: Record<TestDtype, string> = {
  int8: "int64", int16: "int64", uint8: "uint64", uint16: "uint64", int32: "int32", uint32: "uint32",
  int64: "int64", uint64: "uint64", float16: "float32", float32: "float32", float64: "float64",
};

function wrap(v: number | bigint, dtype: string): number | bigint {
  switch (dtype) {
    case "int32": return Number(BigInt.asIntN(32, BigInt(v)));
    case "uint32": return Number(BigInt.asUintN(32, BigInt(v)));
    case "int64": return BigInt.asIntN(64, BigInt(v));
    case "uint64": return BigInt.asUintN(64, BigInt(v));
    case "float32": return Math.fround(Number(v));
  }
  return typeof v === "bigint" ? v : v;
}

function fortran<T>(xs: T[], shape: number[]): T[] {
  const out = new Array<T>(xs.length);
  xs.forEach((x, c) => {
    let rem = c;
    const idx = shape.map(() => 0);
    for (let d = shape.length - 1; d >= 0; d--) (idx[d] = rem % shape[d]), (rem = Math.floor(rem / shape[d]));
    let f = 0;
    let s = 1;
    for (let d = 0; d < shape.length; d++) (f += idx[d] * s), (s *= shape[d]);
    out[f] = x;
  });
  return out;
}

let s3: S3rverHandle;
let http: TestServer;
let root: string;
let server: ReductionServer;
let store: S3Store;
const cases = sampleCases(132);

beforeAll(async () => {
  registerCodecs();
  root = await mkdtemp(join(tmpdir(), "server-ops-"));
  await mkdir(join(root, "data"));
  [s3, http] = await Promise.all([startS3rver({ buckets: ["data"] }), startHttpServer(root)]);
  store = new S3Store({ bucket: "data", endpoint: s3.endpoint, forcePathStyle: true, credentials: S3RVER_CREDENTIALS });
  server = await startServer({ port: 0, allowHosts: ["127.0.0.1"], logger: () => undefined });
}, 60_000);

afterAll(async () => {
  await server?.close();
  await store?.close();
  await Promise.all([s3?.stop(), http?.stop()]);
  await rm(root, { recursive: true, force: true });
});

describe("operations match numpy.ma semantics and Reductionist's wire format", () => {
  test.each(cases.map((c, i) => [i, c] as const))("case %i", async (i, c) => {
    const n = c.shape.reduce((a, b) => a * b, 1);
    const logical = values(c.dtype, n, prng(i + 1));
    const stored = encodeArray(c.dtype, logical, c.shape, c.order, c.byteOrder);
    const codec = CODECS[c.codec];
    const chainConfig = codec.chain.map((x) => (x.id === "shuffle" ? { ...x, elementsize: ITEM[c.dtype] } : x));
    const chain = await loadCodecChain(chainConfig, { dataType: c.dtype, shape: c.shape });
    const body = await chain.encode(stored);
    const prefix = new Uint8Array(7).fill(0xee); // a non-zero offset, like a chunk inside a file
    const object = new Uint8Array([...prefix, ...body]);
    const key = `case ${i}/array+${c.dtype}.bin`;
    let url: string;
    if (c.iface === "s3") {
      await store.set(key, object);
      url = `${s3.endpoint}/data/${key.split("/").map(encodeURIComponent).join("/")}`;
    } else {
      await mkdir(join(root, "data", `case ${i}`), { recursive: true });
      await writeFile(join(root, "data", key), object);
      url = `${http.url}/data/${key.split("/").map(encodeURIComponent).join("/")}`;
    }
    const request: Record<string, unknown> = {
      interface_type: c.iface,
      url,
      dtype: c.dtype,
      byte_order: c.byteOrder,
      offset: prefix.length,
      size: body.length,
      shape: c.shape,
      order: c.order,
      ...(c.selection ? { selection: c.selection } : {}),
      ...(c.axis !== undefined ? { axis: c.axis } : {}),
      ...(c.missing ? { missing: c.missing } : {}),
      ...JSON.parse(JSON.stringify(codec.request).replace('"element_size":0', `"element_size":${ITEM[c.dtype]}`)),
    };
    const res = await post(server.url, c.op + (i % 7 === 0 ? "/" : ""), request, c.iface === "s3" ? basic("S3RVER", "S3RVER") : {});
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.type).toBe("application/cbor");
    expect(Object.keys(res.body).sort()).toEqual(["byte_order", "bytes", "count", "count_as_bytes", "dtype", "shape", "shape_as_bytes"]);
    expect(res.body.byte_order).toBe("little");
    expect(res.body.shape_as_bytes).toEqual(new Uint8Array(0));
    expect(res.body.count_as_bytes).toEqual(new Uint8Array(0));

    const axis = c.axis === undefined ? undefined : typeof c.axis === "number" ? [c.axis] : c.axis;
    const exp = reference(logical, c.shape, c.selection, c.op === "select" ? [] : axis, c.missing);
    const vdtype = c.dtype === "float16" ? "float32" : c.dtype;
    const got = responseValues(res.body.bytes as Uint8Array, res.body.dtype as string);
    const fOrder = <T>(xs: T[], shape: number[]) => (c.order === "F" && shape.length > 1 ? fortran(xs, shape) : xs);
    if (c.op === "select") {
      const selShape = exp.shape;
      expect(res.body.dtype).toBe(vdtype);
      expect(res.body.shape).toEqual(selShape);
      expect(res.body.count).toEqual([exp.count.reduce((a, b) => a + b, 0)]);
      expect(got).toEqual(fOrder(exp.selected, selShape));
      return;
    }
    const reduceAll = axis === undefined;
    const counts = reduceAll ? [exp.count.reduce((a, b) => a + b, 0)] : exp.count;
    const noAxes = axis !== undefined && axis.length === 0;
    const order = <T>(xs: T[]) => (noAxes ? fOrder(xs, exp.shape) : xs);
    expect(res.body.shape).toEqual(exp.shape);
    expect(res.body.count).toEqual(order(counts));
    if (c.op === "count") {
      expect(res.body.dtype).toBe("int64");
      expect(got).toEqual(order(counts).map(BigInt));
    } else if (c.op === "sum") {
      const dt = SUM_DTYPE[c.dtype];
      expect(res.body.dtype).toBe(dt);
      const sums = reduceAll ? [exp.sum.reduce((a, b) => (typeof a === "bigint" ? a + BigInt(b) : (a as number) + (b as number)), typeof exp.sum[0] === "bigint" ? 0n : 0)] : exp.sum;
      const want = order(sums).map((s) => wrap(s, dt));
      expect(got.map((v) => (typeof want[0] === "bigint" ? BigInt(v) : Number(v)))).toEqual(want);
    } else {
      expect(res.body.dtype).toBe(vdtype);
      const pickExt = (xs: (number | bigint | undefined)[], better: (a: number | bigint, b: number | bigint) => boolean) =>
        reduceAll ? [xs.reduce((a, b) => (a === undefined ? b : b === undefined ? a : better(b, a) ? b : a), undefined)] : xs;
      const ext = c.op === "min" ? pickExt(exp.min, (a, b) => a < b) : pickExt(exp.max, (a, b) => a > b);
      const empty = LIMIT[vdtype][c.op === "min" ? 1 : 0];
      const want = order(ext).map((v) => (v === undefined ? empty : v));
      expect(got.map((v) => (typeof want[0] === "bigint" ? BigInt(v) : Number(v)))).toEqual(want);
    }
  });
});

test("option_shape_as_bytes / option_count_as_bytes move shape and count into u64/i64 bytes", async () => {
  const logical = values("int32", 12, prng(5));
  await store.set("opts.bin", encodeArray("int32", logical, [3, 4], "C", "little"));
  const res = await post(server.url, "sum", {
    interface_type: "s3", url: `${s3.endpoint}/data/opts.bin`, dtype: "int32", shape: [3, 4], axis: 1,
    option_shape_as_bytes: true, option_count_as_bytes: true,
  }, basic("S3RVER", "S3RVER"));
  expect(res.status).toBe(200);
  expect(res.body.shape).toEqual([]);
  expect(res.body.count).toEqual([]);
  expect(Array.from(new BigUint64Array(new Uint8Array(res.body.shape_as_bytes as Uint8Array).buffer))).toEqual([3n]);
  expect(Array.from(new BigInt64Array(new Uint8Array(res.body.count_as_bytes as Uint8Array).buffer))).toEqual([4n, 4n, 4n]);
});

test("int64 missing values and bounds are exact beyond 2^53 (no trip through doubles)", async () => {
  const big = 2n ** 53n + 1n; // JSON.parse would read 2^53
  const data = new BigInt64Array([big, big - 1n, 2n ** 53n, 7n]);
  await store.set("int64.bin", new Uint8Array(data.buffer));
  const url = `${s3.endpoint}/data/int64.bin`;
  const auth = basic("S3RVER", "S3RVER");
  const masked = await post(server.url, "count", { interface_type: "s3", url, dtype: "int64", missing: { missing_value: big } }, auth);
  expect(masked.body.count).toEqual([3]);
  const ranged = await post(server.url, "sum", { interface_type: "s3", url, dtype: "int64", missing: { valid_min: big } }, auth);
  expect(ranged.body.count).toEqual([1]); // read as 2^53 it would admit three
  expect(responseValues(ranged.body.bytes as Uint8Array, "int64")).toEqual([big]);
});

test("NaN propagates through min/max/sum like numpy", async () => {
  await store.set("nan.bin", new Uint8Array(new Float64Array([1, NaN, -3, 4]).buffer));
  const body = { interface_type: "s3", url: `${s3.endpoint}/data/nan.bin`, dtype: "float64", shape: [2, 2], axis: 1 };
  const auth = basic("S3RVER", "S3RVER");
  for (const op of ["min", "max", "sum"]) {
    const res = await post(server.url, op, body, auth);
    const got = responseValues(res.body.bytes as Uint8Array, "float64") as number[];
    expect(Number.isNaN(got[0])).toBe(true);
    expect(got[1]).toBe(op === "min" ? -3 : op === "max" ? 4 : 1);
  }
});

test("moments extension: count, sum, min, max, M2 per output element", async () => {
  const data = new Float64Array([1, 2, 3, 4, 10, 20, 30, 40]);
  await store.set("moments.bin", new Uint8Array(data.buffer));
  const res = await post(server.url, "moments", {
    interface_type: "s3", url: `${s3.endpoint}/data/moments.bin`, dtype: "float64", shape: [2, 4], axis: 1,
    missing: { missing_values: [40], valid_min: 2 },
  }, basic("S3RVER", "S3RVER"));
  expect(res.status).toBe(200);
  expect(res.body.count).toEqual([3, 3]);
  expect(responseValues(res.body.sum as Uint8Array, "float64")).toEqual([9, 60]);
  expect(responseValues(res.body.min as Uint8Array, "float64")).toEqual([2, 10]);
  expect(responseValues(res.body.max as Uint8Array, "float64")).toEqual([4, 30]);
  expect(responseValues(res.body.m2 as Uint8Array, "float64")).toEqual([2, 200]);
});

test("null selection parts mean numpy's defaults (as PyActiveStorage sends slice(None, ...))", async () => {
  await store.set("nulls.bin", new Uint8Array(new Int32Array([1, 2, 3, 4, 5, 6]).buffer));
  const res = await post(server.url, "select", {
    interface_type: "s3", url: `${s3.endpoint}/data/nulls.bin`, dtype: "int32", shape: [2, 3], selection: [[null, null, null], [null, null, -2]],
  }, basic("S3RVER", "S3RVER"));
  expect(res.status).toBe(200);
  expect(res.body.shape).toEqual([2, 2]);
  expect(responseValues(res.body.bytes as Uint8Array, "int32")).toEqual([3, 1, 6, 4]);
});
