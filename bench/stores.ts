/**
 * Store benchmark: batched getMany / setMany against a one-at-a-time loop over the same store and
 * against `rclone copy` on the same server, in the same run. HttpStore talks to nginx, S3Store to
 * s3rver (both local, so this measures client overhead and request pipelining, not a network).
 *
 * Build and run (from the repository root; see bench/RESULTS.md):
 *   npx tsc --module NodeNext --moduleResolution NodeNext --target ES2022 --strict --skipLibCheck \
 *     --types node --rootDir . --outDir node_modules/.cache/bench bench/stores.ts
 *   node --expose-gc node_modules/.cache/bench/bench/stores.js [--quick] [--small N] [--large N]
 *     [--concurrency 32] [--repeat 1]
 */
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { spawnSync } from "node:child_process";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { HttpStore } from "../src/stores/http.js";
import { S3Store } from "../src/stores/s3.js";
import type { Store } from "../src/stores/types.js";
import { S3RVER_CREDENTIALS, startS3rver } from "../test/servers/s3rver.js";
import { makeDataset, matches, writeDatasetFiles, type Dataset } from "./lib/data.js";
import { measure, measureCommand, type Measurement } from "./lib/measure.js";
import { startBenchNginx } from "./lib/nginx.js";
import { renderGroups, type Group } from "./lib/report.js";

// The AWS SDK's "Node < 22" notice is noise in a benchmark's output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const { values: flags } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    small: { type: "string" },
    large: { type: "string" },
    concurrency: { type: "string", default: "32" },
    repeat: { type: "string", default: "1" },
  },
});
const repeat = Math.max(1, Number(flags.repeat));
const concurrency = Number(flags.concurrency);
const smallCount = Number(flags.small ?? (flags.quick ? 300 : 3000));
const largeCount = Number(flags.large ?? (flags.quick ? 3 : 12));
const KiB = 1024;
const MiB = 1024 * KiB;

const datasets = [makeDataset("small", smallCount, 64 * KiB), makeDataset("large", largeCount, 16 * MiB, 7)];
const describe = (d: Dataset) => `${d.keys.length} × ${d.objectSize >= MiB ? `${d.objectSize / MiB} MiB` : `${d.objectSize / KiB} KiB`}`;

// ---- the cases ----

async function batchedRead(store: Store, d: Dataset, label: string): Promise<Measurement> {
  return measure(label, async () => {
    let objects = 0;
    let bytes = 0;
    for await (const { key, value } of store.getMany(d.keys, { concurrency })) {
      if (!matches(d, key, value)) throw new Error(`${label}: wrong bytes for ${key}`);
      objects++;
      bytes += value!.length;
    }
    return { objects, bytes };
  });
}

async function loopRead(store: Store, d: Dataset, label: string): Promise<Measurement> {
  return measure(label, async () => {
    let bytes = 0;
    for (const key of d.keys) {
      const value = await store.get(key);
      if (!matches(d, key, value)) throw new Error(`${label}: wrong bytes for ${key}`);
      bytes += value!.length;
    }
    return { objects: d.keys.length, bytes };
  });
}

async function batchedWrite(store: Store, d: Dataset, prefix: string, label: string): Promise<Measurement> {
  return measure(label, async () => {
    function* entries() {
      for (let i = 0; i < d.keys.length; i++) yield [`${prefix}${d.keys[i]}`, d.payload(i)] as const;
    }
    let objects = 0;
    let bytes = 0;
    for await (const { value } of store.setMany(entries(), { concurrency })) {
      objects++;
      bytes += value;
    }
    return { objects, bytes };
  });
}

async function loopWrite(store: Store, d: Dataset, prefix: string, label: string): Promise<Measurement> {
  return measure(label, async () => {
    for (let i = 0; i < d.keys.length; i++) await store.set(`${prefix}${d.keys[i]}`, d.payload(i));
    return { objects: d.keys.length, bytes: d.bytes };
  });
}

