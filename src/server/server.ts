/**
 * The active-storage server: Reductionist API v2 over node:http (or node:https with a cert/key).
 *
 * One request: validate the body → check the upstream host → take memory from the budget → read
 * the byte range (or the chunk cache) → decode through the codec chain → reduce with the chunk
 * kernel → CBOR. Credentials from the Authorization header go to the upstream store and into
 * hashed pool/cache keys only; they are never logged.
 */
import { readFileSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { RequestError } from "../errors.js";
import { registerCodecs } from "../codecs/index.js";
import { ChunkCache } from "./cache.js";
import { CodecChains } from "./chains.js";
import { defaultConfig, type LogEntry, type ServerConfig } from "./config.js";
import { errorResponse } from "./errors.js";
import { MemoryBudget, Semaphore } from "./limits.js";
import { Metrics } from "./metrics.js";
import { Reducer } from "./reduce.js";
import { OPERATIONS, type Operation } from "./request.js";
import { REQUEST_SCHEMA } from "./schema.js";
import { Upstream } from "./upstream.js";

export interface ReductionServer {
  /** `http(s)://host:port` once listening. */
  readonly url: string;
  readonly metrics: Metrics;
  readonly budget: MemoryBudget;
  /** Stops accepting, lets in-flight requests finish (up to shutdownTimeoutMs), then closes. */
  close(): Promise<void>;
}

const defaultLogger = (entry: LogEntry) => process.stderr.write(JSON.stringify({ time: new Date().toISOString(), ...entry }) + "\n");

async function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const declared = Number(req.headers["content-length"] ?? NaN);
  if (declared > limit) throw new RequestError("request body too large", 413, [`${declared} bytes, the limit is ${limit}`]);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new RequestError("request body too large", 413, [`more than ${limit} bytes, the limit is ${limit}`]);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

export async function startServer(options: Partial<ServerConfig> = {}): Promise<ReductionServer> {
  const config: ServerConfig = { ...defaultConfig(), ...options };
  const log = config.logger ?? defaultLogger;
  registerCodecs();
  const budget = new MemoryBudget(config.memoryBytes, config.maxQueue, config.queueTimeoutMs);
  const compute = new Semaphore(config.concurrency);
  const cache = config.cache ? new ChunkCache(config.cache) : undefined;
  const upstream = new Upstream({
    allowHosts: config.allowHosts,
    timeoutMs: config.upstreamTimeoutMs,
    attempts: config.upstreamAttempts,
    maxPooledStores: 64,
  });
  const metrics = new Metrics(() => ({
    activestore_memory_in_use_bytes: budget.inUse,
    activestore_memory_budget_bytes: budget.total,
    activestore_chunk_cache_bytes: cache?.bytes ?? 0,
  }));
  const chains = new CodecChains(64);
  const limits = { maxChunkBytes: config.maxChunkBytes, maxDecodedBytes: config.maxDecodedBytes, maxDims: config.maxDims };

  const reducer = new Reducer({
    allowHosts: config.allowHosts, limits, budget, compute, cache, upstream, metrics, chains, log,
    reduceThreads: config.reduceThreads,
  });

  const inflight = new Set<Promise<void>>();
  async function handle(httpReq: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const path = (httpReq.url ?? "/").split("?")[0].replace(/\/+$/, "") || "/";
    const note: Record<string, unknown> = {};
    let operation = "other";
    let status = 200;
    const send = (code: number, type: string, payload: string | Uint8Array) => {
      status = code;
      res.writeHead(code, { "content-type": type, "content-length": Buffer.byteLength(payload) });
      res.end(payload);
      metrics.responseBytes += Buffer.byteLength(payload);
    };
    let interfaceType: string | undefined;
    // One controller and a plain timer per request: AbortSignal.timeout + AbortSignal.any cost
    // more than the request's JSON parse at thousands of chunk requests a second.
    const abort = new AbortController();
    let timedOut = false;
    const deadline = setTimeout(() => {
      timedOut = true;
      abort.abort(new Error(`deadline of ${config.requestTimeoutMs} ms`));
    }, config.requestTimeoutMs).unref();
    res.on("close", () => res.writableFinished || abort.abort(new Error("client went away")));
    const signal = abort.signal;
    try {
      if (path === "/metrics" && httpReq.method === "GET") return send(200, "text/plain; version=0.0.4", metrics.render());
      if (path === "/.well-known/reductionist-schema" && httpReq.method === "GET") {
        return send(200, "application/schema+json", JSON.stringify(REQUEST_SCHEMA, null, 2));
      }
      const m = /^\/v2\/([^/]+)(\/batch)?$/.exec(path);
      if (!m) throw new RequestError(`no route for ${path}`, 404);
      const op = decodeURIComponent(m[1]);
      if (!(OPERATIONS as readonly string[]).includes(op)) throw new RequestError(`unsupported operation ${op}`, 404);
      if (httpReq.method !== "POST") throw new RequestError(`method ${httpReq.method} not allowed, use POST`, 405);
      operation = m[2] ? `${op}/batch` : op;
      const body = await readBody(httpReq, config.maxBodyBytes);
      const run = m[2] ? reducer.batch : reducer.one;
      const payload = await run.call(reducer, op as Operation, body, httpReq.headers.authorization, signal, note);
      interfaceType = note.interface_type as string;
      send(200, "application/cbor", payload);
    } catch (error) {
      interfaceType = note.interface_type as string | undefined;
      const mapped = timedOut
        ? { status: 504, body: { error: { message: "request timed out", caused_by: [`deadline of ${config.requestTimeoutMs} ms`] } } }
        : errorResponse(error, interfaceType);
      if (mapped.status >= 500) log({ level: "error", msg: "request failed", operation, status: mapped.status, error: mapped.body.error });
      if (!res.headersSent && !res.destroyed) send(mapped.status, "application/json", JSON.stringify(mapped.body));
      else status = mapped.status;
    } finally {
      clearTimeout(deadline);
      const seconds = (performance.now() - started) / 1000;
      metrics.observe(operation, status, seconds);
      log({ level: "info", msg: "request", method: httpReq.method, path, operation, status, ms: Math.round(seconds * 1000), ...note });
    }
  }

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    const p = handle(req, res).catch(() => undefined);
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  };
  const server: Server = config.tls
    ? createHttpsServer({ cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) }, listener)
    : createHttpServer(listener);
  const sockets = new Set<Socket>();
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  server.on("secureConnection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `${config.tls ? "https" : "http"}://${host}:${address.port}`;
  log({ level: "info", msg: "listening", url, allow_hosts: config.allowHosts });

  let closing: Promise<void> | undefined;
  return {
    url,
    metrics,
    budget,
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const deadline = new Promise<void>((resolve) => setTimeout(resolve, config.shutdownTimeoutMs).unref());
        await Promise.race([Promise.all([...inflight]), deadline]);
        server.closeIdleConnections();
        for (const s of sockets) s.destroy();
        await closed;
        await upstream.close();
      })();
      return closing;
    },
  };
}
