/**
 * A small in-process Google Cloud Storage server speaking exactly the JSON API endpoints GcsStore
 * uses, as Google documents them: object resources (sizes and generations as strings, base64
 * md5Hash/crc32c), media download with Range/206 and `x-goog-hash`, decompressive transcoding of
 * gzip objects for clients that do not send `Accept-Encoding: gzip`, `uploadType=media|multipart|
 * resumable` (308 Resume Incomplete with a `Range` header, non-final chunks persisted in 256 KiB
 * multiples), `ifGenerationMatch`, paginated listing with `nextPageToken`, and error bodies shaped
 * `{error: {code, message, errors}}`. Objects live in memory.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { gunzipSync, gzipSync } from "node:zlib";
import { checkMd5, crc32c, HttpError, md5, parseMultipart, parseRange, readBody } from "./gcs-wire.js";

export interface GcsObject {
  name: string;
  data: Uint8Array;
  contentType: string;
  contentEncoding?: string;
  generation: number;
  md5Hash: string;
  crc32c: string;
  created: Date;
}

/** What a fault hook may do to one request before the server looks at it. */
export type GcsFault =
  | { kind: "reset" }
  | { kind: "status"; status: number }
  /** Downloads only: announce the full Content-Length, send `bytes` of the body, then close. */
  | { kind: "truncate"; bytes: number }
  /** Downloads only: serve these bytes instead of the stored ones (headers still describe the stored object). */
  | { kind: "corrupt" };

export interface RequestRecord {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage["headers"];
}

export interface GcsServerOptions {
  /** Buckets that exist; requests for any other bucket get GCS's "bucket does not exist" 404. */
  buckets?: string[];
  /** When set, requests must carry `Authorization: Bearer <token>`. */
  token?: string;
  /** With `token`: anonymous reads (downloads, metadata, listing) are still allowed. */
  publicRead?: boolean;
  /** Decompressive transcoding like real GCS (default true). */
  transcode?: boolean;
  /**
   * Gzip plain objects on the way out when the client accepts gzip, as an HTTP front end may
   * (default false). The stored encoding stays in `x-goog-stored-content-encoding: identity`.
   */
  compressResponses?: boolean;
  /** Send `x-goog-hash` on downloads (default true; real GCS always does). */
  sendHash?: boolean;
  /** Cap on bytes persisted per resumable PUT, to provoke 308s that persisted less than was sent. */
  persistLimit?: number;
  fault?: (request: RequestRecord, n: number) => GcsFault | undefined;
}

export interface GcsServer {
  url: string;
  buckets: Map<string, Map<string, GcsObject>>;
  requests: RequestRecord[];
  /** Store an object directly, bypassing the API (fixtures, out-of-band corruption). */
  put(bucket: string, name: string, data: Uint8Array, meta?: { contentEncoding?: string; contentType?: string }): GcsObject;
  stop(): Promise<void>;
}

const CHUNK_QUANTUM = 256 * 1024;

interface Session {
  bucket: string;
  name: string;
  contentType: string;
  contentEncoding?: string;
  md5Hash?: string;
  ifGenerationMatch?: string;
  chunks: Buffer[];
  persisted: number;
  result?: GcsObject;
}

