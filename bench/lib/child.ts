/**
 * One benchmark case in its own process, under /usr/bin/time: the child prints one JSON line (its
 * own timing of the work and the answer); /usr/bin/time adds the process's CPU seconds and peak RSS,
 * which are exact, so cases never share a heap or a high-water mark.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface ChildRun<T> {
  /** What the child printed (last line of stdout, parsed as JSON). */
  report: T;
  /** Wall seconds of the whole process, start-up included. */
  processSeconds: number;
  /** User + system CPU seconds of the whole process (all its threads). */
  cpuSeconds: number;
  peakRssMiB: number;
}

export async function runChild<T>(command: string, args: string[]): Promise<ChildRun<T>> {
  const dir = await mkdtemp(join(tmpdir(), "bench-child-"));
  const timeFile = join(dir, "time.txt");
  try {
    const start = process.hrtime.bigint();
    const child = spawn("/usr/bin/time", ["-o", timeFile, "-f", "%U %S %M", command, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((done, reject) => {
      child.once("error", reject);
      child.once("close", (c) => done(c));
    });
    const processSeconds = Number(process.hrtime.bigint() - start) / 1e9;
    if (code !== 0) throw new Error(`${command} ${args.join(" ")} exited with ${code}: ${stderr.trim()}`);
    const last = (await readFile(timeFile, "utf8")).trim().split("\n").at(-1) ?? "";
    const [user, system, rssKiB] = last.split(" ").map(Number);
    const line = stdout.trim().split("\n").at(-1) ?? "";
    return { report: JSON.parse(line || "null") as T, processSeconds, cpuSeconds: user + system, peakRssMiB: rssKiB / 1024 };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Median by `key` (the middle run, so its other numbers belong to the same run). */
export function medianBy<T>(runs: T[], key: (run: T) => number): T {
  const sorted = [...runs].sort((a, b) => key(a) - key(b));
  return sorted[Math.floor((sorted.length - 1) / 2)];
}
