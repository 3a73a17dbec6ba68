/**
 * HttpStore through the fault-injecting proxy, in front of nginx (when installed) and the Node
 * static server: every injected failure is retried or reported, and every byte that comes back is
 * the byte on disk.
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { IntegrityError, StoreError } from "../src/errors.js";
import { HttpStore } from "../src/stores/http.js";
import { LocalStore } from "../src/stores/local.js";
import { ALL_FAULTS, describeFaults, startFaultProxy, type FaultKind, type FaultPlan } from "./servers/fault-proxy.js";
import { NGINX, startNginx, startStaticServer, type TestServer } from "./servers/nginx.js";

const OBJECTS = 40;
const SIZE = 20_000;
let root: string;
const objects = new Map<string, Uint8Array>();

/** Deterministic, distinct content per object so a byte from the wrong object or offset shows. */
function content(i: number): Uint8Array {
  const out = new Uint8Array(SIZE + i * 97);
  let x = (i + 1) * 2654435761;
  for (let j = 0; j < out.length; j++) {
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
    out[j] = x & 0xff;
  }
  return out;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "activestore-faults-"));
  const local = new LocalStore(root);
  for (let i = 0; i < OBJECTS; i++) objects.set(`obj/${i}.bin`, content(i));
  await local.setMany(objects).toMap();
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const servers: [string, (root: string) => Promise<TestServer>][] = [
  ["node", (r) => startStaticServer(r)],
  ...(existsSync(NGINX) ? [["nginx", (r: string) => startNginx(r)] as [string, (root: string) => Promise<TestServer>]] : []),
];

/** Byte equality without vitest's element-by-element deep diff (slow on thousands of arrays). */
function expectSame(got: Uint8Array | undefined, expected: Uint8Array, what: string): void {
  expect(got, what).toBeInstanceOf(Uint8Array);
  if (!Buffer.from(got!.buffer, got!.byteOffset, got!.length).equals(expected)) {
    expect(got, what).toEqual(expected); // the slow path only to show the difference
  }
}

/** Reads everything three ways (whole, single ranges, coalesced ranges) and checks each byte. */
async function readAllAndCheck(store: HttpStore): Promise<{ reads: number; bytes: number }> {
  let reads = 0;
  let bytes = 0;
  const whole = await store.getMany(objects.keys(), { concurrency: 8 }).toMap();
  for (const [key, expected] of objects) {
    expectSame(whole.get(key), expected, key);
    reads++;
    bytes += expected.length;
  }
  const singles = await Promise.all(
    [...objects].map(async ([key, expected], i) => {
      const offset = (i * 1013) % expected.length;
      const got = await store.getRange(key, { offset, length: 777 });
      expectSame(got, expected.slice(offset, offset + 777), key);
      return got!.length;
    }),
  );
  reads += singles.length;
  bytes += singles.reduce((a, b) => a + b, 0);
  for (const [key, expected] of [...objects].slice(0, 10)) {
    const ranges = [
      { offset: 10, length: 100 },
      { offset: 5000, length: 300 },
      { offset: expected.length - 50, length: 50 },
    ];
    const parts = await store.getRanges(key, ranges, { coalesceGap: 1000 });
    ranges.forEach((r, i) => expectSame(parts![i], expected.slice(r.offset, r.offset + r.length), key));
    reads += ranges.length;
    bytes += 450;
  }
  return { reads, bytes };
}

