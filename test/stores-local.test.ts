import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeEach, describe, expect, test } from "vitest";
import * as zarr from "zarrita";
import { ConflictError, InvalidKeyError, StoreError } from "../src/errors.js";
import { LocalStore } from "../src/stores/local.js";

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "activestore-local-"));
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** Every file under `dir`, relative, for checking what actually landed on disk. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath ?? e.path, e.name).slice(dir.length + 1))
    .sort();
}

let root: string;
let store: LocalStore;
beforeEach(async () => {
  root = await tempDir();
  store = new LocalStore(root, { retry: { baseDelayMs: 5 } });
});

describe("LocalStore reads and writes", () => {
  test("round-trips bytes under nested keys, creating parent directories", async () => {
    await store.set("a/b/c.bin", bytes("hello"));
    await store.set("/top", bytes("zarrita-style key")); // leading slash stripped
    expect(text(await store.get("a/b/c.bin"))).toBe("hello");
    expect(text(await readFile(join(root, "a/b/c.bin"), "utf8").then(bytes))).toBe("hello");
    expect(text(await store.get("top"))).toBe("zarrita-style key");
    expect(await filesUnder(root)).toEqual(["a/b/c.bin", "top"]);
  });

  test("missing keys are undefined, not errors", async () => {
    expect(await store.get("nope")).toBeUndefined();
    expect(await store.getRange("nope", { offset: 0, length: 3 })).toBeUndefined();
    expect(await store.head("nope")).toBeUndefined();
    expect(await store.has("nope")).toBe(false);
    // A key below a file cannot exist (ENOTDIR), which is the same as missing.
    await store.set("file", bytes("x"));
    expect(await store.get("file/below")).toBeUndefined();
  });

  test("ranges: inside, past EOF (truncated), offset past EOF (empty), suffix, open-ended", async () => {
    await store.set("r", bytes("0123456789"));
    expect(text(await store.getRange("r", { offset: 2, length: 3 }))).toBe("234");
    expect(text(await store.getRange("r", { offset: 8, length: 100 }))).toBe("89");
    expect(await store.getRange("r", { offset: 50, length: 4 })).toEqual(new Uint8Array(0));
    expect(text(await store.getRange("r", { suffixLength: 4 }))).toBe("6789");
    expect(text(await store.getRange("r", { suffixLength: 40 }))).toBe("0123456789");
    // A lying length does not allocate what it asks for: the result is bounded by the file.
    expect((await store.getRange("r", { offset: 0, length: 2 ** 52 }))!.length).toBe(10);
  });

  test("head reports size and mtime; delete is idempotent", async () => {
    await store.set("h", bytes("12345"));
    const info = await store.head("h");
    expect(info).toMatchObject({ key: "h", size: 5 });
    expect(info!.lastModified).toBeInstanceOf(Date);
    await store.delete("h");
    await store.delete("h");
    expect(await store.has("h")).toBe(false);
  });

  test("a directory is not an object: get/head raise a StoreError, not undefined", async () => {
    await store.set("dir/x", bytes("x"));
    await expect(store.get("dir")).rejects.toThrow(StoreError);
    await expect(store.get("dir")).rejects.toThrow(/is a directory/);
    await expect(store.head("dir")).rejects.toThrow(StoreError);
  });

  test("a parent path occupied by a file makes set fail with a StoreError", async () => {
    await store.set("p", bytes("file"));
    const error = await store.set("p/child", bytes("x")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).retryable).toBe(false);
    expect((error as StoreError).message).toContain('key "p/child"');
  });

  test("an OS refusal of the name (ENAMETOOLONG) is a failure, never reported as missing", async () => {
    const key = "x".repeat(300);
    await expect(store.get(key)).rejects.toThrow(StoreError);
    await expect(store.head(key)).rejects.toThrow(/ENAMETOOLONG|name too long/i);
    await expect(store.set(key, bytes("x"))).rejects.toThrow(StoreError);
  });

  test("unreadable files are failures, not missing (EACCES, or EISDIR when running as root)", async () => {
    await store.set("secret", bytes("x"));
    const { chmod } = await import("node:fs/promises");
    await chmod(join(root, "secret"), 0o000);
    const isRoot = process.getuid?.() === 0;
    if (isRoot) {
      // root reads anything; the permission case cannot be produced, so check the file is still served.
      expect(text(await store.get("secret"))).toBe("x");
    } else {
      await expect(store.get("secret")).rejects.toThrow(StoreError);
    }
  });
});

