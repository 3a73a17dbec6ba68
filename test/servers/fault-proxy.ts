/**
 * A reverse proxy on 127.0.0.1 that forwards to a real server and breaks some responses on a
 * deterministic plan, so retry and integrity handling are tested against real sockets:
 *
 * - `reset-before-headers`: the connection is destroyed before any response byte.
 * - `reset-after-headers`: the upstream headers are sent, then the connection is destroyed.
 * - `503`, `429`: answered by the proxy (429 with `Retry-After: 0`).
 * - `slowdown`: S3's `503 SlowDown` XML error.
 * - `stall`: nothing is sent for `stallMs` (longer than the client's timeout), then the socket is
 *   destroyed.
 * - `truncate`: the full Content-Length is announced, about half the body sent, then reset.
 * - `wrong-length`: for a 206, a Content-Length one byte short of the Content-Range (body consistent
 *   with the former), closed cleanly; otherwise a Content-Length larger than the body, closed
 *   cleanly (FIN) after the real body.
 *
 * Faulted requests never reach the upstream except the kinds that need its response.
 */
import { mulberry32 } from "../support/prng.js";
import { createServer, request as httpRequest, Agent, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export type FaultKind =
  | "reset-before-headers"
  | "reset-after-headers"
  | "503"
  | "429"
  | "slowdown"
  | "stall"
  | "truncate"
  | "wrong-length";

export const ALL_FAULTS: readonly FaultKind[] = [
  "reset-before-headers",
  "reset-after-headers",
  "503",
  "429",
  "slowdown",
  "stall",
  "truncate",
  "wrong-length",
];

export interface FaultPlan {
  /** Kinds to inject; `every` cycles through them in order, `probability` picks with the PRNG. */
  kinds: readonly FaultKind[];
  /** Fault requests N, 2N, 3N, ... (1-based). */
  every?: number;
  /** Or fault each request with this probability, drawn from a PRNG seeded with `seed`. */
  probability?: number;
  seed?: number;
  /** How long a stall holds the response (ms). Default 30 000. */
  stallMs?: number;
  /** Only requests with these methods are eligible (default: all). */
  methods?: readonly string[];
  /** Stop injecting after this many faults. */
  maxFaults?: number;
}

export interface FaultStats {
  requests: number;
  faults: Record<FaultKind, number>;
  /** Total faults injected. */
  injected: number;
}

export interface FaultProxy {
  url: string;
  stats: FaultStats;
  stop(): Promise<void>;
}


const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "te", "upgrade", "trailer"]);

function rawHead(status: number, message: string, headers: Record<string, string | number>): string {
  const lines = [`HTTP/1.1 ${status} ${message}`];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  return lines.join("\r\n") + "\r\n\r\n";
}

