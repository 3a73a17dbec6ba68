/**
 * Timing and memory for one benchmark case: wall time, objects/s, MB/s (10^6 bytes) and peak RSS.
 * Our own cases run in this process, so RSS is sampled here; rclone runs as a child and its peak is
 * the kernel's high-water mark (VmHWM) read from /proc while it runs.
 */
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";

export interface Measurement {
  label: string;
  objects: number;
  bytes: number;
  seconds: number;
  objectsPerSecond: number;
  megabytesPerSecond: number;
  peakRssMiB: number;
}

function summarize(label: string, objects: number, bytes: number, seconds: number, peakRss: number): Measurement {
  return {
    label,
    objects,
    bytes,
    seconds,
    objectsPerSecond: objects / seconds,
    megabytesPerSecond: bytes / 1e6 / seconds,
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
  const start = process.hrtime.bigint();
  try {
    const { objects, bytes } = await work();
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    peak = Math.max(peak, process.memoryUsage.rss());
    return summarize(label, objects, bytes, seconds, peak);
  } finally {
    clearInterval(sampler);
  }
}

async function highWaterMark(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    const match = /VmHWM:\s+(\d+) kB/.exec(status);
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined; // already gone
  }
}

/** Runs a command to completion; fails with its stderr when it exits non-zero. */
export async function measureCommand(
  label: string,
  command: string,
  args: string[],
  /** Added to this process's environment; `undefined` removes a variable. */
  env: Record<string, string | undefined>,
  moved: { objects: number; bytes: number },
): Promise<Measurement> {
  const start = process.hrtime.bigint();
  const merged: Record<string, string | undefined> = { ...process.env, ...env };
  for (const name of Object.keys(merged)) if (merged[name] === undefined) delete merged[name];
  const child = spawn(command, args, { env: merged, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  let peak = 0;
  const sampler = setInterval(() => {
    void highWaterMark(child.pid!).then((hwm) => (peak = Math.max(peak, hwm ?? 0)));
  }, 10);
  const code = await new Promise<number | null>((done, reject) => {
    child.once("error", reject);
    child.once("exit", (c) => done(c));
  }).finally(() => clearInterval(sampler));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (code !== 0) throw new Error(`${command} ${args.join(" ")} exited with ${code}: ${stderr.trim()}`);
  return summarize(label, moved.objects, moved.bytes, seconds, peak);
}
