/**
 * Read-mostly store over plain HTTP(S): GET/HEAD with byte ranges, optional PUT/DELETE (WebDAV-ish
 * servers such as nginx with the dav module). No listing: HTTP has no standard for it.
 *
 * undici's keep-alive `Pool` rather than Node's fetch, because fetch silently decompresses: the
 * store must see the stored bytes and their Content-Encoding so ObjectStore can decide what to do
 * (undo it for whole objects, refuse ranges of compressed objects, pass it through with `raw`).
 * undici itself loads on the first request (deps-lazy.ts), so the constructor stays synchronous.
 */
import type { Dispatcher, Pool } from "undici";
import { ConflictError, IntegrityError, StoreError, UnsupportedFeatureError } from "../errors.js";
import type { Backend, BackendWriteOptions, ByteRange, StoredObject, StoredRanges } from "./backend.js";
import type { BufferPool } from "./buffer-pool.js";
import { loadFailure, loadUndici, OnFirstUse } from "./deps-lazy.js";
import { checkLength, networkError, statusError } from "./http-errors.js";
import { BodyFailed, collect, collectInto, discard, excerpt, header, readMultiPartial, sliceWholeRanges, type Where } from "./http-body.js";
import type { RequestedRange } from "./multipart.js";
import { ObjectStore, type StoreOptions } from "./object-store.js";
import { parseContentRange, rangeHeader } from "./range.js";
import type { ObjectInfo } from "./types.js";

export interface HttpStoreOptions extends StoreOptions {
  /** Sent with every request (e.g. an API token header). */
  headers?: Record<string, string>;
  /** HTTP basic auth; credentials in the URL (`https://user:pass@host/`) work too. */
  auth?: { username: string; password: string };
  /** Keep-alive connections in the pool; capped at the store's concurrency. */
  connections?: number;
  /**
   * Ask for compressed representations (`Accept-Encoding: gzip, br, zstd`). Either way the
   * Content-Encoding the server sends is handed to ObjectStore, which undoes it.
   */
  acceptCompressed?: boolean;
  /**
   * The server stores the Content-Encoding of a PUT and returns it on GET. Without it compressed
   * writes are refused (UnsupportedFeatureError), since they would read back as opaque bytes.
   */
  keepsContentEncoding?: boolean;
  /**
   * Read several ranges of an object in one GET (`Range: bytes=a-b,c-d`, answered as
   * multipart/byteranges). Default true; servers that ignore it answer 200 and are sliced.
   */
  multiRange?: boolean;
  /** Ranges per multi-range GET (default 128). */
  maxRangesPerRequest?: number;
}

const DEFAULT_CONCURRENCY = 32;
const DEFAULT_RANGES_PER_REQUEST = 128;

/** Each key segment percent-encoded; `/` stays the separator. */
function encodeKey(key: string): string {
  return key.split("/").map(encodeURIComponent).join("/");
}

export class HttpBackend implements Backend {
  readonly url: string;
  readonly defaultConcurrency = DEFAULT_CONCURRENCY;
  readonly maxRangesPerRequest: number;
  readonly readRanges?: Backend["readRanges"];
  /** Created, with undici loaded, on the first request. */
  private readonly pool: OnFirstUse<Pool>;
  private readonly basePath: string;
  private readonly headers: Record<string, string>;
  private readonly keepsContentEncoding: boolean;

