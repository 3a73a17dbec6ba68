/**
 * The reference store against fixtures whose expected values come from h5py
 * (test/fixtures/refs-store/generate.py, run with /usr/bin/python3).
 *
 * "References produced by Python kerchunk": kerchunk cannot be installed here (not in Debian, no
 * PyPI) and fsspec 2022.11 has no HDF5 scanner, so the reference sets are written in kerchunk's
 * exact format (version 1 with templates and gen, and version 0) by the generator from h5py's
 * chunk index, and checked there to read back equal to h5py through fsspec's ReferenceFileSystem.
 */
import { copyFile, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import * as zarr from "zarrita";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReferenceSetError } from "../src/errors.js";
import { evaluate, expandGen } from "../src/refs/gen.js";
import { openReferences } from "../src/refs/open.js";
import { parseReferences, ReferenceStore } from "../src/refs/reference-store.js";
import { resolveUrl } from "../src/refs/resolve.js";
import type { References } from "../src/refs/types.js";
import { writeReferences } from "../src/refs/write.js";
import { openStore } from "../src/stores/open.js";
import { startHttpServer, type TestServer } from "./servers/nginx.js";
import { S3RVER_CREDENTIALS, startS3rver, type S3rverHandle } from "./servers/s3rver.js";

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "fixtures", "refs-store");
const VARIABLES = ["raw", "z", "small", "whole"] as const;

interface Expected {
  dtype: string;
  shape: number[];
  values: number[];
}
const expected = JSON.parse(await readFile(join(FIXTURES, "expected.json"), "utf8")) as Record<(typeof VARIABLES)[number], Expected> & {
  raw_chunks: Record<string, [number, number]>;
};
const fileBytes = new Uint8Array(await readFile(join(FIXTURES, "data.h5")));
const v1Text = await readFile(join(FIXTURES, "refs_v1.json"), "utf8");
const v1 = () => JSON.parse(v1Text) as Record<string, unknown> & { refs: Record<string, unknown>; gen: Record<string, unknown>[] };

async function readAll(store: ReferenceStore, name: string): Promise<{ shape: number[]; values: number[]; dtype: string }> {
  const arr = await zarr.open(zarr.root(store).resolve(name), { kind: "array" });
  const out = await zarr.get(arr);
  return { shape: out.shape, values: Array.from(out.data as ArrayLike<number>), dtype: arr.dtype };
}

async function expectAllVariables(store: ReferenceStore): Promise<void> {
  for (const name of VARIABLES) {
    const got = await readAll(store, name);
    expect(got.shape, name).toEqual(expected[name].shape);
    expect(got.values, name).toEqual(expected[name].values);
  }
}

describe("reading kerchunk-format references (values from h5py)", () => {
  it("version 1 (templates, gen with dict and list dimensions, inline, base64, [url]) through openReferences", async () => {
    const store = await openReferences(join(FIXTURES, "refs_v1.json"));
    try {
      await expectAllVariables(store);
    } finally {
      await store.close();
    }
  });

  it("version 0 (the flat mapping)", async () => {
    const store = await openReferences(join(FIXTURES, "refs_v0.json"));
    try {
      await expectAllVariables(store);
    } finally {
      await store.close();
    }
  });

  it("relative urls resolve against the references' own directory, not the working directory", async () => {
    const cwd = process.cwd();
    process.chdir(tmpdir());
    try {
      const store = await openReferences(pathToFileURL(join(FIXTURES, "refs_v1.json")).href);
      await expectAllVariables(store);
      await store.close();
    } finally {
      process.chdir(cwd);
    }
  });

  it("JSON-object values (.zattrs/.zarray given as objects) are served as their JSON text", async () => {
    const refs = v1();
    for (const key of Object.keys(refs.refs)) {
      if (/\.z(attrs|array|group)$/.test(key)) refs.refs[key] = JSON.parse(refs.refs[key] as string) as unknown;
    }
    const store = await openReferences(refs as unknown as References, { base: FIXTURES + "/" });
    try {
      await expectAllVariables(store);
      const attrs = JSON.parse(new TextDecoder().decode(await store.get("/raw/.zattrs"))) as Record<string, unknown>;
      expect(attrs).toEqual(JSON.parse(JSON.parse(v1Text).refs["raw/.zattrs"] as string));
    } finally {
      await store.close();
    }
  });

  it("gen expands to exactly h5py's chunk table", () => {
    const refs = parseReferences(v1Text);
    const generated = expandGen(refs.gen!, refs.templates);
    const want = Object.fromEntries(Object.entries(expected.raw_chunks).map(([k, [o, n]]) => [`raw/${k}`, ["data.h5", o, n]]));
    expect(Object.fromEntries(generated)).toEqual(want);
  });
});

