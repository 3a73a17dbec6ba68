import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InvalidKeyError, UnsupportedFeatureError } from "../src/errors.js";
import { openStore, splitUrl } from "../src/stores/open.js";
import type { ObjectStore } from "../src/stores/object-store.js";
import type { Store } from "../src/stores/types.js";
import { startGcsServer, type GcsServer } from "./servers/gcs.js";
import { startStaticServer, type TestServer } from "./servers/nginx.js";
import { S3RVER_CREDENTIALS, startS3rver, type S3rverHandle } from "./servers/s3rver.js";

const text = (s: string) => new TextEncoder().encode(s);
const fast = { retry: { baseDelayMs: 2, maxDelayMs: 10 } };
const opened: ObjectStore[] = [];

function track<S extends ObjectStore>(store: S): S {
  opened.push(store);
  return store;
}

async function keys(store: Store, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const info of store.list(prefix)) out.push(info.key);
  return out.sort();
}

let gcs: GcsServer;
let s3: S3rverHandle;
let dir: string;
let web: TestServer;

beforeAll(async () => {
  [gcs, s3, dir] = await Promise.all([
    startGcsServer({ buckets: ["bkt"] }),
    startS3rver({ buckets: ["open-bkt"] }),
    mkdtemp(join(tmpdir(), "open store ")),
  ]);
  await mkdir(join(dir, "www", "data dir"), { recursive: true });
  await writeFile(join(dir, "www", "data dir", "f 1.bin"), Buffer.from("served over http"));
  web = await startStaticServer(join(dir, "www"));
});
afterAll(async () => {
  await Promise.all(opened.map((s) => s.close()));
  await Promise.all([gcs?.stop(), s3?.stop(), web?.stop(), dir && rm(dir, { recursive: true, force: true })]);
});

describe("splitUrl", () => {
  it("splits bucket URLs at the bucket", () => {
    expect(splitUrl("s3://b/a/b.nc")).toEqual({ storeUrl: "s3://b", key: "a/b.nc" });
    expect(splitUrl("gs://era5/2020/t 1.nc")).toEqual({ storeUrl: "gs://era5", key: "2020/t 1.nc" });
    expect(splitUrl("memory://scratch/x/y")).toEqual({ storeUrl: "memory://scratch", key: "x/y" });
  });

  it("splits http(s) URLs and paths at the last segment", () => {
    expect(splitUrl("https://host:8443/data/run%201/f.nc")).toEqual({ storeUrl: "https://host:8443/data/run%201", key: "f.nc" });
    expect(splitUrl("http://h/f%20g.nc")).toEqual({ storeUrl: "http://h", key: "f g.nc" });
    expect(splitUrl("/data/x/f.nc")).toEqual({ storeUrl: "/data/x", key: "f.nc" });
    expect(splitUrl("rel/f.nc")).toEqual({ storeUrl: resolve("rel"), key: "f.nc" });
    expect(splitUrl("file:///data/my%20dir/f.nc")).toEqual({ storeUrl: "file:///data/my%20dir", key: "f.nc" });
  });

  it("refuses URLs that name no object", () => {
    expect(() => splitUrl("s3://bucket")).toThrow(InvalidKeyError);
    expect(() => splitUrl("gs://bucket/prefix/")).toThrow(InvalidKeyError);
    expect(() => splitUrl("https://h/dir/")).toThrow(InvalidKeyError);
    expect(() => splitUrl("data/")).toThrow(InvalidKeyError);
    expect(() => splitUrl("https://h/f.nc?sig=1")).toThrow(UnsupportedFeatureError);
    expect(() => splitUrl("ftp://h/f.nc")).toThrow(UnsupportedFeatureError);
  });
});

