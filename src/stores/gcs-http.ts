/**
 * One HTTP conversation with the GCS JSON API: a keep-alive undici Pool for the endpoint, the
 * bearer token, object-name encoding, and turning GCS error bodies into StoreErrors. undici's
 * `request` (not `fetch`) so nothing decompresses behind our back. undici loads on the first
 * request (deps-lazy.ts), so a GcsStore is constructed synchronously.
 */
import type { Dispatcher, Pool } from "undici";
import { ConflictError, IntegrityError, StoreError, type StoreErrorDetails } from "../errors.js";
import { loadFailure, loadUndici, OnFirstUse } from "./deps-lazy.js";
import type { BufferPool } from "./buffer-pool.js";
import { BodyFailed, collectInto, discard } from "./http-body.js";
import { networkError, statusError } from "./http-errors.js";

export type Where = Pick<StoreErrorDetails, "store" | "key" | "operation">;
export type Response = Dispatcher.ResponseData;

/** A token, or a function returning a fresh one (called per request, so it may cache and refresh). */
export type TokenSource = string | (() => string | Promise<string>);

/** undici and the keep-alive pool to the endpoint. */
interface Connection {
  undici: typeof import("undici");
  pool: Pool;
}

/** Largest JSON body we accept (a 1000-item listing page is ~1 MB). */
const MAX_JSON_BYTES = 32 * 1024 * 1024;
/** How much of an error body we read to quote the service's own words. */
const MAX_ERROR_BYTES = 8 * 1024;

/**
 * Percent-encodes a path segment or query value. `encodeURIComponent` leaves `!'()*` alone, which
 * Google's docs list among the characters to encode in object names.
 */