describe("get and getRange for every entry kind", () => {
  let store: ReferenceStore;
  const refs = v1();
  const zChunk = Object.entries(refs.refs).find(([k]) => k.startsWith("z/") && !k.includes(".z"))!;
  const [zKey, [, zOffset, zLength]] = zChunk as [string, [string, number, number]];
  const whole = new Uint8Array(0);
  let wholeBytes = whole;

  beforeAll(async () => {
    wholeBytes = new Uint8Array(await readFile(join(FIXTURES, "whole.bin")));
    // A null url and an empty url both mean the default target.
    refs.refs["nullurl/0"] = [null, zOffset, zLength];
    refs.refs["emptyurl/0"] = ["", zOffset, zLength];
    refs.refs["json/.zattrs"] = { a: [1, 2], b: "x" };
    store = new ReferenceStore(parseReferences(refs), { baseDir: FIXTURES, target: join(FIXTURES, "data.h5") });
  });
  afterAll(() => store.close());

  const cases: [string, () => Uint8Array][] = [
    ["inline UTF-8", () => new TextEncoder().encode(JSON.parse(v1Text).refs[".zgroup"] as string)],
    ["inline base64", () => new Uint8Array(Buffer.from((JSON.parse(v1Text).refs["small/0.0"] as string).slice(7), "base64"))],
    ["JSON object", () => new TextEncoder().encode(JSON.stringify({ a: [1, 2], b: "x" }))],
    ["[url]", () => wholeBytes],
    ["[url, offset, length] with a template", () => fileBytes.subarray(zOffset, zOffset + zLength)],
    ["gen", () => fileBytes.subarray(expected.raw_chunks["2.1"][0], expected.raw_chunks["2.1"][0] + expected.raw_chunks["2.1"][1])],
    ["null url → target", () => fileBytes.subarray(zOffset, zOffset + zLength)],
    ["empty url → target", () => fileBytes.subarray(zOffset, zOffset + zLength)],
  ];
  const keys: Record<string, string> = {
    "inline UTF-8": ".zgroup",
    "inline base64": "small/0.0",
    "JSON object": "json/.zattrs",
    "[url]": "whole/0",
    "[url, offset, length] with a template": zKey,
    gen: "raw/2.1",
    "null url → target": "nullurl/0",
    "empty url → target": "emptyurl/0",
  };

  for (const [kind, want] of cases) {
    it(kind, async () => {
      const key = `/${keys[kind]}` as `/${string}`;
      const bytes = want();
      expect(bytes.length).toBeGreaterThan(3);
      expect(await store.get(key)).toEqual(bytes);
      expect(await store.getRange(key, { offset: 1, length: 2 })).toEqual(bytes.subarray(1, 3));
      expect(await store.getRange(key, { suffixLength: 3 })).toEqual(bytes.subarray(bytes.length - 3));
      expect(await store.getRange(key, { offset: bytes.length - 1, length: 100 })).toEqual(bytes.subarray(bytes.length - 1));
      expect(await store.getRange(key, { offset: bytes.length + 5, length: 2 })).toEqual(new Uint8Array(0));
    });
  }

  it("getMany: values in one coalesced read, missing keys undefined", async () => {
    const before = store.stats.requests;
    const chunkKeys = Object.keys(expected.raw_chunks).map((k) => `raw/${k}`);
    const got = await store.getMany([...chunkKeys, "raw/9.9"]);
    expect(got.get("raw/9.9")).toBeUndefined();
    for (const k of chunkKeys) {
      const [o, n] = expected.raw_chunks[k.slice(4)];
      expect(got.get(k)).toEqual(fileBytes.subarray(o, o + n));
    }
    expect(store.stats.requests - before).toBe(1);
  });
});