  constructor(baseUrl: string, options: HttpStoreOptions = {}) {
    const url = new URL(baseUrl);
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new UnsupportedFeatureError(`protocol ${url.protocol}`, baseUrl, "HttpStore speaks http: and https:");
    }
    const auth =
      options.auth ??
      (url.username
        ? { username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) }
        : undefined);
    url.username = "";
    url.password = "";
    this.basePath = url.pathname.replace(/\/+$/, "");
    this.url = `${url.origin}${this.basePath}`;
    this.headers = { ...options.headers };
    this.keepsContentEncoding = options.keepsContentEncoding ?? false;
    if (auth) {
      this.headers.authorization =
        "Basic " + Buffer.from(`${auth.username}:${auth.password}`).toString("base64");
    }
    this.headers["accept-encoding"] = options.acceptCompressed ? "gzip, br, zstd" : "identity";
    const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
    // Never more sockets than requests we allow in flight: a server sees at most `concurrency`.
    const connections = Math.max(1, Math.min(options.connections ?? concurrency, concurrency));
    this.pool = new OnFirstUse(async () => {
      const { Pool } = await loadUndici();
      return new Pool(url.origin, { connections, pipelining: 1, keepAliveTimeout: 30_000 });
    });
    this.maxRangesPerRequest = Math.max(1, options.maxRangesPerRequest ?? DEFAULT_RANGES_PER_REQUEST);
    if (options.multiRange !== false) this.readRanges = (key, ranges, signal) => this.readMulti(key, ranges, signal);
  }

  private path(key: string): string {
    return `${this.basePath}/${encodeKey(key)}`;
  }

  /** The keep-alive pool; a failure to load undici is a StoreError at `where`. */
  private async connect(where: Where): Promise<Pool> {
    try {
      return await this.pool.get();
    } catch (error) {
      throw loadFailure(error, where);
    }
  }

  private async request(
    where: Where,
    options: Omit<Dispatcher.RequestOptions, "path" | "origin">,
  ): Promise<Dispatcher.ResponseData> {
    const pool = await this.connect(where);
    try {
      return await pool.request({
        ...options,
        path: this.path(where.key),
        headers: { ...this.headers, ...(options.headers as Record<string, string> | undefined) },
      });
    } catch (error) {
      throw networkError(error, where, options.signal as AbortSignal | undefined);
    }
  }

  async read(key: string, range: ByteRange | undefined, signal?: AbortSignal, buffers?: BufferPool): Promise<StoredObject | undefined> {
    const where = { store: this.url, key, operation: range ? "getRange" : "get" };
    // `bytes=5-4` is not a valid Range header; an empty range only needs to know the object exists.
    if (range && "length" in range && range.length === 0) {
      return (await this.stat(key, signal)) ? { data: new Uint8Array(0) } : undefined;
    }
    const response = await this.request(where, {
      method: "GET",
      headers: range ? { range: rangeHeader(range) } : undefined,
      signal,
    });
    const { statusCode, headers, body } = response;
    try {
      if (statusCode === 404) {
        await body.dump();
        return undefined;
      }
      // 416: the range starts at or past the end of a (present) object.
      if (statusCode === 416 && range) {
        await body.dump();
        return { data: new Uint8Array(0) };
      }
      if (statusCode !== 200 && statusCode !== 206) throw statusError(statusCode, where, await excerpt(body));
      if (statusCode === 206 && !range) {
        throw new StoreError("206 Partial Content for a request without Range; refusing a part as the whole", {
          ...where,
          status: 206,
        });
      }
      const encoding = header(headers, "content-encoding");
      const contentEncoding = encoding && encoding !== "identity" ? encoding : undefined;
      const data =
        statusCode === 206 && range
          ? await this.readPartial(where, range, headers, body, buffers)
          : await this.readWhole(where, range, headers, body);
      return { data, contentEncoding };
    } catch (error) {
      discard(body);
      const announced = Number(header(headers, "content-length"));
      if (error instanceof BodyFailed && !signal?.aborted && error.received < announced) {
        // Cut short, however the socket reported it: bytes were lost on the way.
        throw new IntegrityError(`short body: connection ended after ${error.received} of ${announced} bytes`, {
          ...where,
          cause: error.cause,
        });
      }
      throw networkError(error instanceof BodyFailed ? error.cause : error, where, signal);
    }
  }

  /** A 206: the Content-Range must be the one asked for, and the body as long as it says. */
  private async readPartial(
    where: Where,
    range: ByteRange,
    headers: Dispatcher.ResponseData["headers"],
    body: Dispatcher.ResponseData["body"],
    buffers: BufferPool | undefined,
  ): Promise<Uint8Array> {
    const contentRange = header(headers, "content-range");
    const served = parseContentRange(contentRange);
    if (!served) {
      throw new StoreError(`206 response with missing or unsupported Content-Range "${contentRange ?? ""}"`, where);
    }
    const total = served.total;
    let start: number;
    let end: number | undefined; // inclusive, when it can be known
    if ("suffixLength" in range) {
      start = total === undefined ? served.start : Math.max(0, total - range.suffixLength);
      end = total === undefined ? undefined : total - 1;
    } else {
      start = range.offset;
      const wanted = range.length === undefined ? undefined : range.offset + range.length - 1;
      end = total === undefined ? wanted : Math.min(wanted ?? total - 1, total - 1);
    }
    if (served.start !== start || (end !== undefined && served.end !== end) || served.end < served.start) {
      throw new StoreError(
        `server answered ${contentRange} to ${rangeHeader(range)}; refusing bytes that are not the range asked for`,
        where,
      );
    }
    const expected = served.end - served.start + 1;
    // At most the announced span is kept, whatever the body tries to send. A span checked against
    // the request is allocated up front; one only the server vouches for (a suffix of an object of
    // unknown size) grows with what arrives.
    const { data, received } =
      end !== undefined
        ? await collectInto(body, expected, buffers)
        : await collect(body, 0, expected + 1).then((d) => ({ data: d.subarray(0, expected), received: d.length }));
    if (received <= expected) checkLength(data, header(headers, "content-length"), where);
    if (received !== expected) {
      const sent = received > expected ? `more than ${expected}` : `${received}`;
      throw new IntegrityError(`body has ${sent} bytes, Content-Range ${contentRange} says ${expected}`, where);
    }
    return data;
  }

  /**
   * A 200. For a range request the server ignored Range (legal: RFC 9110 §14.2), and the body is
   * the whole object: it is cut to the range while streaming, and the download stops once the
   * range is complete. Only a complete body is checked against Content-Length.
   */
  private async readWhole(
    where: Where,
    range: ByteRange | undefined,
    headers: Dispatcher.ResponseData["headers"],
    body: Dispatcher.ResponseData["body"],
  ): Promise<Uint8Array> {
    const contentLength = header(headers, "content-length");
    if (!range) {
      const data = await collect(body);
      checkLength(data, contentLength, where);
      return data;
    }
    const size = contentLength === undefined ? undefined : Number(contentLength);
    if ("suffixLength" in range) {
      // Where the last N bytes start is only known at EOF, so this case buffers the whole body.
      const data = await collect(body);
      checkLength(data, contentLength, where);
      return data.subarray(Math.max(0, data.length - range.suffixLength));
    }
    const end = range.length === undefined ? undefined : range.offset + range.length;
    const data = await collect(body, range.offset, end);
    // The part we kept must be all the object has there; a body cut short is not a short object.
    if (size !== undefined && Number.isSafeInteger(size)) {
      const available = Math.max(0, Math.min(end ?? size, size) - range.offset);
      if (data.length !== available) {
        throw new IntegrityError(`body ended after ${data.length} of ${available} bytes of the range`, where);
      }
    }
    return data;
  }

  /**
   * One GET for several ranges. The answer may be multipart/byteranges, a single 206 part (a
   * server may merge ranges), 416 (all past the end) or 200 (Range ignored); each is checked
   * against the ranges asked for, and no answer is read past what those ranges can weigh.
   */
  private async readMulti(key: string, ranges: readonly RequestedRange[], signal?: AbortSignal): Promise<StoredRanges | undefined> {
    const where = { store: this.url, key, operation: "getRanges" };
    const wanted = ranges.filter((r) => r.length > 0);
    if (wanted.length === 0) {
      return (await this.stat(key, signal)) ? { parts: ranges.map(() => new Uint8Array(0)) } : undefined;
    }
    const spec = wanted.map((r) => `${r.offset}-${r.offset + r.length - 1}`).join(",");
    const { statusCode, headers, body } = await this.request(where, { method: "GET", headers: { range: `bytes=${spec}` }, signal });
    try {
      if (statusCode === 404) {
        await body.dump();
        return undefined;
      }
      if (statusCode === 416) {
        await body.dump();
        return { parts: ranges.map(() => new Uint8Array(0)) };
      }
      if (statusCode !== 200 && statusCode !== 206) throw statusError(statusCode, where, await excerpt(body));
      const encoding = header(headers, "content-encoding");
      const contentEncoding = encoding && encoding !== "identity" ? encoding : undefined;
      const parts =
        statusCode === 200
          ? await sliceWholeRanges(where, ranges, headers, body)
          : await readMultiPartial(where, ranges, headers, body);
      return { parts, contentEncoding };
    } catch (error) {
      discard(body);
      if (error instanceof BodyFailed && !signal?.aborted && error.received < Number(header(headers, "content-length"))) {
        throw new IntegrityError(`short body: connection ended after ${error.received} bytes`, { ...where, cause: error.cause });
      }
      throw networkError(error instanceof BodyFailed ? error.cause : error, where, signal);
    }
  }

  async write(key: string, data: Uint8Array, options: BackendWriteOptions): Promise<void> {
    const where = { store: this.url, key, operation: "set" };
    if (options.contentEncoding && !this.keepsContentEncoding) {
      // A plain PUT server (nginx dav) stores the bytes and drops the header: the object would
      // read back as compressed bytes with nothing saying so.
      throw new UnsupportedFeatureError(
        `compressed writes (Content-Encoding ${options.contentEncoding})`,
        `${this.url} key "${key}"`,
        "plain HTTP servers do not keep Content-Encoding; write with {compress: null}, or pass " +
          "{keepsContentEncoding: true} if this server stores and returns it",
      );
    }
    const headers: Record<string, string> = {
      "content-type": options.contentType ?? "application/octet-stream",
      "content-length": String(data.length),
    };
    if (options.contentEncoding) headers["content-encoding"] = options.contentEncoding;
    if (options.ifNoneMatch) {
      // Many servers (nginx dav among them) ignore If-None-Match on PUT, so look first; the
      // header still protects on servers that honour it, and the status tells us if one did not.
      if (await this.stat(key, options.signal)) throw new ConflictError("object already exists", { ...where, status: 412 });
      headers["if-none-match"] = options.ifNoneMatch;
    }
    const { statusCode, body } = await this.request(where, {
      method: "PUT",
      headers,
      body: data,
      signal: options.signal,
    });
    if (statusCode >= 200 && statusCode < 300) {
      await body.dump();
      // 201 Created is the only answer that means nothing was replaced (RFC 9110 §9.3.4).
      if (options.ifNoneMatch && statusCode !== 201) {
        throw new StoreError(
          `create-only write answered ${statusCode}, not 201: the server ignored If-None-Match and replaced an ` +
            "object another writer created in the meantime",
          { ...where, status: statusCode },
        );
      }
      return;
    }
    const detail = await excerpt(body);
    if (statusCode === 412) throw new ConflictError("object already exists", { ...where, status: 412 });
    throw statusError(statusCode === 501 ? 405 : statusCode, where, statusCode === 405 ? undefined : detail);
  }

  async remove(key: string, signal?: AbortSignal): Promise<void> {
    const where = { store: this.url, key, operation: "delete" };
    const { statusCode, body } = await this.request(where, { method: "DELETE", signal });
    if ((statusCode >= 200 && statusCode < 300) || statusCode === 404) {
      await body.dump();
      return;
    }
    throw statusError(statusCode === 501 ? 405 : statusCode, where, await excerpt(body));
  }

  async stat(key: string, signal?: AbortSignal): Promise<ObjectInfo | undefined> {
    const where = { store: this.url, key, operation: "head" };
    const { statusCode, headers, body } = await this.request(where, { method: "HEAD", signal });
    await body.dump();
    if (statusCode === 404) return undefined;
    if (statusCode !== 200) throw statusError(statusCode, where);
    const size = Number(header(headers, "content-length"));
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new StoreError("HEAD response has no usable Content-Length", where);
    }
    const encoding = header(headers, "content-encoding");
    const modified = header(headers, "last-modified");
    return {
      key,
      size,
      contentEncoding: encoding && encoding !== "identity" ? encoding : undefined,
      etag: header(headers, "etag"),
      lastModified: modified ? new Date(modified) : undefined,
    };
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    throw new UnsupportedFeatureError(
      "listing",
      `${this.url} (prefix "${prefix}")`,
      "plain HTTP has no listing API; list the files where they are written (LocalStore, S3Store) or use a reference set",
    );
  }

  async close(): Promise<void> {
    // A later request opens a new pool, as a fresh store would.
    await (await this.pool.take())?.close();
  }
}

/** A store over an HTTP(S) base URL; objects are `<baseUrl>/<key>`. */
export class HttpStore extends ObjectStore {
  constructor(baseUrl: string, options: HttpStoreOptions = {}) {
    super(new HttpBackend(baseUrl, options), options);
  }
}
