/**
 * The heavy client libraries load on first use only: a child `node` runs a small script against
 * the built library (dist/, which `npm test` builds first) with a module hook that reports every
 * module it resolves, and the script says which packages were loaded at each step. Local work
 * (importing the library, reading a LocalStore, a local reduction) must load neither undici nor
 * the AWS SDK; an S3 or HTTP request loads its library and works; a library that cannot load
 * fails the request with a StoreError naming it, and the next request tries again.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OnFirstUse } from "../src/stores/deps-lazy.js";
import { startGcsServer, type GcsServer } from "./servers/gcs.js";
import { S3RVER_CREDENTIALS, startS3rver, type S3rverHandle } from "./servers/s3rver.js";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const distIndex = join(repo, "dist", "index.js");
const fixture = join(repo, "test", "fixtures", "active", "active.nc");
const HEAVY = ["undici", "@aws-sdk/client-s3"];
/** Loaded by parquet reference sets and the server's wire format only. */
const FORMATS = ["hyparquet", "hyparquet-writer", "cbor-x"];

/**
 * Registered with `--import`: a resolve hook (it runs on the hooks thread) posts each resolved URL
 * to the main thread, which drains them synchronously. `BLOCK_MODULES` lists bare specifiers that
 * fail to resolve, to stand in for a package that is missing or broken.
 */
const HOOK = `
import { register, createRequire } from "node:module";
import { MessageChannel, receiveMessageOnPort } from "node:worker_threads";
const { port1, port2 } = new MessageChannel();
const hooks = \`
let port, blocked;
export function initialize(data) { port = data.port; blocked = new Set(data.blocked); }
export async function resolve(specifier, context, next) {
  if (blocked.has(specifier)) {
    port.postMessage({ blocked: specifier });
    throw new Error("blocked by the test: " + specifier);
  }
  const result = await next(specifier, context);
  port.postMessage({ url: result.url });
  return result;
}\`;
const blocked = (process.env.BLOCK_MODULES || "").split(",").filter(Boolean);
register("data:text/javascript," + encodeURIComponent(hooks), { data: { port: port2, blocked }, transferList: [port2] });
const seen = new Set();
const refused = [];
const drain = () => {
  for (let m; (m = receiveMessageOnPort(port1)); ) {
    if (m.message.url) seen.add(m.message.url);
    else refused.push(m.message.blocked);
  }
};
/** How often each blocked specifier was asked for. */
globalThis.blockedLoads = () => {
  drain();
  const counts = {};
  for (const s of refused) counts[s] = (counts[s] || 0) + 1;
  return counts;
};
const require = createRequire(import.meta.url);
/** Packages under node_modules loaded so far, through ESM resolution or require(). */
globalThis.loadedPackages = () => {
  drain();
  for (const path of Object.keys(require.cache)) seen.add(path);
  const packages = new Set();
  for (const url of seen) {
    for (const m of String(url).matchAll(/node_modules[\\\\/]((?:@[^\\\\/]+[\\\\/])?[^\\\\/]+)/g)) packages.add(m[1].replace(/\\\\/g, "/"));
  }
  return [...packages].sort();
};
`;

let work: string;
let hook: string;

interface Report {
  [step: string]: unknown;
}

/** Runs `body` (an async ESM module body with `lib`, `step` and `env` in scope) in a fresh node. */
async function run(name: string, body: string, env: Record<string, string> = {}): Promise<Report> {
  const script = join(work, `${name}.mjs`);
  await writeFile(
    script,
    `const lib = await import(${JSON.stringify(pathToFileURL(distIndex).href)});
const env = process.env;
const report = {};
const step = (name, extra = {}) => { report[name] = { packages: globalThis.loadedPackages(), ...extra }; };
${body}
process.stdout.write(JSON.stringify(report));
`,
  );
  return new Promise((done, fail) => {
    execFile(
      process.execPath,
      ["--import", pathToFileURL(hook).href, script],
      // A backstop against a hang, not a timing assertion: the scripts take a second or two.
      { env: { ...process.env, ...env }, timeout: 60_000, maxBuffer: 16 * 2 ** 20 },
      (error, stdout, stderr) => {
        if (error) fail(new Error(`${name} failed: ${error.message}\n${stderr}`));
        else done(JSON.parse(stdout) as Report);
      },
    );
  });
}

function packagesAt(report: Report, step: string): string[] {
  const entry = report[step] as { packages?: string[] } | undefined;
  if (!entry?.packages) throw new Error(`step "${step}" missing from the report: ${JSON.stringify(report)}`);
  return entry.packages;
}

function field<T>(report: Report, step: string, key: string): T {
  return (report[step] as Record<string, T>)[key];
}