describe("a caller's resolver", () => {
  it("stores with only get/getRange are read with coalesced getRange calls", async () => {
    const calls: { offset: number; length: number }[] = [];
    const target = {
      get: async () => fileBytes,
      getRange: async (_key: string, range: { offset: number; length: number }) => {
        calls.push(range);
        return fileBytes.subarray(range.offset, range.offset + range.length);
      },
    };
    const store = new ReferenceStore(parseReferences(v1Text), { resolver: () => ({ store: target, key: "data.h5" }) });
    const got = await readAll(store, "raw");
    expect(got.values).toEqual(expected.raw.values);
    const offsets = Object.values(expected.raw_chunks).map(([o]) => o);
    const end = Math.max(...Object.values(expected.raw_chunks).map(([o, n]) => o + n));
    expect(calls).toEqual([{ offset: Math.min(...offsets), length: end - Math.min(...offsets) }]);
  });
});

describe("gen dimension forms and the expression evaluator", () => {
  it("an integer dimension means range(n), like {stop: n}", () => {
    const refs = v1();
    const asInt = structuredClone(refs.gen);
    asInt[0].dimensions = { i: { start: 0, stop: 3, step: 2 }, j: 2 };
    asInt[1].dimensions = { i: [1], j: 2 };
    expect(expandGen(asInt, { u: "data.h5" })).toEqual(expandGen(refs.gen, { u: "data.h5" }));
  });

  it("negative steps follow Python's range", () => {
    const gen = [{ key: "k{{i}}", url: "u", dimensions: { i: { start: 5, stop: 0, step: -2 } } }];
    expect([...expandGen(gen).keys()]).toEqual(["k5", "k3", "k1"]);
  });

  it("jinja-like expressions: integer arithmetic with Python semantics, strings, concatenation", () => {
    const vars = { i: 7, u: "s3://b/f" };
    const cases: [string, number | string][] = [
      ["(i + 1) * 1000", (7 + 1) * 1000],
      ["i // 2", Math.floor(7 / 2)],
      ["-i // 2", Math.floor(-7 / 2)],
      ["-i % 3", ((-7 % 3) + 3) % 3],
      ["2 ** 10 - i", 2 ** 10 - 7],
      ["u ~ '.' ~ i", "s3://b/f.7"],
      ["u + '_x'", "s3://b/f_x"],
    ];
    for (const [expr, want] of cases) expect(evaluate(expr, vars), expr).toBe(want);
  });

  it("refuses what is not arithmetic: attribute access, calls, unknown names, strings in arithmetic", () => {
    for (const expr of ["i.__class__", "range(3)", "x + 1", "u * 2", "1 / 0", "(1 + 2", "import os"]) {
      expect(() => evaluate(expr, { i: 1, u: "a" }), expr).toThrow(ReferenceSetError);
    }
  });

  it("refuses gen entries that are malformed or would produce too many keys, before expanding", () => {
    expect(() => expandGen([{ key: "k", url: "u", offset: "1", dimensions: { i: 3 } }])).toThrow(/offset.*length/);
    expect(() => expandGen([{ key: "k", url: "u", dimensions: { i: { stop: 3, step: 0 } } }])).toThrow(/step/);
    expect(() => expandGen([{ key: "k", url: "u", dimensions: { i: 1e5, j: 1e5, k: 1e5 } }])).toThrow(/more than/);
    expect(() => expandGen([{ key: "k", url: "u", offset: "{{i - 5}}", length: "1", dimensions: { i: 2 } }])).toThrow(/non-negative/);
  });
});

describe("missing versus unreachable", () => {
  it("a key absent from the set is missing; a reference to an absent object is an error naming key and url", async () => {
    const refs = v1();
    refs.refs["gone/0"] = ["no-such-file.h5", 0, 10];
    refs.refs["gonewhole/0"] = ["no-such-file.bin"];
    refs.refs["short/0"] = ["data.h5", fileBytes.length - 4, 10];
    refs.refs["lying/0"] = ["data.h5", 0, 2 ** 50];
    const store = new ReferenceStore(parseReferences(refs), { baseDir: FIXTURES });
    try {
      expect(await store.get("/raw/7.7")).toBeUndefined();
      for (const key of ["/constructor", "/__proto__", "/toString", "/hasOwnProperty"] as const) expect(await store.get(key)).toBeUndefined();
      await expect(store.get("/gone/0")).rejects.toThrow(ReferenceSetError);
      await expect(store.get("/gone/0")).rejects.toThrow(/"gone\/0".*no-such-file\.h5/);
      await expect(store.get("/gonewhole/0")).rejects.toThrow(/"gonewhole\/0".*no-such-file\.bin/);
      await expect(store.get("/short/0")).rejects.toThrow(/too short/);
      // A lying length reads what exists and says so; nothing of its size is allocated.
      await expect(store.get("/lying/0")).rejects.toThrow(/too short/);
      expect(await store.getRange("/lying/0", { offset: 0, length: 8 })).toEqual(fileBytes.subarray(0, 8));
      // One failing reference in a batch does not fail its neighbours.
      const [bad, good] = await Promise.allSettled([store.get("/gone/0"), store.get("/raw/0.0")]);
      expect(bad.status).toBe("rejected");
      expect(good.status).toBe("fulfilled");
    } finally {
      await store.close();
    }
  });

  it("a server that is down is an error, never a fill value", async () => {
    const refs = v1();
    refs.templates = { u: "http://127.0.0.1:9/data.h5" };
    const store = await openReferences(refs as unknown as References, { base: FIXTURES + "/", store: { retry: { attempts: 2, baseDelayMs: 10 } } });
    try {
      const arr = await zarr.open(zarr.root(store).resolve("z"), { kind: "array" });
      await expect(zarr.get(arr)).rejects.toThrow(ReferenceSetError);
    } finally {
      await store.close();
    }
  });
});