describe("LocalStore atomic and conditional writes", () => {
  test("writes go through a temp file + rename: concurrent writers leave one whole value", async () => {
    const a = new Uint8Array(1 << 20).fill(0xaa);
    const b = new Uint8Array(1 << 20).fill(0xbb);
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 20; i++) writes.push(store.set("same", i % 2 ? a : b));
    // Reads racing the writes see either value, never a mix or a partial file.
    const reads: Promise<Uint8Array | undefined>[] = [];
    for (let i = 0; i < 20; i++) reads.push(store.get("same"));
    await Promise.all(writes);
    for (const value of [...(await Promise.all(reads)), await store.get("same")]) {
      if (value === undefined) continue; // read before the first rename
      expect(value.length).toBe(1 << 20);
      expect(value.every((x) => x === value[0])).toBe(true);
    }
    expect(await filesUnder(root)).toEqual(["same"]); // no temp files left behind
  });

  test("with fsync the same atomic path is taken (the data is synced before the rename)", async () => {
    const synced = new LocalStore(root, { fsync: true });
    await synced.set("durable/k", bytes("on disk"));
    await synced.set("durable/once", bytes("x"), { ifNoneMatch: "*" });
    expect(text(await store.get("durable/k"))).toBe("on disk");
    expect(await filesUnder(root)).toEqual(["durable/k", "durable/once"]);
  });

  test("create-only writes: ConflictError when the key exists; exactly one racer wins", async () => {
    await store.set("once", bytes("first"), { ifNoneMatch: "*" });
    await expect(store.set("once", bytes("second"), { ifNoneMatch: "*" })).rejects.toThrow(ConflictError);
    expect(text(await store.get("once"))).toBe("first");

    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => store.set("race", bytes(`writer ${i}`), { ifNoneMatch: "*" })),
    );
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    for (const r of results) if (r.status === "rejected") expect(r.reason).toBeInstanceOf(ConflictError);
    expect(await filesUnder(root)).toEqual(["once", "race"]);
  });

  test("create-only sees a compressed representation of the key as existing", async () => {
    await store.set("k", bytes("zipped"), { compress: "gzip" });
    await expect(store.set("k", bytes("plain"), { ifNoneMatch: "*" })).rejects.toThrow(ConflictError);
  });
});

describe("LocalStore compression on disk (CloudFiles suffix convention)", () => {
  test("compressed objects are stored as <key>.gz/.br/.zstd and read back transparently", async () => {
    const data = bytes("compress me ".repeat(1000));
    await store.set("g", data, { compress: "gzip" });
    await store.set("b", data, { compress: "br" });
    await store.set("z", data, { compress: "zstd" });
    expect(await filesUnder(root)).toEqual(["b.br", "g.gz", "z.zstd"]);
    // Another tool can read the file: it really is gzip.
    expect(gunzipSync(await readFile(join(root, "g.gz")))).toEqual(Buffer.from(data));
    for (const key of ["g", "b", "z"]) expect(await store.get(key)).toEqual(data);
    const raw = await store.get("g", { raw: true });
    expect(raw!.length).toBeLessThan(data.length);
    expect(await store.head("z")).toMatchObject({ key: "z", contentEncoding: "zstd" });
    // A range of a compressed object is not a range of the data.
    await expect(store.getRange("g", { offset: 0, length: 4 })).rejects.toThrow(/Content-Encoding gzip/);
  });

  test("rewriting a key replaces its other representations; delete removes every one", async () => {
    await store.set("k", bytes("v1"), { compress: "gzip" });
    await store.set("k", bytes("v2"));
    expect(await filesUnder(root)).toEqual(["k"]);
    await store.set("k", bytes("v3"), { compress: "br" });
    expect(await filesUnder(root)).toEqual(["k.br"]);
    expect(text(await store.get("k"))).toBe("v3");
    await store.delete("k");
    expect(await filesUnder(root)).toEqual([]);
  });

  test("a store-wide default compression applies to every write", async () => {
    const zs = new LocalStore(root, { compress: "zstd" });
    await zs.set("x/y", bytes("data"));
    expect(await filesUnder(root)).toEqual(["x/y.zstd"]);
    expect(text(await zs.get("x/y"))).toBe("data");
  });
});