function upstreamHeaders(upstream: IncomingMessage): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  for (const [name, value] of Object.entries(upstream.headers)) {
    if (value === undefined || HOP_BY_HOP.has(name)) continue;
    out[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}

function readAll(stream: IncomingMessage): Promise<Buffer> {
  return new Promise((done, fail) => {
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.once("end", () => done(Buffer.concat(chunks)));
    stream.once("error", fail);
  });
}

export async function startFaultProxy(targetUrl: string, plan: FaultPlan): Promise<FaultProxy> {
  const target = new URL(targetUrl);
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const random = mulberry32(plan.seed ?? 1);
  const stats: FaultStats = {
    requests: 0,
    faults: Object.fromEntries(ALL_FAULTS.map((k) => [k, 0])) as Record<FaultKind, number>,
    injected: 0,
  };
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let eligible = 0;

  function choose(method: string): FaultKind | undefined {
    if (plan.methods && !plan.methods.includes(method)) return undefined;
    if (plan.maxFaults !== undefined && stats.injected >= plan.maxFaults) return undefined;
    if (plan.kinds.length === 0) return undefined;
    eligible++;
    if (plan.every) {
      if (eligible % plan.every !== 0) return undefined;
      return plan.kinds[(eligible / plan.every - 1) % plan.kinds.length];
    }
    if (plan.probability !== undefined && random() < plan.probability) {
      return plan.kinds[Math.floor(random() * plan.kinds.length)];
    }
    return undefined;
  }

  function forward(req: IncomingMessage, onResponse: (upstream: IncomingMessage) => void, onError: () => void) {
    const headers = { ...req.headers, host: target.host };
    const out = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers,
        agent,
      },
      onResponse,
    );
    out.once("error", onError);
    req.pipe(out);
  }

  function pass(req: IncomingMessage, res: ServerResponse) {
    forward(
      req,
      (upstream) => {
        res.writeHead(upstream.statusCode ?? 502, upstreamHeaders(upstream));
        upstream.pipe(res);
        upstream.once("error", () => res.destroy());
      },
      () => res.destroy(),
    );
  }

  function inject(kind: FaultKind, req: IncomingMessage, res: ServerResponse) {
    const socket = req.socket;
    stats.faults[kind]++;
    stats.injected++;
    switch (kind) {
      case "reset-before-headers":
        req.resume();
        socket.resetAndDestroy();
        return;
      case "503":
      case "429":
      case "slowdown": {
        req.resume();
        const body =
          kind === "slowdown"
            ? '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>' +
              "<Message>Please reduce your request rate.</Message></Error>"
            : `injected ${kind}`;
        res.writeHead(kind === "429" ? 429 : 503, {
          "Content-Type": kind === "slowdown" ? "application/xml" : "text/plain",
          "Content-Length": Buffer.byteLength(body),
          ...(kind === "429" ? { "Retry-After": "0" } : {}),
        });
        res.end(body);
        return;
      }
      case "stall": {
        req.resume();
        const timer = setTimeout(() => {
          timers.delete(timer);
          socket.destroy();
        }, plan.stallMs ?? 30_000);
        timers.add(timer);
        return;
      }
      case "reset-after-headers":
      case "truncate":
      case "wrong-length":
        forward(
          req,
          async (upstream) => {
            const body = await readAll(upstream).catch(() => undefined);
            if (!body) return socket.destroy();
            const headers = upstreamHeaders(upstream);
            const status = upstream.statusCode ?? 502;
            const message = upstream.statusMessage ?? "";
            // Raw bytes on the socket: Node's response object would refuse to lie about lengths.
            if (kind === "reset-after-headers") {
              socket.write(rawHead(status, message, headers));
              setImmediate(() => socket.resetAndDestroy());
            } else if (kind === "truncate") {
              socket.write(rawHead(status, message, { ...headers, "content-length": body.length }));
              socket.write(body.subarray(0, Math.floor(body.length / 2)));
              setImmediate(() => socket.resetAndDestroy());
            } else if (status === 206 && body.length > 0) {
              const short = body.subarray(0, body.length - 1);
              socket.end(
                Buffer.concat([
                  Buffer.from(rawHead(status, message, { ...headers, "content-length": short.length, connection: "close" })),
                  short,
                ]),
              );
            } else {
              socket.end(
                Buffer.concat([
                  Buffer.from(
                    rawHead(status, message, { ...headers, "content-length": body.length + 7, connection: "close" }),
                  ),
                  body,
                ]),
              );
            }
          },
          () => socket.destroy(),
        );
        return;
    }
  }

  const server = createServer((req, res) => {
    stats.requests++;
    const kind = choose(req.method ?? "GET");
    if (kind) inject(kind, req, res);
    else pass(req, res);
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stats,
    stop: () =>
      new Promise<void>((done) => {
        for (const timer of timers) clearTimeout(timer);
        for (const socket of sockets) socket.destroy();
        agent.destroy();
        server.close(() => done());
      }),
  };
}

/** One line for test output: what was injected. */
export function describeFaults(stats: FaultStats): string {
  const kinds = Object.entries(stats.faults)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k}=${n}`)
    .join(" ");
  return `${stats.injected} faults in ${stats.requests} requests (${kinds || "none"})`;
}