describe("openStore", () => {
  it("refuses unknown schemes with a typed error", () => {
    expect(() => openStore("ftp://host/x")).toThrow(UnsupportedFeatureError);
    expect(() => openStore("ftp://host/x")).toThrow(/ftp/);
    expect(() => openStore("s3:///prefix")).toThrow(InvalidKeyError);
    expect(() => openStore("gs://")).toThrow(InvalidKeyError);
    expect(() => openStore("file://otherhost/data")).toThrow(UnsupportedFeatureError);
  });

  it("memory:// stores are shared by name and rooted at their prefix", async () => {
    const root = openStore("memory://open-test");
    const sub = openStore("memory://open-test/sub/dir", fast);
    await sub.set("k", text("v"));
    expect(await root.get("sub/dir/k")).toEqual(text("v"));
    expect(await openStore("memory://open-test/sub").get("dir/k")).toEqual(text("v"));
    expect(await keys(sub)).toEqual(["k"]);
    expect((await sub.head("k"))!.key).toBe("k");
    expect(sub.url).toBe("memory://open-test/sub/dir");
    await sub.delete("k");
    expect(await root.has("sub/dir/k")).toBe(false);
  });

  it("gs:// opens a GcsStore rooted at the prefix, endpoint from STORAGE_EMULATOR_HOST", async () => {
    const env = { STORAGE_EMULATOR_HOST: gcs.url.replace("http://", "") };
    const store = track(openStore("gs://bkt/some/prefix", { ...fast, env, compress: "gzip" }));
    expect(store.url).toBe("gs://bkt/some/prefix");
    const data = text("hello gcs ".repeat(100));
    await store.set("a/b.txt", data);
    const stored = gcs.buckets.get("bkt")!.get("some/prefix/a/b.txt")!;
    expect(stored.contentEncoding).toBe("gzip"); // store-wide options reach the adapter
    expect(await store.get("a/b.txt")).toEqual(data);
    expect(await keys(store)).toEqual(["a/b.txt"]);

    const { storeUrl, key } = splitUrl("gs://bkt/some/prefix/a/b.txt");
    const viaSplit = track(openStore(storeUrl, { gcs: { endpoint: gcs.url } }));
    expect(await viaSplit.get(key)).toEqual(data);
  });

  it("bare paths (absolute or relative to the cwd) and file:// URLs open a LocalStore at that directory", async () => {
    const data = text("on disk");
    const absolute = openStore(join(dir, "root"));
    await absolute.set("x/y.bin", data);
    expect(await readFile(join(dir, "root", "x", "y.bin"))).toEqual(Buffer.from(data));
    const rel = relative(process.cwd(), join(dir, "root"));
    expect(await openStore(rel).get("x/y.bin")).toEqual(data);
    const fileUrl = pathToFileURL(join(dir, "root")).href;
    expect(fileUrl).toContain("open%20store"); // the temp dir has a space in its name
    expect(await openStore(fileUrl).get("x/y.bin")).toEqual(data);
    expect(await keys(openStore(fileUrl))).toEqual(["x/y.bin"]);

    for (const objectUrl of [join(dir, "root", "x", "y.bin"), `${fileUrl}/x/y.bin`]) {
      const { storeUrl, key } = splitUrl(objectUrl);
      expect(key).toBe("y.bin");
      expect(await openStore(storeUrl).get(key)).toEqual(data);
    }
  });

  it("s3:// opens an S3Store rooted at the prefix, endpoint from AWS_ENDPOINT_URL_S3 over AWS_ENDPOINT_URL", async () => {
    const env = { AWS_ENDPOINT_URL: "http://127.0.0.1:9", AWS_ENDPOINT_URL_S3: s3.endpoint };
    const store = track(openStore("s3://open-bkt/run/1", { ...fast, env, s3: { credentials: S3RVER_CREDENTIALS } }));
    const data = text("hello s3 ".repeat(50));
    await store.set("a/b.txt", data);
    await store.set("c.txt", text("c"));
    expect(await store.get("a/b.txt")).toEqual(data);
    expect(await keys(store)).toEqual(["a/b.txt", "c.txt"]);

    const { storeUrl, key } = splitUrl("s3://open-bkt/run/1/a/b.txt");
    expect(storeUrl).toBe("s3://open-bkt");
    const viaSplit = track(
      openStore(storeUrl, { env: { AWS_ENDPOINT_URL: s3.endpoint, AWS_NO_SIGN_REQUEST: "YES" } }),
    );
    // s3rver ignores signatures, so the unsigned (anonymous) client is served too.
    expect(await viaSplit.get(key)).toEqual(data);
    expect(await keys(viaSplit, "run/")).toEqual(["run/1/a/b.txt", "run/1/c.txt"]);
  });

  it("http(s):// opens an HttpStore at the URL; splitUrl gives its directory and file name", async () => {
    const base = `${web.url}/data%20dir`;
    const store = track(openStore(base, { ...fast, http: { headers: { "x-test": "1" } } }));
    expect(await store.get("f 1.bin")).toEqual(text("served over http"));
    expect(await store.getRange("f 1.bin", { offset: 7, length: 4 })).toEqual(text("over"));
    expect(await store.get("missing.bin")).toBeUndefined();
    const { storeUrl, key } = splitUrl(`${base}/f%201.bin`);
    expect({ storeUrl, key }).toEqual({ storeUrl: base, key: "f 1.bin" });
    expect(await track(openStore(storeUrl)).get(key)).toEqual(text("served over http"));
  });
});