describe("LocalStore listing", () => {
  test("lists logical keys in byte order under a key prefix, skipping temp files", async () => {
    for (const key of ["a/1", "a/2/x", "a.b", "ab", "b/c", "a/0"]) await store.set(key, bytes(key));
    await store.set("a/3", bytes("zipped"), { compress: "gzip" });
    // A crashed writer's temp file is never reported.
    await writeFile(join(root, "a", ".activestore-tmp-deadbeef"), "partial");
    const keys = (await collect(store.list())).map((o) => o.key);
    expect(keys).toEqual(["a.b", "a/0", "a/1", "a/2/x", "a/3", "ab", "b/c"]);
    // A prefix is a key prefix, not a directory.
    expect((await collect(store.list("a"))).map((o) => o.key)).toEqual(keys.slice(0, 6));
    expect((await collect(store.list("a/"))).map((o) => o.key)).toEqual(["a/0", "a/1", "a/2/x", "a/3"]);
    expect((await collect(store.list("a/2"))).map((o) => o.key)).toEqual(["a/2/x"]);
    expect(await collect(store.list("nothing/here"))).toEqual([]);
    const gz = (await collect(store.list("a/3")))[0];
    expect(gz).toMatchObject({ key: "a/3", contentEncoding: "gzip" });
  });

  test("listing is lazy: stopping early does not walk the rest", async () => {
    for (let i = 0; i < 50; i++) await store.set(`d${String(i).padStart(2, "0")}/k`, bytes("x"));
    const seen: string[] = [];
    for await (const info of store.list()) {
      seen.push(info.key);
      if (seen.length === 3) break;
    }
    expect(seen).toEqual(["d00/k", "d01/k", "d02/k"]);
  });

  test("a store on a root that does not exist yet lists nothing and reads undefined", async () => {
    const empty = new LocalStore(join(root, "not", "yet"));
    expect(await collect(empty.list())).toEqual([]);
    expect(await empty.get("k")).toBeUndefined();
  });
});

describe("LocalStore keys never escape the root", () => {
  const bad = ["../outside", "a/../../outside", "a/./b", "a//b", "a/", "", "a\\..\\b", "a\0b", ".activestore-tmp-x"];
  test.each(bad)("key %j is refused with InvalidKeyError by every operation", async (key) => {
    await expect(store.set(key, bytes("x"))).rejects.toThrow(InvalidKeyError);
    await expect(store.get(key)).rejects.toThrow(InvalidKeyError);
    await expect(store.getRange(key, { offset: 0, length: 1 })).rejects.toThrow(InvalidKeyError);
    await expect(store.head(key)).rejects.toThrow(InvalidKeyError);
    await expect(store.delete(key)).rejects.toThrow(InvalidKeyError);
  });

  test("nothing was written outside the root by the refused keys", async () => {
    const parent = join(root, "..");
    const before = await readdir(parent);
    await store.set("../outside-file", bytes("x")).catch(() => undefined);
    expect(await readdir(parent)).toEqual(before);
  });

  test("absolute-looking keys stay inside the root", async () => {
    await store.set("/etc/activestore-test", bytes("inside"));
    expect(await filesUnder(root)).toEqual(["etc/activestore-test"]);
  });
});

describe("LocalStore with zarrita", () => {
  test("an array written with zarr.create/zarr.set reads back identically with zarr.open/zarr.get", async () => {
    const arr = await zarr.create(zarr.root(store).resolve("temperature"), {
      shape: [7, 9],
      chunkShape: [3, 4],
      dtype: "float32",
      fillValue: -1,
    });
    const values = new Float32Array(63).map((_, i) => i * 0.5 - 10);
    await zarr.set(arr, null, { data: values, shape: [7, 9], stride: [9, 1] });
    const opened = await zarr.open(zarr.root(new LocalStore(root)).resolve("temperature"), { kind: "array" });
    const back = await zarr.get(opened);
    expect(back.shape).toEqual([7, 9]);
    expect(Array.from(back.data as Float32Array)).toEqual(Array.from(values));
    // 3 × 3 chunks of a 7 × 9 array, each its own file, plus the metadata document.
    const files = await filesUnder(join(root, "temperature"));
    expect(files).toContain("zarr.json");
    expect(files.filter((f) => f.startsWith("c/"))).toHaveLength(9);
    const sub = await zarr.get(opened, [zarr.slice(2, 5), 4]);
    expect(Array.from(sub.data as Float32Array)).toEqual([2, 3, 4].map((r) => values[r * 9 + 4]));
  });
});

