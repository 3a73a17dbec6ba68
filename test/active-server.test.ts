/**
 * Active pushing work to our active-storage server: a netCDF4 file (written by netCDF-C) on s3rver,
 * references built over S3, one request per chunk to the server, and results identical to the local
 * engine on the same file — with only small answers crossing the network.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import * as zarr from "zarrita";
import { Active } from "../src/active/active.js";
import type { Statistic } from "../src/active/result.js";
import { startServer, type ReductionServer } from "../src/server/index.js";
import { S3Store } from "../src/stores/s3.js";
import { S3RVER_CREDENTIALS, startS3rver, type S3rverHandle } from "./servers/s3rver.js";

const FIXTURE = join(import.meta.dirname, "fixtures", "active", "active.nc");
let s3: S3rverHandle;
let servers: ReductionServer[];

beforeAll(async () => {
  s3 = await startS3rver({ buckets: ["data"] });
  const store = new S3Store({ bucket: "data", endpoint: s3.endpoint, forcePathStyle: true, credentials: S3RVER_CREDENTIALS });
  await store.set("nc/active.nc", new Uint8Array(await readFile(FIXTURE)));
  await store.close();
  // Two servers, used round-robin, as users scale out.
  servers = await Promise.all(
    [0, 1].map(() => startServer({ port: 0, allowHosts: ["127.0.0.1"], logger: () => undefined })),
  );
}, 60_000);

afterAll(async () => {
  await Promise.all((servers ?? []).map((s) => s.close()));
  await s3?.stop();
});

const storeOptions = () => ({ s3: { endpoint: s3.endpoint, forcePathStyle: true, credentials: S3RVER_CREDENTIALS } });

describe("Active with {server}", () => {
  const cases: [string, Statistic, (number | null | ReturnType<typeof zarr.slice>)[] | null, number[] | undefined][] = [
    ["f4_zlib", "mean", null, undefined],
    ["f4_zlib", "std", [zarr.slice(1, 11), null, zarr.slice(null, null, -2)], [0]],
    ["i8", "sum", null, undefined],
    ["i2_valid_max", "max", [3, null, null], [1]],
    ["packed", "mean", [zarr.slice(0, 6), zarr.slice(2, 9), null], undefined],
    ["partial", "count", null, [0, 2]],
    ["f4_missing", "min", null, undefined],
  ];

  test.each(cases)("%s %s equals the local engine", async (variable, op, selection, axis) => {
    const url = "s3://data/nc/active.nc";
    const local = await Active.open(url, variable, { store: storeOptions() });
    const remote = await Active.open(url, variable, {
      store: storeOptions(),
      server: servers.map((s) => s.url),
      serverCredentials: { username: S3RVER_CREDENTIALS.accessKeyId, password: S3RVER_CREDENTIALS.secretAccessKey },
    });
    const want = await local.reduce(op, selection, { axis });
    const got = await remote.reduce(op, selection, { axis });
    expect(got.shape).toEqual(want.shape);
    expect(got.count).toEqual(want.count);
    const a = Array.isArray(got.value) ? got.value : [got.value];
    const b = Array.isArray(want.value) ? want.value : [want.value];
    a.forEach((v, i) => {
      if (typeof b[i] === "number") expect(v as number).toBeCloseTo(b[i] as number, 9);
      else expect(v).toEqual(b[i]);
    });
    expect(got.chunks).toBe(want.chunks);
    // Only partials came back: far fewer bytes than the chunks the servers reduced.
    expect(got.bytesReduced).toBeGreaterThan(0);
    expect(got.bytesRead).toBeLessThan(got.bytesReduced! + 4096);
  });

  test("refuses, at open, chunk urls the server cannot read (a local file)", async () => {
    await expect(Active.open(FIXTURE, "f8", { server: servers[0].url })).rejects.toThrow(/S3 or HTTP/);
  });
});