describe.each(servers)("faults in front of the %s server", (name, start) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await start(root);
  });
  afterAll(() => server?.stop());

  async function withProxy<T>(plan: FaultPlan, run: (store: HttpStore, proxy: Awaited<ReturnType<typeof startFaultProxy>>) => Promise<T>, storeOptions: ConstructorParameters<typeof HttpStore>[1] = {}): Promise<T> {
    const proxy = await startFaultProxy(server.url, plan);
    const store = new HttpStore(proxy.url, { retry: { baseDelayMs: 5, maxDelayMs: 50 }, timeoutMs: 400, ...storeOptions });
    try {
      return await run(store, proxy);
    } finally {
      await store.close();
      await proxy.stop();
    }
  }

  test.each(ALL_FAULTS)("one %s fault is retried and the bytes are right", async (kind) => {
    await withProxy({ kinds: [kind], every: 1, maxFaults: 1, stallMs: 5_000 }, async (store, proxy) => {
      expect(await store.getRange("obj/3.bin", { offset: 100, length: 1000 })).toEqual(objects.get("obj/3.bin")!.slice(100, 1100));
      expect(proxy.stats.faults[kind]).toBe(1);
      expect(store.stats.retries).toBe(1);
    });
    // The same fault on a whole-object GET (200 rather than 206).
    await withProxy({ kinds: [kind], every: 1, maxFaults: 1, stallMs: 5_000 }, async (store, proxy) => {
      expect(await store.get("obj/4.bin")).toEqual(objects.get("obj/4.bin"));
      expect(proxy.stats.faults[kind]).toBe(1);
      expect(store.stats.retries).toBe(1);
    });
  });

  test("every 3rd request faulted, all kinds in turn: everything read back matches", async () => {
    await withProxy({ kinds: ALL_FAULTS, every: 3, stallMs: 5_000 }, async (store, proxy) => {
      const { reads, bytes } = await readAllAndCheck(store);
      for (const kind of ALL_FAULTS) expect(proxy.stats.faults[kind], kind).toBeGreaterThan(0);
      console.log(
        `[faults/${name}] every-3rd plan: ${describeFaults(proxy.stats)}; ${store.stats.retries} retries; ` +
          `${reads} reads, ${bytes} bytes, every byte matched`,
      );
    });
  });

  test("seeded random plan (30% of requests): everything read back matches", async () => {
    const kinds = ALL_FAULTS.filter((k) => k !== "stall"); // stalls cost a timeout each; covered above
    await withProxy({ kinds, probability: 0.3, seed: 42 }, async (store, proxy) => {
      const { reads, bytes } = await readAllAndCheck(store);
      expect(proxy.stats.injected).toBeGreaterThan(10);
      console.log(
        `[faults/${name}] seeded 30% plan: ${describeFaults(proxy.stats)}; ${store.stats.retries} retries; ` +
          `${reads} reads, ${bytes} bytes, every byte matched`,
      );
    });
  });

  test("when faults persist, the last error is reported with its kind and attempt count, never as missing", async () => {
    const expectations: [FaultKind, (e: StoreError) => void][] = [
      ["503", (e) => expect([e.status, e.retryable]).toEqual([503, true])],
      ["429", (e) => expect([e.status, e.retryable]).toEqual([429, true])],
      ["slowdown", (e) => expect(e.message).toMatch(/SlowDown/)],
      ["reset-before-headers", (e) => expect([e.retryable, e instanceof IntegrityError]).toEqual([true, false])],
      ["truncate", (e) => expect(e).toBeInstanceOf(IntegrityError)],
      ["wrong-length", (e) => expect(e).toBeInstanceOf(IntegrityError)],
      ["stall", (e) => expect(e.message).toMatch(/timed out/)],
    ];
    for (const [kind, check] of expectations) {
      await withProxy(
        { kinds: [kind], every: 1, stallMs: 5_000 },
        async (store) => {
          for (const read of [
            () => store.get("obj/1.bin"),
            () => store.getRange("obj/1.bin", { offset: 10, length: 500 }),
          ]) {
            const error = await read().then(
              (v) => v,
              (e: unknown) => e,
            );
            expect(error, kind).toBeInstanceOf(StoreError);
            expect((error as StoreError).attempts, kind).toBe(2);
            check(error as StoreError);
          }
        },
        { retry: { attempts: 2, baseDelayMs: 5 }, timeoutMs: 300 },
      );
    }
  });
});
