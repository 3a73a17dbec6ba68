/**
 * HTTP servers for store tests, serving a directory on 127.0.0.1 at an ephemeral port:
 * - `startNginx`: the Debian nginx binary, a generated config in a temp dir, run in the foreground
 *   as a single process so one kill stops it.
 * - `startStaticServer`: a small Node server with the Range semantics the stores rely on (206 +
 *   Content-Range, 416, HEAD, 404), for machines without nginx and for misbehaviour on demand.
 * - `startHttpServer`: nginx when installed, else the Node one; `kind` says which ran.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createReadStream, existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { connect, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve, sep } from "node:path";

export const NGINX = "/usr/sbin/nginx";

export interface TestServer {
  url: string;
  kind: "nginx" | "node";
  stop(): Promise<void>;
}

export interface ServeOptions {
  /** Require HTTP basic auth with these credentials. */
  auth?: { username: string; password: string };
  /** Accept PUT/DELETE (nginx: the dav module; Node: a minimal equivalent); otherwise 405. */
  writable?: boolean;
}

/** Reserves a free port by binding to 0; the caller must handle losing a race for it. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolvePort(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      done(true);
    });
    socket.once("error", () => done(false));
  });
}

// Children still running when the test process exits are killed, also after a failed test.
const children = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

function nginxConfig(dir: string, root: string, port: number, options: ServeOptions): string {
  const location: string[] = [];
  if (options.auth) {
    location.push(`auth_basic "activestore tests";`, `auth_basic_user_file ${join(dir, "htpasswd")};`);
  }
  if (options.writable) {
    location.push(
      "dav_methods PUT DELETE;",
      "create_full_put_path on;",
      "dav_access user:rw group:r all:r;",
      "client_max_body_size 0;",
    );
  }
  return `
daemon off;
master_process off;
worker_processes 1;
pid ${join(dir, "nginx.pid")};
error_log ${join(dir, "error.log")} warn;
events { worker_connections 512; }
http {
  access_log ${join(dir, "access.log")};
  client_body_temp_path ${join(dir, "body")};
  proxy_temp_path ${join(dir, "proxy")};
  fastcgi_temp_path ${join(dir, "fastcgi")};
  uwsgi_temp_path ${join(dir, "uwsgi")};
  scgi_temp_path ${join(dir, "scgi")};
  default_type application/octet-stream;
  sendfile on;
  keepalive_timeout 65s;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    location / {
      ${location.join("\n      ")}
    }
  }
}
`;
}

/** Starts nginx serving `root`; retries on a lost port race (EADDRINUSE). */
export async function startNginx(root: string, options: ServeOptions = {}): Promise<TestServer> {
  const dir = await mkdtemp(join(tmpdir(), "activestore-nginx-"));
  if (options.auth) {
    // nginx reads "{PLAIN}" passwords, so no htpasswd tool is needed.
    await writeFile(join(dir, "htpasswd"), `${options.auth.username}:{PLAIN}${options.auth.password}\n`);
  }
  let lastError = "";
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    await writeFile(join(dir, "nginx.conf"), nginxConfig(dir, resolve(root), port, options));
    const child = spawn(NGINX, ["-p", dir, "-c", join(dir, "nginx.conf"), "-e", join(dir, "error.log")], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    children.add(child);
    let stderr = "";
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    let exited = false;
    const exit = new Promise<void>((done) =>
      child.once("exit", () => {
        exited = true;
        children.delete(child);
        done();
      }),
    );
    for (let i = 0; i < 200 && !exited; i++) {
      if (await canConnect(port)) {
        return {
          url: `http://127.0.0.1:${port}`,
          kind: "nginx",
          async stop() {
            if (!exited) {
              child.kill("SIGTERM");
              const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
              await exit;
              clearTimeout(timer);
            }
            await rm(dir, { recursive: true, force: true });
          },
        };
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!exited) {
      child.kill("SIGKILL");
      await exit;
    }
    const log = await readFile(join(dir, "error.log"), "utf8").catch(() => "");
    lastError = stderr + log;
    if (!/in use/i.test(lastError)) break;
  }
  await rm(dir, { recursive: true, force: true });
  throw new Error(`nginx did not start: ${lastError.trim() || "no output"}`);
}

export interface StaticServerOptions extends ServeOptions {
  /** Misbehave like a server without range support: answer 200 with the whole file. */
  ignoreRange?: boolean;
  /** Answer a multi-range request with one 206 part from the first range's start to the last's end. */
  mergeRanges?: boolean;
}

/** Sidecar encodings served for `key` when only `key.<suffix>` exists (the LocalStore layout). */
const SIDECARS: readonly [string, string][] = [
  ["gz", "gzip"],
  ["br", "br"],
  ["zstd", "zstd"],
];

function parseRange(header: string, size: number): { start: number; end: number } | "unsatisfiable" | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return undefined; // multi-range or malformed: serve whole
  if (m[1] === "") {
    const n = Number(m[2]);
    if (n === 0) return "unsatisfiable";
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  if (start >= size) return "unsatisfiable";
  const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (end < start) return undefined;
  return { start, end };
}

/** `bytes=a-b,c-d,...` with two or more ranges, clipped to the file; undefined for anything else. */
function parseMultiRange(header: string, size: number): { start: number; end: number }[] | "unsatisfiable" | undefined {
  const m = /^bytes=(.*)$/.exec(header.trim());
  const specs = m?.[1].split(",").map((s) => s.trim());
  if (!specs || specs.length < 2) return undefined;
  const out: { start: number; end: number }[] = [];
  for (const spec of specs) {
    const r = parseRange(`bytes=${spec}`, size);
    if (r === undefined) return undefined;
    if (r !== "unsatisfiable") out.push(r); // like nginx: unsatisfiable ranges are left out
  }
  return out.length === 0 ? "unsatisfiable" : out;
}

/** A multipart/byteranges answer (RFC 9110 §14.6), parts in the order asked. */
async function sendMultipart(req: IncomingMessage, res: ServerResponse, file: string, size: number, ranges: { start: number; end: number }[], headers: Record<string, string | number>) {
  const boundary = `activestore${Math.random().toString(16).slice(2)}`;
  const data = req.method === "HEAD" ? undefined : await readFile(file);
  const pieces: Buffer[] = [];
  for (const { start, end } of ranges) {
    pieces.push(Buffer.from(`\r\n--${boundary}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes ${start}-${end}/${size}\r\n\r\n`));
    pieces.push(data ? data.subarray(start, end + 1) : Buffer.alloc(end - start + 1));
  }
  pieces.push(Buffer.from(`\r\n--${boundary}--\r\n`));
  const body = Buffer.concat(pieces);
  res.writeHead(206, { ...headers, "Content-Type": `multipart/byteranges; boundary=${boundary}`, "Content-Length": body.length });
  res.end(req.method === "HEAD" ? undefined : body);
}

function authorized(req: IncomingMessage, auth: ServeOptions["auth"]): boolean {
  if (!auth) return true;
  const expected = "Basic " + Buffer.from(`${auth.username}:${auth.password}`).toString("base64");
  return req.headers.authorization === expected;
}

async function serveFile(req: IncomingMessage, res: ServerResponse, root: string, options: StaticServerOptions) {
  if (!authorized(req, options.auth)) {
    res.writeHead(401, { "WWW-Authenticate": 'Basic realm="activestore tests"', "Content-Length": 0 }).end();
    return;
  }
  const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
  const file = resolve(root, "." + path);
  if (file !== root && !file.startsWith(root + sep)) {
    res.writeHead(403, { "Content-Length": 0 }).end();
    return;
  }
  if (options.writable && (req.method === "PUT" || req.method === "DELETE")) {
    await writeMethod(req, res, file);
    return;
  }
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { Allow: "GET, HEAD", "Content-Length": 0 }).end();
    return;
  }
  let target = file;
  let encoding: string | undefined;
  let info = await stat(file).catch(() => undefined);
  if (!info) {
    for (const [suffix, name] of SIDECARS) {
      const candidate = await stat(`${file}.${suffix}`).catch(() => undefined);
      if (!candidate?.isFile()) continue;
      const accepted = (req.headers["accept-encoding"] ?? "").split(",").map((s) => s.trim().split(";")[0]);
      if (!accepted.includes(name)) {
        res.writeHead(406, { "Content-Length": 0 }).end();
        return;
      }
      [target, encoding, info] = [`${file}.${suffix}`, name, candidate];
      break;
    }
  }
  if (!info?.isFile()) {
    res.writeHead(404, { "Content-Length": 0 }).end();
    return;
  }
  const size = info.size;
  const headers: Record<string, string | number> = {
    "Accept-Ranges": "bytes",
    "Content-Type": "application/octet-stream",
    "Last-Modified": info.mtime.toUTCString(),
  };
  if (encoding) headers["Content-Encoding"] = encoding;
  const multi = req.headers.range && !options.ignoreRange ? parseMultiRange(req.headers.range, size) : undefined;
  if (Array.isArray(multi) && multi.length > 1 && !options.mergeRanges) {
    await sendMultipart(req, res, target, size, multi, headers);
    return;
  }
  const range =
    multi === "unsatisfiable"
      ? multi
      : Array.isArray(multi)
        ? { start: Math.min(...multi.map((r) => r.start)), end: Math.max(...multi.map((r) => r.end)) }
        : req.headers.range && !options.ignoreRange
          ? parseRange(req.headers.range, size)
          : undefined;
  if (range === "unsatisfiable") {
    res.writeHead(416, { "Content-Range": `bytes */${size}`, "Content-Length": 0 }).end();
    return;
  }
  const [start, end] = range ? [range.start, range.end] : [0, size - 1];
  headers["Content-Length"] = end - start + 1;
  if (range) headers["Content-Range"] = `bytes ${start}-${end}/${size}`;
  res.writeHead(range ? 206 : 200, headers);
  if (req.method === "HEAD" || size === 0) {
    res.end();
    return;
  }
  createReadStream(target, { start, end }).pipe(res);
}

