/**
 * Timing, CPU and memory for one benchmark case: wall time, objects/s, MB/s (10^6 bytes), client
 * CPU seconds and peak RSS. The machine is shared, so wall time is noisy; client CPU seconds (user +
 * system of the process doing the transfer, servers excluded) say what each client costs whatever
 * else is running. Our cases run in this process (RSS sampled here); rclone runs under
 * /usr/bin/time, which reports its CPU time and maximum RSS exactly.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Measurement {
  label: string;
  objects: number;
  bytes: number;
  seconds: number;
  cpuSeconds: number;
  objectsPerSecond: number;
  megabytesPerSecond: number;
  peakRssMiB: number;
}

function summarize(
  label: string,
  moved: { objects: number; bytes: number },
  seconds: number,
  cpuSeconds: number,
  peakRss: number,
): Measurement {
  return {
    label,
    ...moved,
    seconds,
    cpuSeconds,
    objectsPerSecond: moved.objects / seconds,
    megabytesPerSecond: moved.bytes / 1e6 / seconds,
    peakRssMiB: peakRss / 2 ** 20,
  };
}

/** Runs `work` once; it returns the number of objects and bytes it moved (checked by the caller). */
export async function measure(
  label: string,
  work: () => Promise<{ objects: number; bytes: number }>,
): Promise<Measurement> {
  // A collection first, so one case's garbage is not charged to the next (needs --expose-gc).
  (globalThis as { gc?: () => void }).gc?.();
  let peak = process.memoryUsage.rss();
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 10);
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  try {
    const moved = await work();
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const used = process.cpuUsage(cpu);
    peak = Math.max(peak, process.memoryUsage.rss());
    return summarize(label, moved, seconds, (used.user + used.system) / 1e6, peak);
  } finally {
    clearInterval(sampler);
  }
}

/** Runs a command to completion under /usr/bin/time; fails with its stderr when it exits non-zero. */
export async function measureCommand(
  label: string,
  command: string,
  args: string[],
  /** Added to this process's environment; `undefined` removes a variable. */
  env: Record<string, string | undefined>,
  moved: { objects: number; bytes: number },
): Promise<Measurement> {
  const dir = await mkdtemp(join(tmpdir(), "bench-time-"));
  const report = join(dir, "time.txt");
  const merged: Record<string, string | undefined> = { ...process.env, ...env };
  for (const name of Object.keys(merged)) if (merged[name] === undefined) delete merged[name];
  try {
    const start = process.hrtime.bigint();
    const child = spawn("/usr/bin/time", ["-o", report, "-f", "%U %S %M", command, ...args], {
      env: merged,
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((done, reject) => {
      child.once("error", reject);
      child.once("exit", (c) => done(c));
    });
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    if (code !== 0) throw new Error(`${command} ${args.join(" ")} exited with ${code}: ${stderr.trim()}`);
    // Last line: "<user s> <system s> <max RSS KiB>".
    const last = (await readFile(report, "utf8")).trim().split("\n").at(-1) ?? "";
    const [user, system, rssKiB] = last.split(" ").map(Number);
    return summarize(label, moved, seconds, user + system, rssKiB * 1024);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