beforeAll(async () => {
  if (!existsSync(distIndex)) throw new Error(`${distIndex} is missing: run \`npm run build\` (npm test does)`);
  work = await mkdtemp(join(tmpdir(), "lazy-imports-"));
  hook = join(work, "hook.mjs");
  await writeFile(hook, HOOK);
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe("OnFirstUse", () => {
  it("creates once for concurrent callers, forgets a failure, and starts afresh after take", async () => {
    const outcomes = ["fail", "ok-1", "ok-2"];
    let created = 0;
    const value = new OnFirstUse(async () => {
      const outcome = outcomes[created++];
      if (outcome === "fail") throw new Error("creation failed");
      return outcome;
    });
    const failed = await Promise.allSettled([value.get(), value.get()]);
    expect(failed.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    expect(created).toBe(1);
    expect(await Promise.all([value.get(), value.get()])).toEqual(["ok-1", "ok-1"]);
    expect(created).toBe(2);
    expect(await value.take()).toBe("ok-1");
    expect(await value.take()).toBeUndefined();
    expect(await value.get()).toBe("ok-2");
  });
});

describe("local work loads neither undici nor the AWS SDK", () => {
  it("importing the library, reading a LocalStore key and reducing a local netCDF4 file", async () => {
    const root = join(work, "local");
    await mkdir(join(root, "dir"), { recursive: true });
    await writeFile(join(root, "dir", "k"), "local bytes");
    const expected = JSON.parse(await readFile(join(dirname(fixture), "expected.json"), "utf8")) as {
      files: Record<string, Record<string, { cases: { select: string; axis: unknown; results: { sum: { value: number[] } } }[] }>>;
    };
    const whole = expected.files["active.nc"].i1.cases.find((c) => c.select === "" && c.axis === null)!;
    const report = await run(
      "local",
      `step("import");
const store = new lib.LocalStore(env.ROOT);
const bytes = await store.get("dir/k");
step("get", { text: new TextDecoder().decode(bytes) });
const active = await lib.openActive(env.FIXTURE, "i1");
const sum = await active.sum();
step("reduce", { sum: sum.value });`,
      { ROOT: root, FIXTURE: fixture },
    );
    // The hook sees packages at all (otherwise the absence below would prove nothing).
    expect(packagesAt(report, "import")).toContain("zarrita");
    expect(field(report, "get", "text")).toBe("local bytes");
    expect(field(report, "reduce", "sum")).toBe(whole.results.sum.value[0]);
    for (const step of ["import", "get", "reduce"]) {
      for (const heavy of [...HEAVY, ...FORMATS]) expect(packagesAt(report, step), `${heavy} after ${step}`).not.toContain(heavy);
    }
  });
});

describe("a request loads its client library on first use", () => {
  let s3: S3rverHandle;
  let gcs: GcsServer;
  let http: Server;
  let httpUrl: string;

  beforeAll(async () => {
    s3 = await startS3rver({ buckets: ["lazy"] });
    gcs = await startGcsServer({ buckets: ["lazy"] });
    http = createServer((req, res) => {
      if (req.url === "/base/k") res.end("http bytes");
      else res.writeHead(404).end();
    });
    await new Promise<void>((done) => http.listen(0, "127.0.0.1", done));
    httpUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}/base`;
  });

  afterAll(async () => {
    await s3?.stop();
    await gcs?.stop();
    http?.closeAllConnections();
    await new Promise<void>((done) => (http ? http.close(() => done()) : done()));
  });

  const s3Env = () => ({ ENDPOINT: s3.endpoint, KEY_ID: S3RVER_CREDENTIALS.accessKeyId, SECRET: S3RVER_CREDENTIALS.secretAccessKey });
  const openS3 = `const store = new lib.S3Store({
  bucket: "lazy", endpoint: env.ENDPOINT, forcePathStyle: true, region: "us-east-1",
  credentials: { accessKeyId: env.KEY_ID, secretAccessKey: env.SECRET }, retry: { attempts: 2, baseDelayMs: 10 },
});`;

  it("S3: constructing the store loads nothing; the first request loads the SDK and round-trips", async () => {
    const report = await run(
      "s3",
      `${openS3}
step("construct");
await store.set("obj", new TextEncoder().encode("s3 bytes"));
const back = await store.get("obj");
step("request", { text: new TextDecoder().decode(back) });
await store.close();`,
      s3Env(),
    );
    expect(packagesAt(report, "construct")).not.toContain("@aws-sdk/client-s3");
    expect(packagesAt(report, "request")).toContain("@aws-sdk/client-s3");
    expect(field(report, "request", "text")).toBe("s3 bytes");
    // S3 goes through the SDK's own HTTP handler, not undici.
    expect(packagesAt(report, "request")).not.toContain("undici");
  });

  it("HTTP: constructing the store loads nothing; the first request loads undici and reads", async () => {
    const report = await run(
      "http",
      `const store = new lib.HttpStore(env.URL);
step("construct");
const bytes = await store.get("k");
step("request", { text: new TextDecoder().decode(bytes), missing: (await store.get("nope")) === undefined });
await store.close();`,
      { URL: httpUrl },
    );
    expect(packagesAt(report, "construct")).not.toContain("undici");
    expect(packagesAt(report, "request")).toContain("undici");
    expect(field(report, "request", "text")).toBe("http bytes");
    expect(field(report, "request", "missing")).toBe(true);
  });

  it("GCS: constructing the store loads nothing; the first request loads undici and round-trips", async () => {
    const report = await run(
      "gcs",
      `const store = new lib.GcsStore({ bucket: "lazy", endpoint: env.ENDPOINT, retry: { attempts: 2, baseDelayMs: 10 } });
step("construct");
await store.set("obj", new TextEncoder().encode("gcs bytes"));
step("request", { text: new TextDecoder().decode(await store.get("obj")) });
await store.close();`,
      { ENDPOINT: gcs.url },
    );
    expect(packagesAt(report, "construct")).not.toContain("undici");
    expect(packagesAt(report, "request")).toContain("undici");
    expect(field(report, "request", "text")).toBe("gcs bytes");
  });

  /** The script's catch: the error's class, tag, message and retry facts, or "no error". */
  const capture = `async function attempt(f) {
  try { await f(); return "no error"; }
  catch (e) { return { name: e.name, tag: e.tag, message: e.message, retryable: e.retryable, attempts: e.attempts, isStoreError: e instanceof lib.StoreError }; }
}`;

  it("a library that cannot load fails each request with a StoreError naming it, never as missing", async () => {
    const report = await run(
      "blocked",
      `${capture}
${openS3}
const http = new lib.HttpStore(env.URL);
step("s3", { first: await attempt(() => store.get("obj")), second: await attempt(() => store.head("obj")) });
step("http", { error: await attempt(() => http.get("k")), blocked: globalThis.blockedLoads() });`,
      { ...s3Env(), URL: httpUrl, BLOCK_MODULES: "undici,@aws-sdk/client-s3" },
    );
    type Caught = { name: string; tag: string; message: string; retryable: boolean; attempts: number; isStoreError: boolean };
    const first = field<Caught>(report, "s3", "first");
    expect(first).toMatchObject({ name: "StoreError", tag: "StoreError", isStoreError: true, retryable: false, attempts: 1 });
    expect(first.message).toMatch(/^get s3:\/\/lazy key "obj": could not load @aws-sdk\/client-s3 .*blocked by the test/);
    // Not cached as a failure: the next request loads it again (counted below), failing the same way.
    const second = field<Caught>(report, "s3", "second");
    expect(second).toMatchObject({ isStoreError: true, retryable: false });
    expect(second.message).toMatch(/^head s3:\/\/lazy key "obj": could not load @aws-sdk\/client-s3/);
    const http = field<Caught>(report, "http", "error");
    expect(http).toMatchObject({ isStoreError: true, retryable: false, attempts: 1 });
    expect(http.message).toMatch(/^get http:\/\/127\.0\.0\.1:\d+\/base key "k": could not load undici .*blocked by the test/);
    for (const heavy of HEAVY) expect(packagesAt(report, "http")).not.toContain(heavy);
    // Each failed request asked for its package afresh: two S3 requests, one HTTP request.
    expect(field(report, "http", "blocked")).toEqual({ "@aws-sdk/client-s3": 2, undici: 1 });
  });

  it("the active-storage client: a library that cannot load rejects the request at once, without retries", async () => {
    const exchangeModule = pathToFileURL(join(repo, "dist", "active", "remote-exchange.js")).href;
    const report = await run(
      "exchange",
      `const { exchange } = await import(${JSON.stringify(exchangeModule)});
const x = exchange({ servers: env.URL, retries: 3 }, 2);
step("construct");
let message = "no error";
try { await x.post("sum", "{}"); } catch (e) { message = e.message; }
step("post", { message, requests: x.requests });
await x.close();`,
      { URL: httpUrl, BLOCK_MODULES: "undici" },
    );
    expect(field(report, "post", "message")).toMatch(/could not load undici .*blocked by the test/);
    // Nothing was sent, and the failure was not retried.
    expect(field(report, "post", "requests")).toBe(0);
  });
});
