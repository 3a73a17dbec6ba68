/**
 * The client's side of the wire to active-storage servers: one keep-alive undici Pool per server,
 * requests round-robin over them, CBOR answers decoded, Reductionist error bodies turned into
 * RequestErrors; 5xx answers and connection failures retried (on the next server), 4xx not.
 * undici and cbor-x load on the first request (deps-lazy.ts): a process that reduces only local
 * files never pays for them.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Decoder } from "cbor-x";
import pRetry, { AbortError } from "p-retry";
import type { Pool } from "undici";
import { RequestError } from "../errors.js";
import { lazyModule, loadUndici, OnFirstUse } from "../stores/deps-lazy.js";

export interface ExchangeOptions {
  /** Server base URLs (`http://host:8080`, a path prefix allowed). */
  servers: string | readonly string[];
  credentials?: { username: string; password: string };
  /** Retries per request after the first attempt. Default 4. */
  retries?: number;
  /** Per-request deadline in ms. Default 120 000. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

const loadDecoder = lazyModule("cbor-x", async (): Promise<Decoder> => {
  const { Decoder } = await import("cbor-x");
  return new Decoder({ useRecords: false, mapsAsObjects: true });
});

/** One server: its base URL as given, and where requests go. */
interface Server {
  base: string;
  origin: string;
  path: string;
}

/** What requests need, created on the first one. */
interface Connection {
  pools: Pool[];
  decoder: Decoder;
}

export interface Exchange {
  post(operation: string, body: string): Promise<Record<string, unknown>>;
  requests: number;
  bytesReceived: number;
  /** Waits for requests in flight; `destroy` (after a failure) aborts them. */
  close(destroy?: boolean): Promise<void>;
}

/**
 * One keep-alive undici Pool per server, sized to the chunks in flight. Not `fetch`: its WHATWG
 * request/response streams, cloned requests and per-request abort signals cost more CPU than the
 * rest of the client's work for a 150-byte answer (≈0.4 ms per request on the bench machine).
 */
export function exchange(options: ExchangeOptions, connections: number): Exchange {
  const bases = (typeof options.servers === "string" ? [options.servers] : [...options.servers]).map((s) => s.replace(/\/+$/, ""));
  if (bases.length === 0) throw new RequestError("no active-storage server given");
  const servers: Server[] = bases.map((base) => {
    const url = new URL(base);
    return { base, origin: url.origin, path: url.pathname.replace(/\/+$/, "") };
  });
  const connection = new OnFirstUse(async (): Promise<Connection> => {
    const [{ Pool }, decoder] = await Promise.all([loadUndici(), loadDecoder()]);
    const pools = servers.map((s) => new Pool(s.origin, { connections, pipelining: 1, keepAliveTimeout: 30_000 }));
    return { pools, decoder };
  });
  let next = 0;
  const headers: Record<string, string> = { "content-type": "application/json", accept: "application/cbor" };
  if (options.credentials) {
    const { username, password } = options.credentials;
    headers.authorization = "Basic " + Buffer.from(`${username}:${password}`).toString("base64");
  }
  const timeout = options.timeoutMs ?? 120_000;
  const retries = options.retries ?? 4;

  const attempt = async (
    { pools, decoder }: Connection,
    operation: string,
    body: string,
  ): Promise<Record<string, unknown>> => {
    const index = next++ % servers.length;
    const server = servers[index];
    state.requests++;
    // The server answers only when the reduction is done, so the header timeout is the request's deadline.
    const res = await pools[index].request({
      path: `${server.path}/v2/${operation}`, method: "POST", headers, body, signal: options.signal,
      headersTimeout: timeout, bodyTimeout: timeout,
    });
    const bytes = new Uint8Array(await res.body.arrayBuffer());
    state.bytesReceived += bytes.length;
    if (res.statusCode === 200) return decoder.decode(bytes) as Record<string, unknown>;
    let message = `active-storage server ${server.base} answered ${res.statusCode}`;
    let causes: string[] = [];
    try {
      const err = JSON.parse(new TextDecoder().decode(bytes)) as { error?: { message?: string; caused_by?: string[] } };
      if (err.error?.message) message += `: ${err.error.message}`;
      causes = err.error?.caused_by ?? [];
    } catch {
      // not a Reductionist error body; the status says enough
    }
    const error = new RequestError(message + (causes.length ? ` (${causes.join("; ")})` : ""), res.statusCode, causes);
    if (res.statusCode >= 500) throw error;
    throw new AbortError(error);
  };

  const state: Exchange = {
    requests: 0,
    bytesReceived: 0,
    async post(operation, body) {
      // Outside the retries: a library that did not load will not load on the next attempt.
      const connected = await connection.get();
      // The first attempt outside p-retry: nearly every request succeeds at once, and p-retry's
      // per-call setup shows in the profile at thousands of chunks.
      try {
        return await attempt(connected, operation, body);
      } catch (error) {
        if (error instanceof AbortError) throw error.originalError;
        if (retries <= 0 || options.signal?.aborted) throw error;
      }
      await sleep(100, undefined, options.signal ? { signal: options.signal } : {});
      return pRetry(() => attempt(connected, operation, body), {
        retries: retries - 1,
        minTimeout: 200,
        maxTimeout: 5_000,
        signal: options.signal,
        shouldRetry: () => !options.signal?.aborted,
      });
    },
    async close(destroy = false) {
      const connected = await connection.take();
      if (!connected) return;
      await Promise.all(connected.pools.map((p) => (destroy ? p.destroy() : p.close()).catch(() => undefined)));
    },
  };
  return state;
}