export function encodePart(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export function queryString(params: Record<string, string | number | undefined>): string {
  const parts = Object.entries(params)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${encodePart(String(v))}`);
  return parts.length ? `?${parts.join("&")}` : "";
}

export function headerValue(res: Response, name: string): string | undefined {
  const value = res.headers[name];
  return Array.isArray(value) ? value.join(",") : value;
}

export interface SendOptions {
  headers?: Record<string, string>;
  body?: Uint8Array | string;
  signal?: AbortSignal;
}

export class GcsTransport {
  readonly origin: string;
  /** Path of the endpoint (usually empty), prepended to every API path. */
  private readonly basePath: string;
  /** undici and the keep-alive pool, created on the first request. */
  private readonly connection: OnFirstUse<Connection>;

  constructor(
    endpoint: string,
    connections: number,
    private readonly token: TokenSource | undefined,
  ) {
    const url = new URL(endpoint);
    this.origin = url.origin;
    this.basePath = url.pathname.replace(/\/+$/, "");
    this.connection = new OnFirstUse(async () => {
      const undici = await loadUndici();
      return { undici, pool: new undici.Pool(this.origin, { connections, keepAliveTimeout: 10_000 }) };
    });
  }

  /** A failure to load undici is a StoreError at `where`. */
  private async connect(where: Where): Promise<Connection> {
    try {
      return await this.connection.get();
    } catch (error) {
      throw loadFailure(error, where);
    }
  }

  /**
   * Sends one request. `target` is an API path (`/storage/v1/...`) or an absolute URL (a
   * resumable session URI); URLs on another origin go through undici's global dispatcher.
   */
  async send(method: Dispatcher.HttpMethod, target: string, options: SendOptions, where: Where): Promise<Response> {
    const headers: Record<string, string> = { ...options.headers };
    if (this.token !== undefined) {
      let token: string;
      try {
        token = typeof this.token === "string" ? this.token : await this.token();
      } catch (cause) {
        throw new StoreError("could not get an access token from the token function", { ...where, cause });
      }
      headers.authorization = `Bearer ${token}`;
    }
    const { undici, pool } = await this.connect(where);
    try {
      if (/^https?:\/\//i.test(target)) {
        const url = new URL(target);
        if (url.origin !== this.origin) {
          return await undici.request(url, { method, headers, body: options.body, signal: options.signal });
        }
        target = url.pathname + url.search;
      } else {
        target = this.basePath + target;
      }
      return await pool.request({ origin: this.origin, path: target, method, headers, body: options.body, signal: options.signal });
    } catch (error) {
      throw networkError(error, where, options.signal);
    }
  }

  /** Reads a response body, turning transport failures mid-body into retryable StoreErrors. */
  async bytes(res: Response, where: Where, signal?: AbortSignal): Promise<Uint8Array> {
    try {
      return new Uint8Array(await res.body.arrayBuffer());
    } catch (error) {
      throw networkError(error, where, signal);
    }
  }

  /**
   * A body of announced length, copied chunk by chunk into one buffer (from `buffers` when given)
   * instead of gathered and joined. A body longer than announced is an IntegrityError; a shorter one
   * comes back short, for the caller's Content-Length check to name.
   */
  async bytesOfLength(res: Response, length: number, where: Where, signal?: AbortSignal, buffers?: BufferPool): Promise<Uint8Array> {
    let got: { data: Uint8Array; received: number };
    try {
      got = await collectInto(res.body, length, buffers);
    } catch (error) {
      discard(res.body); // an allocation that failed left the body unread: free the connection
      throw networkError(error instanceof BodyFailed ? error.cause : error, where, signal);
    }
    if (got.received > length) throw new IntegrityError(`long body: more than the ${length} bytes Content-Length announced`, where);
    return got.data;
  }

  async json(res: Response, where: Where, signal?: AbortSignal): Promise<Record<string, unknown>> {
    const announced = Number(headerValue(res, "content-length"));
    if (announced > MAX_JSON_BYTES) {
      res.body.destroy();
      throw new StoreError(`JSON response of ${announced} bytes exceeds the ${MAX_JSON_BYTES}-byte limit`, where);
    }
    const data = await this.bytes(res, where, signal);
    if (data.length > MAX_JSON_BYTES) {
      throw new StoreError(`JSON response of ${data.length} bytes exceeds the ${MAX_JSON_BYTES}-byte limit`, where);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder().decode(data));
    } catch (cause) {
      throw new StoreError("malformed JSON in the response", { ...where, status: res.statusCode, cause });
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new StoreError("expected a JSON object in the response", { ...where, status: res.statusCode });
    }
    return parsed as Record<string, unknown>;
  }

  /** The service's own words from an error body (`{error: {message}}` or a short text), bounded. */
  async errorDetail(res: Response): Promise<string | undefined> {
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        chunks.push(chunk);
        size += chunk.length;
        if (size >= MAX_ERROR_BYTES) break;
      }
    } catch {
      // The status already says what went wrong; a broken error body adds nothing.
    } finally {
      res.body.destroy();
    }
    const text = Buffer.concat(chunks).subarray(0, MAX_ERROR_BYTES).toString("utf8").trim();
    if (!text) return undefined;
    try {
      const message = (JSON.parse(text) as { error?: { message?: unknown } }).error?.message;
      if (typeof message === "string") return message;
    } catch {
      // Not JSON: quote the text.
    }
    return text.length > 200 ? `${text.slice(0, 200)}…` : text;
  }

  /**
   * The error for an unexpected status. 412 is a lost precondition (create-only), and a 400 about
   * a mismatched MD5 means bytes were damaged on the way up: worth another attempt.
   */
  async failure(res: Response, where: Where): Promise<StoreError> {
    const detail = await this.errorDetail(res);
    if (res.statusCode === 412) {
      return new ConflictError(`object already exists or changed (precondition failed)${detail ? `: ${detail}` : ""}`, {
        ...where,
        status: 412,
      });
    }
    if (res.statusCode === 400 && detail && /MD5|hash/i.test(detail)) {
      return new IntegrityError(`upload damaged in transit: ${detail}`, { ...where, status: 400 });
    }
    return statusError(res.statusCode, where, detail);
  }

  /**
   * A 404 means "no such object" — unless GCS says the bucket itself is missing, which is a
   * configuration failure and must not be reported as a missing key.
   */
  async checkNotFound(res: Response, where: Where): Promise<void> {
    const detail = await this.errorDetail(res);
    if (detail && /bucket does not exist/i.test(detail)) {
      throw new StoreError(`bucket does not exist: ${detail}`, { ...where, status: 404 });
    }
  }

  async discard(res: Response): Promise<void> {
    try {
      await res.body.dump();
    } catch {
      // Nothing to keep from it.
    }
  }

  async close(): Promise<void> {
    // A later request opens a new pool, as a fresh store would.
    await (await this.connection.take())?.pool.close();
  }
}