describe("over HTTP", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startHttpServer(FIXTURES);
  });
  afterAll(() => server?.stop());

  it("a reference file served over http: relative urls resolve against its url", async () => {
    const store = await openReferences(`${server.url}/refs_v1.json`, { concurrency: 2 });
    try {
      await expectAllVariables(store);
    } finally {
      await store.close();
    }
  });
});

describe("on S3 (s3rver)", () => {
  let s3: S3rverHandle;
  beforeAll(async () => {
    s3 = await startS3rver({ buckets: ["refs"] });
  });
  afterAll(() => s3?.stop());

  it("a reference file in a bucket: relative urls resolve inside the bucket, with the given endpoint and credentials", async () => {
    const store = { s3: { endpoint: s3.endpoint, credentials: S3RVER_CREDENTIALS, region: "us-east-1" }, env: {} };
    const bucket = openStore("s3://refs/run", store);
    for (const f of ["refs_v1.json", "data.h5", "whole.bin"]) await bucket.set(`sub/${f}`, new Uint8Array(await readFile(join(FIXTURES, f))));
    await bucket.close();
    const refs = await openReferences("s3://refs/run/sub/refs_v1.json", { store });
    try {
      await expectAllVariables(refs);
    } finally {
      await refs.close();
    }
  });
});

describe("parquet references (written by the combine helper's writer)", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "refs-store-parquet-"));
    for (const f of ["data.h5", "whole.bin"]) await copyFile(join(FIXTURES, f), join(dir, f));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("reads every variable lazily, equal to h5py", async () => {
    // The writer takes explicit references; gen and templates expanded first, as kerchunk does.
    const refs = parseReferences(v1Text);
    const flat: References = { version: 1, refs: { ...refs.refs } };
    for (const [k, v] of expandGen(refs.gen!, refs.templates)) flat.refs[k] = v;
    for (const [k, v] of Object.entries(flat.refs)) if (Array.isArray(v) && v[0] === "{{u}}") flat.refs[k] = ["data.h5", v[1]!, v[2]!];
    await writeReferences(flat, join(dir, "refs.parq"), { format: "parquet", recordSize: 4 });
    // Relative urls in a parquet directory resolve as for a JSON file in its place (next to it).
    const store = await openReferences(join(dir, "refs.parq"));
    try {
      await expectAllVariables(store);
    } finally {
      await store.close();
    }
  });
});

describe("url resolution", () => {
  it("relative urls against local, file://, http and bucket locations", () => {
    expect(resolveUrl("a.nc", "/data/refs/x.json")).toBe("/data/refs/a.nc");
    expect(resolveUrl("../a.nc", "/data/refs/")).toBe("/data/a.nc");
    expect(resolveUrl("a.nc", "file:///data/refs/x.json")).toBe("file:///data/refs/a.nc");
    expect(resolveUrl("sub/a.nc", "http://h:8/d/x.json")).toBe("http://h:8/d/sub/a.nc");
    expect(resolveUrl("../a.nc", "s3://bucket/p/q/x.json")).toBe("s3://bucket/p/a.nc");
    expect(resolveUrl("s3://other/a.nc", "http://h/x.json")).toBe("s3://other/a.nc");
    expect(resolveUrl("/abs/a.nc", "s3://bucket/x.json")).toBe("/abs/a.nc");
  });
});