/** PUT and DELETE like nginx's dav module: 201 when created, 204 when replaced or deleted. */
async function writeMethod(req: IncomingMessage, res: ServerResponse, file: string): Promise<void> {
  const existed = (await stat(file).catch(() => undefined))?.isFile() ?? false;
  if (req.method === "DELETE") {
    if (existed) await rm(file);
    res.writeHead(existed ? 204 : 404, { "Content-Length": 0 }).end();
    return;
  }
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, Buffer.concat(chunks));
  res.writeHead(existed ? 204 : 201, { "Content-Length": 0 }).end();
}

/** A Node HTTP server for `root` with single- and multi-range support. */
export async function startStaticServer(root: string, options: StaticServerOptions = {}): Promise<TestServer> {
  const base = resolve(root);
  const server: Server = createServer((req, res) => {
    serveFile(req, res, base, options).catch(() => {
      if (!res.headersSent) res.writeHead(500, { "Content-Length": 0 }).end();
      else res.destroy();
    });
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    kind: "node",
    stop: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}

/** nginx when `/usr/sbin/nginx` exists, else the Node static server. */
export function startHttpServer(root: string, options: ServeOptions = {}): Promise<TestServer> {
  return existsSync(NGINX) ? startNginx(root, options) : startStaticServer(root, options);
}