describe("LocalStore batches", () => {
  test("setMany / getMany / deleteMany over the disk", async () => {
    const entries = Array.from({ length: 40 }, (_, i) => [`batch/${i}`, bytes(`value ${i}`)] as const);
    const written = await store.setMany(entries, { concurrency: 4 }).toMap();
    expect(written.size).toBe(40);
    const read = await store.getMany([...entries.map(([k]) => k), "batch/missing"]).toMap();
    expect(read.get("batch/missing")).toBeUndefined();
    for (const [k, v] of entries) expect(read.get(k)).toEqual(v);
    await store.deleteMany(entries.map(([k]) => k)).toMap();
    expect(await collect(store.list("batch/"))).toEqual([]);
    await mkdir(join(root, "batch"), { recursive: true }); // empty dirs are not objects
    expect(await collect(store.list("batch"))).toEqual([]);
  });
});

describe("LocalStore rooted at the filesystem root", () => {
  test("serves absolute paths under / (the CLI's `cat /path`)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "activestore-root-"));
    try {
      await writeFile(join(dir, "x.bin"), new Uint8Array([1, 2, 3]));
      const store = new LocalStore("/");
      expect(await store.get(`${dir.slice(1)}/x.bin`)).toEqual(new Uint8Array([1, 2, 3]));
      await expect(store.get("../etc/passwd")).rejects.toThrow(InvalidKeyError);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("LocalStore with cached file handles", () => {
  const openFds = async () => (await readdir("/proc/self/fd")).length;

  test("reuses handles, bounds them, and sees writes and deletes made through the store", async () => {
    const dir = await mkdtemp(join(tmpdir(), "activestore-handles-"));
    const store = new LocalStore(dir, { cacheHandles: 2 });
    try {
      for (const k of ["a", "b", "c"]) await store.set(k, new TextEncoder().encode(`${k}-1`));
      const before = await openFds();
      for (let round = 0; round < 5; round++) {
        for (const k of ["a", "b", "c"]) {
          expect(new TextDecoder().decode(await store.getRange(k, { offset: 0, length: 3 }))).toBe(`${k}-1`);
        }
      }
      expect(await openFds()).toBeLessThanOrEqual(before + 2);
      await store.set("a", new TextEncoder().encode("a-2"));
      expect(new TextDecoder().decode(await store.get("a"))).toBe("a-2");
      await store.delete("b");
      expect(await store.get("b")).toBeUndefined();
      await store.close();
      expect(await openFds()).toBeLessThanOrEqual(before);
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("a store dropped without close() still closes its cached files once it is garbage", async () => {
    const dir = await mkdtemp(join(tmpdir(), "activestore-handles-"));
    try {
      for (const k of ["a", "b"]) await writeFile(join(dir, k), k);
      const before = await openFds();
      await (async () => {
        const store = new LocalStore(dir, { cacheHandles: 4 });
        for (const k of ["a", "b"]) await store.getRange(k, { offset: 0, length: 1 });
      })();
      expect(await openFds()).toBe(before + 2);
      // Node closes a FileHandle the GC takes itself, with this warning: we must have closed them first.
      const warnings: string[] = [];
      const onWarning = (w: Error) => warnings.push(w.message);
      process.on("warning", onWarning);
      setFlagsFromString("--expose-gc");
      const gc = runInNewContext("gc") as () => void;
      for (let i = 0; i < 20 && (await openFds()) > before; i++) {
        gc();
        await new Promise((r) => setTimeout(r, 10)); // finalizers run between tasks
      }
      await new Promise((r) => setTimeout(r, 50));
      process.off("warning", onWarning);
      expect(await openFds()).toBe(before);
      expect(warnings.filter((w) => /Closing (file descriptor|a FileHandle)/.test(w))).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("one caller's signal over many requests", () => {
  test("a batch of 40 concurrent reads with timeouts prints no listener-leak warning (a real node process)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "activestore-signal-"));
    try {
      for (let i = 0; i < 40; i++) await writeFile(join(dir, `k${i}`), `value ${i}`);
      // dist/, which `npm test` builds first: the warning is Node's, printed by the process itself.
      const local = pathToFileURL(join(import.meta.dirname, "..", "dist", "stores", "local.js")).href;
      const script = `
        const { LocalStore } = await import(${JSON.stringify(local)});
        const store = new LocalStore(${JSON.stringify(dir)}, { timeoutMs: 10000 });
        const signal = new AbortController().signal;
        const got = await Promise.all(Array.from({ length: 40 }, (_, i) => store.get("k" + i, { signal })));
        console.log(got.every((b, i) => new TextDecoder().decode(b) === "value " + i) ? "read" : "wrong");`;
      const run = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
      expect(run.stdout.trim()).toBe("read");
      expect(run.stderr).not.toMatch(/MaxListenersExceededWarning/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
