/**
 * Pieces of bench/server.ts that drive the server from outside: wrk (a separate process, so the load
 * generator does not share this event loop with the server) and a sampler of this process's RSS and
 * of the server's memory budget while the load runs.
 */
import { spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ReductionServer } from "../../src/server/index.js";

export interface WrkResult {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  non2xx: number;
  errors: string;
}

const toMs = (v: string): number => {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(v.trim());
  if (!m) throw new Error(`wrk latency "${v}" not understood`);
  return Number(m[1]) * { us: 1e-3, ms: 1, s: 1e3, m: 6e4 }[m[2] as "us" | "ms" | "s" | "m"];
};

/** Runs `wrk --latency` POSTing `body` to `url`; the body goes through a Lua script (wrk has no flag for it). */
export async function runWrk(dir: string, url: string, body: string, connections: number, seconds: number): Promise<WrkResult> {
  const script = join(dir, `post-${connections}.lua`);
  await writeFile(
    script,
    `wrk.method = "POST"\nwrk.body = ${JSON.stringify(body)}\nwrk.headers["Content-Type"] = "application/json"\n`,
  );
  const threads = Math.min(2, connections);
  const args = ["-t", String(threads), "-c", String(connections), "-d", `${seconds}s`, "--timeout", "60s", "--latency", "-s", script, url];
  const out = await new Promise<string>((done, fail) => {
    const child = spawn("wrk", args, { stdio: ["ignore", "pipe", "inherit"] });
    let text = "";
    child.stdout.on("data", (d: Buffer) => (text += d.toString()));
    child.once("error", fail);
    child.once("exit", (code) => (code === 0 ? done(text) : fail(new Error(`wrk exited ${code}: ${text}`))));
  });
  const grab = (re: RegExp) => {
    const m = re.exec(out);
    if (!m) throw new Error(`wrk output lacks ${re}: ${out}`);
    return m[1];
  };
  return {
    requestsPerSecond: Number(grab(/Requests\/sec:\s+([\d.]+)/)),
    p50Ms: toMs(grab(/\s50%\s+(\S+)/)),
    p99Ms: toMs(grab(/\s99%\s+(\S+)/)),
    requests: Number(grab(/(\d+) requests in/)),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
    errors: /Socket errors:.*/.exec(out)?.[0] ?? "",
  };
}

export interface MemorySample {
  peakRss: number;
  /** Largest `activestore_memory_in_use_bytes` seen on /metrics while sampling. */
  peakMetricsInUse: number;
  stop(): Promise<MemorySample>;
}

/** Samples RSS and the server's /metrics every `everyMs` until stopped. */
export function sampleMemory(server: ReductionServer, everyMs = 100): MemorySample {
  const sample: MemorySample = {
    peakRss: process.memoryUsage().rss,
    peakMetricsInUse: 0,
    async stop() {
      running = false;
      await loop;
      return sample;
    },
  };
  let running = true;
  const loop = (async () => {
    while (running) {
      sample.peakRss = Math.max(sample.peakRss, process.memoryUsage().rss);
      try {
        const text = await (await fetch(`${server.url}/metrics`)).text();
        const m = /^activestore_memory_in_use_bytes\S*\s+(\d+)/m.exec(text);
        if (m) sample.peakMetricsInUse = Math.max(sample.peakMetricsInUse, Number(m[1]));
      } catch {
        // A scrape that fails under load is a missed sample, not a result.
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return sample;
}