export async function startGcsServer(options: GcsServerOptions = {}): Promise<GcsServer> {
  const buckets = new Map<string, Map<string, GcsObject>>();
  for (const b of options.buckets ?? ["test-bucket"]) buckets.set(b, new Map());
  const sessions = new Map<string, Session>();
  const requests: RequestRecord[] = [];
  const sockets = new Set<Socket>();
  let generation = 1_700_000_000_000_000;
  let url = "";

  function bucketOf(name: string): Map<string, GcsObject> {
    const bucket = buckets.get(name);
    if (!bucket) throw new HttpError(404, "The specified bucket does not exist.", "notFound");
    return bucket;
  }

  function store(bucket: string, name: string, data: Uint8Array, meta: Partial<GcsObject>): GcsObject {
    const object: GcsObject = {
      name,
      data,
      contentType: meta.contentType || "application/octet-stream",
      contentEncoding: meta.contentEncoding || undefined,
      generation: ++generation,
      md5Hash: md5(data),
      crc32c: crc32c(data),
      created: new Date(),
    };
    bucketOf(bucket).set(name, object);
    return object;
  }

  function resource(bucket: string, o: GcsObject): Record<string, unknown> {
    const path = `b/${bucket}/o/${encodeURIComponent(o.name)}`;
    return {
      kind: "storage#object",
      id: `${bucket}/${o.name}/${o.generation}`,
      selfLink: `${url}/storage/v1/${path}`,
      mediaLink: `${url}/download/storage/v1/${path}?generation=${o.generation}&alt=media`,
      name: o.name,
      bucket,
      generation: String(o.generation),
      metageneration: "1",
      contentType: o.contentType,
      ...(o.contentEncoding ? { contentEncoding: o.contentEncoding } : {}),
      storageClass: "STANDARD",
      size: String(o.data.length),
      md5Hash: o.md5Hash,
      crc32c: o.crc32c,
      etag: Buffer.from(`${o.generation}/1`).toString("base64"),
      timeCreated: o.created.toISOString(),
      updated: o.created.toISOString(),
    };
  }

  function checkGeneration(query: URLSearchParams, existing: GcsObject | undefined): void {
    const match = query.get("ifGenerationMatch");
    if (match === null) return;
    const current = existing ? String(existing.generation) : "0";
    if (match !== current) throw new HttpError(412, "At least one of the pre-conditions you specified did not hold.", "conditionNotMet");
  }

  function authorize(req: IncomingMessage, read: boolean): void {
    if (options.token === undefined) return;
    const auth = req.headers.authorization;
    if (auth === undefined && read && options.publicRead) return;
    if (auth === undefined) throw new HttpError(401, "Anonymous caller does not have storage.objects access.", "required");
    if (auth !== `Bearer ${options.token}`) throw new HttpError(401, "Invalid Credentials", "authError");
  }

  function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = Buffer.from(JSON.stringify(body));
    res.writeHead(status, { "Content-Type": "application/json; charset=UTF-8", "Content-Length": text.length, ...headers });
    res.end(text);
  }

  function download(req: IncomingMessage, res: ServerResponse, bucket: string, name: string, fault?: GcsFault): void {
    const object = bucketOf(bucket).get(name);
    if (!object) throw new HttpError(404, `No such object: ${bucket}/${name}`, "notFound");
    const query = new URL(req.url!, "http://x").searchParams;
    checkGeneration(query, object);
    const acceptsGzip = /\bgzip\b/i.test(String(req.headers["accept-encoding"] ?? ""));
    const headers: Record<string, string | number> = {
      "Content-Type": object.contentType,
      "x-goog-generation": String(object.generation),
      "x-goog-metageneration": "1",
      "x-goog-stored-content-encoding": object.contentEncoding ?? "identity",
      "x-goog-stored-content-length": String(object.data.length),
      ETag: `"${object.md5Hash}"`,
      "Last-Modified": object.created.toUTCString(),
    };
    if (options.sendHash !== false) headers["x-goog-hash"] = `crc32c=${object.crc32c},md5=${object.md5Hash}`;
    if (object.contentEncoding === "gzip" && options.transcode !== false && !acceptsGzip) {
      // Decompressive transcoding: the decoded bytes, Range ignored, length unknown up front.
      res.writeHead(200, headers);
      res.end(gunzipSync(object.data));
      return;
    }
    if (object.contentEncoding) headers["Content-Encoding"] = object.contentEncoding;
    let body: Uint8Array = object.data;
    let status = 200;
    const range = parseRange(req.headers.range, object.data.length);
    if (range === "unsatisfiable") {
      throw new HttpError(416, "The requested range cannot be satisfied.", "requestedRangeNotSatisfiable");
    }
    if (range) {
      status = 206;
      body = object.data.subarray(range.start, range.end + 1);
      headers["Content-Range"] = `bytes ${range.start}-${range.end}/${object.data.length}`;
    }
    if (options.compressResponses && !object.contentEncoding && acceptsGzip) {
      body = gzipSync(body);
      headers["Content-Encoding"] = "gzip";
    }
    headers["Content-Length"] = body.length;
    res.writeHead(status, headers);
    if (fault?.kind === "truncate") {
      res.write(body.subarray(0, Math.min(fault.bytes, Math.max(0, body.length - 1))));
      res.socket?.destroy();
      return;
    }
    if (fault?.kind === "corrupt" && body.length > 0) {
      body = Buffer.from(body);
      body[0] ^= 0xff;
    }
    res.end(body);
  }

  function list(res: ServerResponse, bucket: string, query: URLSearchParams): void {
    const objects = bucketOf(bucket);
    const prefix = query.get("prefix") ?? "";
    const delimiter = query.get("delimiter");
    const max = Math.min(1000, Math.max(1, Number(query.get("maxResults") ?? 1000) || 1000));
    const token = query.get("pageToken");
    const after = token ? Buffer.from(token, "base64").toString("utf8") : undefined;
    const names = [...objects.keys()].filter((n) => n.startsWith(prefix) && (after === undefined || n > after)).sort();
    const items: Record<string, unknown>[] = [];
    const prefixes = new Set<string>();
    let next: string | undefined;
    for (const name of names) {
      if (items.length + prefixes.size >= max) {
        next = Buffer.from(items.length ? (items.at(-1)!.name as string) : [...prefixes].at(-1)!).toString("base64");
        break;
      }
      const cut = delimiter ? name.indexOf(delimiter, prefix.length) : -1;
      if (cut >= 0) prefixes.add(name.slice(0, cut + delimiter!.length));
      else items.push(resource(bucket, objects.get(name)!));
    }
    sendJson(res, 200, {
      kind: "storage#objects",
      ...(next ? { nextPageToken: next } : {}),
      ...(prefixes.size ? { prefixes: [...prefixes] } : {}),
      // Like GCS, an empty page has no `items` at all.
      ...(items.length ? { items } : {}),
    });
  }

  async function upload(req: IncomingMessage, res: ServerResponse, bucket: string, query: URLSearchParams): Promise<void> {
    const objects = bucketOf(bucket);
    const type = query.get("uploadType");
    const body = await readBody(req);
    if (type === "media") {
      const name = query.get("name");
      if (!name) throw new HttpError(400, "Required parameter: name", "required");
      checkGeneration(query, objects.get(name));
      const object = store(bucket, name, body, {
        contentType: req.headers["content-type"],
        contentEncoding: query.get("contentEncoding") ?? undefined,
      });
      return sendJson(res, 200, resource(bucket, object));
    }
    if (type === "multipart") {
      const { metadata, media, mediaType } = parseMultipart(req.headers["content-type"], body);
      const name = query.get("name") ?? (metadata.name as string | undefined);
      if (!name) throw new HttpError(400, "Required parameter: name", "required");
      checkGeneration(query, objects.get(name));
      checkMd5(metadata.md5Hash, media);
      const object = store(bucket, name, media, {
        contentType: (metadata.contentType as string | undefined) ?? mediaType,
        contentEncoding: query.get("contentEncoding") ?? (metadata.contentEncoding as string | undefined),
      });
      return sendJson(res, 200, resource(bucket, object));
    }
    if (type === "resumable") {
      const metadata = body.length ? (JSON.parse(body.toString("utf8")) as Record<string, string>) : {};
      const name = query.get("name") ?? metadata.name;
      if (!name) throw new HttpError(400, "Required parameter: name", "required");
      checkGeneration(query, objects.get(name));
      const id = randomBytes(12).toString("hex");
      sessions.set(id, {
        bucket,
        name,
        contentType: String(req.headers["x-upload-content-type"] ?? metadata.contentType ?? ""),
        contentEncoding: query.get("contentEncoding") ?? metadata.contentEncoding,
        md5Hash: metadata.md5Hash,
        ifGenerationMatch: query.get("ifGenerationMatch") ?? undefined,
        chunks: [],
        persisted: 0,
      });
      const location = `${url}/upload/storage/v1/b/${bucket}/o?uploadType=resumable&name=${encodeURIComponent(name)}&upload_id=${id}`;
      res.writeHead(200, { Location: location, "Content-Length": 0 });
      res.end();
      return;
    }
    throw new HttpError(400, `Invalid uploadType: ${type}`, "invalidParameter");
  }

  async function resume(req: IncomingMessage, res: ServerResponse, query: URLSearchParams): Promise<void> {
    const session = sessions.get(query.get("upload_id") ?? "");
    const body = await readBody(req);
    if (!session) throw new HttpError(404, "No such upload session.", "notFound");
    if (session.result) return sendJson(res, 200, resource(session.bucket, session.result));
    const m = /^bytes (?:(\d+)-(\d+)|\*)\/(\d+|\*)$/.exec(String(req.headers["content-range"] ?? ""));
    if (!m) throw new HttpError(400, "Invalid Content-Range.", "invalid");
    const total = m[3] === "*" ? undefined : Number(m[3]);
    if (m[1] !== undefined) {
      const start = Number(m[1]);
      const end = Number(m[2]);
      if (end - start + 1 !== body.length) throw new HttpError(400, "Content-Range does not match the body length.", "invalid");
      if (start > session.persisted) {
        throw new HttpError(400, `Invalid request. There were ${session.persisted} byte(s) in the upload so far.`, "invalid");
      }
      let fresh = body.subarray(session.persisted - start);
      const final = total !== undefined && end + 1 === total;
      if (options.persistLimit !== undefined && fresh.length > options.persistLimit) {
        fresh = fresh.subarray(0, options.persistLimit);
      }
      // Non-final data is only persisted in whole 256 KiB units.
      if (!final || fresh.length < body.length - (session.persisted - start)) {
        fresh = fresh.subarray(0, fresh.length - (fresh.length % CHUNK_QUANTUM));
      }
      session.chunks.push(Buffer.from(fresh));
      session.persisted += fresh.length;
    }
    if (total !== undefined && session.persisted === total) {
      const data = Buffer.concat(session.chunks);
      checkMd5(session.md5Hash, data);
      const query = new URLSearchParams(session.ifGenerationMatch ? { ifGenerationMatch: session.ifGenerationMatch } : {});
      checkGeneration(query, bucketOf(session.bucket).get(session.name));
      session.result = store(session.bucket, session.name, data, session);
      return sendJson(res, 200, resource(session.bucket, session.result));
    }
    const headers: Record<string, string | number> = { "Content-Length": 0 };
    if (session.persisted > 0) headers.Range = `bytes=0-${session.persisted - 1}`;
    res.writeHead(308, headers);
    res.end();
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const parsed = new URL(req.url!, "http://x");
    const record: RequestRecord = { method: req.method!, path: parsed.pathname, query: parsed.searchParams, headers: req.headers };
    requests.push(record);
    const fault = options.fault?.(record, requests.length);
    if (fault?.kind === "reset") {
      req.socket.destroy();
      return;
    }
    if (fault?.kind === "status") {
      await readBody(req);
      throw new HttpError(fault.status, fault.status === 429 ? "The rate of change requests is too high." : "Backend Error", "backendError");
    }
    const query = parsed.searchParams;
    const m = /^\/(upload\/|download\/)?storage\/v1\/b\/([^/]+)\/o(?:\/(.+))?$/.exec(parsed.pathname);
    if (!m) throw new HttpError(404, `Not Found: ${parsed.pathname}`, "notFound");
    const [, kind, bucket, encodedName] = m;
    const name = encodedName === undefined ? undefined : decodeURIComponent(encodedName);
    const read = req.method === "GET";
    authorize(req, read);
    if (kind === "upload/") {
      if (req.method === "POST" && name === undefined) return upload(req, res, bucket, query);
      if (req.method === "PUT" && name === undefined) return resume(req, res, query);
    } else if (name === undefined) {
      if (req.method === "GET") return list(res, bucket, query);
    } else if (req.method === "GET") {
      if (kind === "download/" || query.get("alt") === "media") return download(req, res, bucket, name, fault);
      const object = bucketOf(bucket).get(name);
      if (!object) throw new HttpError(404, `No such object: ${bucket}/${name}`, "notFound");
      return sendJson(res, 200, resource(bucket, object));
    } else if (req.method === "DELETE") {
      const objects = bucketOf(bucket);
      const object = objects.get(name);
      if (!object) throw new HttpError(404, `No such object: ${bucket}/${name}`, "notFound");
      checkGeneration(query, object);
      objects.delete(name);
      res.writeHead(204);
      res.end();
      return;
    }
    throw new HttpError(405, `Method ${req.method} not allowed here`, "methodNotAllowed");
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (res.headersSent || res.destroyed) return;
      const status = error instanceof HttpError ? error.status : 500;
      const message = error instanceof Error ? error.message : String(error);
      const reason = error instanceof HttpError ? error.reason : "backendError";
      sendJson(res, status, { error: { code: status, message, errors: [{ message, domain: "global", reason }] } });
    });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    buckets,
    requests,
    put: (bucket, name, data, meta = {}) => store(bucket, name, data, meta),
    stop: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