async function countFiles(dir: string): Promise<number> {
  return (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).length;
}

/** rclone with the same parallelism as ours; `--no-check-dest`: the destination is always fresh. */
function rcloneArgs(from: string, to: string): string[] {
  return ["copy", from, to, "--transfers", String(concurrency), "--checkers", String(concurrency), "--no-check-dest"];
}

async function rcloneDownload(
  d: Dataset,
  from: string,
  env: Record<string, string | undefined>,
  extra: string[],
  scratch: string,
  label: string,
): Promise<Measurement> {
  const to = await mkdtemp(join(scratch, "rclone-"));
  try {
    const m = await measureCommand(label, "rclone", [...rcloneArgs(from, to), ...extra], env, {
      objects: d.keys.length,
      bytes: d.bytes,
    });
    const got = await countFiles(to);
    if (got !== d.keys.length) throw new Error(`${label}: rclone copied ${got} of ${d.keys.length} objects`);
    return m;
  } finally {
    await rm(to, { recursive: true, force: true });
  }
}

/**
 * Connections, JIT and the server's page cache warmed before timing, so the first case measured
 * is not charged for them.
 */
async function warmUp(store: Store, d: Dataset): Promise<void> {
  const count = Math.min(64, d.keys.length);
  const keys = d.keys.slice(0, count).map((key) => `warm-${key}`);
  for await (const _ of store.setMany(keys.map((key, i) => [key, d.payload(i)] as const), { concurrency }));
  for await (const _ of store.getMany(keys, { concurrency }));
  for (const key of keys) await store.get(key);
}

function environment(): string {
  const run = (cmd: string, args: string[]) => {
    const result = spawnSync(cmd, args, { encoding: "utf8" });
    return result.error ? "unavailable" : `${result.stdout}${result.stderr}`.trim();
  };
  return [
    `date: ${new Date().toISOString()}`,
    `nproc: ${run("nproc", [])} (${cpus()[0]?.model ?? "unknown CPU"})`,
    `free -g: ${run("free", ["-g"]).split("\n")[1]?.replace(/\s+/g, " ") ?? ""}`,
    `node: ${process.version}; ${run("rclone", ["version"]).split("\n")[0]}; ${run("/usr/sbin/nginx", ["-v"])}`,
    `load average at start: ${loadavg().map((n) => n.toFixed(1)).join(" ")}`,
  ].join("\n");
}

interface Cases {
  ours: () => Promise<Measurement>;
  loop?: () => Promise<Measurement>;
  rclone?: () => Promise<Measurement>;
}

/** The run with the median wall time: one slow outlier on a shared machine does not decide. */
function median(runs: Measurement[]): Measurement {
  return [...runs].sort((a, b) => a.seconds - b.seconds)[Math.floor(runs.length / 2)];
}

/** Runs the cases `repeat` times, interleaved so drifting background load hits each alike. */
async function runGroup(title: string, cases: Cases, note?: string): Promise<Group> {
  const runs: Record<keyof Cases, Measurement[]> = { ours: [], loop: [], rclone: [] };
  for (let i = 0; i < repeat; i++) {
    for (const role of ["ours", "loop", "rclone"] as const) {
      const run = cases[role];
      if (run) runs[role].push(await run());
    }
  }
  const group: Group = {
    title,
    ours: median(runs.ours),
    loop: runs.loop.length ? median(runs.loop) : undefined,
    rclone: runs.rclone.length ? median(runs.rclone) : undefined,
    note,
  };
  log(group);
  return group;
}

