/**
 * Server configuration: defaults, and a JSON file (`--config`) whose keys are the fields below.
 * Unknown keys are refused so a misspelt limit does not silently fall back to its default.
 */
import { readFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { RequestError } from "../errors.js";

export interface LogEntry {
  level: "info" | "error";
  msg: string;
  [field: string]: unknown;
}

export interface ServerConfig {
  host: string;
  port: number;
  /** Upstream hosts (`name` or `name:port`) requests may read; `*` = any public host. Default none. */
  allowHosts: string[];
  /** Largest request body. */
  maxBodyBytes: number;
  /** Largest `size` (bytes fetched for one request). */
  maxChunkBytes: number;
  /** Largest decoded array (prod(shape) × item size); decoding stops past it. */
  maxDecodedBytes: number;
  maxDims: number;
  /** Bytes of chunk data (fetched + decoded) held by requests in flight. */
  memoryBytes: number;
  /** Requests waiting for memory before new ones get 503. */
  maxQueue: number;
  queueTimeoutMs: number;
  /** Operations computing at once. */
  concurrency: number;
  /**
   * Worker threads that decode and reduce the chunks of a `moments` batch (only partials come
   * back); 0 decodes through the codec pool and reduces on the main thread.
   */
  reduceThreads: number;
  /** Whole-request deadline (upstream read + decode + reduce). */
  requestTimeoutMs: number;
  upstreamTimeoutMs: number;
  upstreamAttempts: number;
  /** On-disk chunk cache; off when absent. */
  cache?: { dir: string; maxBytes: number; ttlMs: number };
  /** PEM file paths; HTTPS when given. */
  tls?: { cert: string; key: string };
  /** How long a graceful shutdown waits for in-flight requests before closing their connections. */
  shutdownTimeoutMs: number;
  /** Structured log sink; default one JSON line per entry on stderr. */
  logger?: (entry: LogEntry) => void;
}

/**
 * ACTIVESTORE_REDUCE_THREADS, a non-negative integer; unset, min(cores, 4) — the local engine's
 * default, so a client in the same process shares the reduce pool instead of resizing it.
 */
function envThreads(value: string | undefined): number {
  const fallback = Math.min(availableParallelism(), 4);
  const n = Number(value ?? fallback);
  return Number.isInteger(n) && n >= 0 ? n : fallback;
}

export function defaultConfig(): ServerConfig {
  return {
    host: "127.0.0.1",
    port: 8080,
    allowHosts: [],
    maxBodyBytes: 64 * 1024,
    maxChunkBytes: 256 << 20,
    maxDecodedBytes: 512 << 20,
    maxDims: 32,
    memoryBytes: 1 << 30,
    maxQueue: 1024,
    queueTimeoutMs: 30_000,
    concurrency: Math.max(1, availableParallelism()),
    // Off until the worker checks a chunk's decoded size (reduce-worker.ts): a zlib stream shorter
    // than the chunk answers garbage there, where the codec chain answers 400. To turn on, use
    // Math.min(availableParallelism(), 4), Active's default, so an in-process client shares the pool.
    reduceThreads: envThreads(process.env.ACTIVESTORE_REDUCE_THREADS),
    requestTimeoutMs: 120_000,
    upstreamTimeoutMs: 30_000,
    upstreamAttempts: 3,
    shutdownTimeoutMs: 30_000,
  };
}

const NUMBER_KEYS = [
  "port", "maxBodyBytes", "maxChunkBytes", "maxDecodedBytes", "maxDims", "memoryBytes", "maxQueue", "queueTimeoutMs",
  "concurrency", "reduceThreads", "requestTimeoutMs", "upstreamTimeoutMs", "upstreamAttempts", "shutdownTimeoutMs",
] as const;

/** Merges a JSON config object over the defaults, checking every key and type. */
export function resolveConfig(input: Record<string, unknown>, base: ServerConfig = defaultConfig()): ServerConfig {
  const out: ServerConfig = { ...base };
  const fail = (msg: string): never => {
    throw new RequestError(`server config: ${msg}`);
  };
  for (const [key, value] of Object.entries(input)) {
    if ((NUMBER_KEYS as readonly string[]).includes(key)) {
      if (typeof value !== "number" || !Number.isInteger(value) || value < 0) fail(`${key} must be a non-negative integer`);
      (out as unknown as Record<string, number>)[key] = value as number;
    } else if (key === "host") {
      if (typeof value !== "string") fail("host must be a string");
      out.host = value as string;
    } else if (key === "allowHosts") {
      if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) fail("allowHosts must be a list of strings");
      out.allowHosts = value as string[];
    } else if (key === "cache") {
      const c = value as { dir?: unknown; maxBytes?: unknown; ttlMs?: unknown };
      if (typeof c !== "object" || c === null || typeof c.dir !== "string") fail("cache needs a dir");
      out.cache = {
        dir: c.dir as string,
        maxBytes: typeof c.maxBytes === "number" ? c.maxBytes : 1 << 30,
        ttlMs: typeof c.ttlMs === "number" ? c.ttlMs : 3_600_000,
      };
    } else if (key === "tls") {
      const t = value as { cert?: unknown; key?: unknown };
      if (typeof t !== "object" || t === null || typeof t.cert !== "string" || typeof t.key !== "string") fail("tls needs cert and key paths");
      out.tls = { cert: t.cert as string, key: t.key as string };
    } else fail(`unknown key "${key}"`);
  }
  return out;
}

export async function loadConfigFile(path: string, base?: ServerConfig): Promise<ServerConfig> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, "utf8"));
  } catch (error) {
    throw new RequestError(`server config ${path}: ${(error as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new RequestError(`server config ${path}: expected an object`);
  return resolveConfig(parsed as Record<string, unknown>, base);
}