// ---- the run ----

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "activestore-bench-"));
  // rclone downloads land in tmpfs, so its numbers are not disk-bound while ours never touch disk.
  const scratch = await mkdtemp(join("/dev/shm", "activestore-bench-"));
  const www = join(work, "www");
  await mkdir(www);
  for (const d of datasets) await writeDatasetFiles(www, d);
  const groups: Group[] = [];
  const header = environment();
  const nginx = await startBenchNginx(www);
  const s3rver = await startS3rver({ buckets: ["bench"] });
  try {
    // HttpStore over nginx.
    const http = new HttpStore(nginx.url, { concurrency });
    await warmUp(http, datasets[0]);
    for (const d of datasets) {
      const title = `HttpStore (nginx) · read · ${describe(d)}`;
      groups.push(
        await runGroup(title, {
          ours: () => batchedRead(http, d, "getMany"),
          loop: () => loopRead(http, d, "get loop"),
          rclone: () => rcloneDownload(d, `:http:${d.name}`, {}, ["--http-url", nginx.url], scratch, "rclone copy"),
        }),
      );
    }
    for (const d of datasets) {
      groups.push(
        await runGroup(
          `HttpStore (nginx) · write · ${describe(d)}`,
          {
            ours: () => batchedWrite(http, d, "put-", "setMany"),
            loop: () => loopWrite(http, d, "loop-", "set loop"),
          },
          "no rclone baseline: its HTTP remote is read-only, and Debian's nginx has no PROPFIND for its WebDAV remote",
        ),
      );
    }
    await http.close();

    // S3Store over s3rver: writes first, which also fill the bucket for the reads.
    const s3 = new S3Store({
      bucket: "bench",
      endpoint: s3rver.endpoint,
      forcePathStyle: true,
      credentials: S3RVER_CREDENTIALS,
      concurrency,
    });
    const rcloneEnv = {
      RCLONE_CONFIG_S3_TYPE: "s3",
      RCLONE_CONFIG_S3_PROVIDER: "Other",
      RCLONE_CONFIG_S3_ENDPOINT: s3rver.endpoint,
      RCLONE_CONFIG_S3_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
      RCLONE_CONFIG_S3_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
      RCLONE_CONFIG_S3_FORCE_PATH_STYLE: "true",
      // This machine points AWS_CA_BUNDLE at a CA file; rclone then refuses its plain-HTTP transport.
      AWS_CA_BUNDLE: undefined,
    };
    await warmUp(s3, datasets[0]);
    for (const d of datasets) {
      groups.push(
        await runGroup(`S3Store (s3rver) · write · ${describe(d)}`, {
          ours: () => batchedWrite(s3, d, "", "setMany"),
          loop: () => loopWrite(s3, d, "loop-", "set loop"),
          rclone: () =>
            measureCommand(
              "rclone copy",
              "rclone",
              [...rcloneArgs(join(www, d.name), `s3:bench/rclone-${d.name}`), "--s3-no-check-bucket"],
              rcloneEnv,
              { objects: d.keys.length, bytes: d.bytes },
            ),
        }),
      );
    }
    for (const d of datasets) {
      groups.push(
        await runGroup(`S3Store (s3rver) · read · ${describe(d)}`, {
          ours: () => batchedRead(s3, d, "getMany"),
          loop: () => loopRead(s3, d, "get loop"),
          rclone: () => rcloneDownload(d, `s3:bench/${d.name}`, rcloneEnv, [], scratch, "rclone copy"),
        }),
      );
    }
    await s3.close();
  } finally {
    await s3rver.stop();
    await nginx.stop();
    await rm(work, { recursive: true, force: true });
    await rm(scratch, { recursive: true, force: true });
  }
  console.log(`${header}\nload average at end: ${loadavg().map((n) => n.toFixed(1)).join(" ")}`);
  console.log(
    `concurrency ${concurrency} (ours, and rclone --transfers/--checkers); each case run ${repeat}×, median shown\n`,
  );
  console.log(renderGroups(groups));
}

function log(g: Group): void {
  const parts = [g.ours, g.loop, g.rclone].filter((m): m is Measurement => m !== undefined);
  console.error(
    `${g.title}: ` +
      parts
        .map((m) => `${m.label} ${m.megabytesPerSecond.toFixed(1)} MB/s ${m.cpuSeconds.toFixed(2)} CPU s`)
        .join(", "),
  );
}

await main();
