/**
 * Google Cloud Storage over its JSON API with plain HTTP (undici keep-alive pool), no SDK.
 *
 * Downloads send `Accept-Encoding: gzip`: without it GCS decompressively transcodes gzip-encoded
 * objects (serving decoded bytes, ignoring Range, and breaking the stored MD5), so we take the
 * stored bytes and let ObjectStore undo the encoding like every other store. Full reads are checked
 * against the MD5 in `x-goog-hash` (composite objects have only a CRC32C and are not checked).
 */
import { createHash } from "node:crypto";
import { promisify } from "node:util";
import { gunzip as gunzipCallback } from "node:zlib";
import { IntegrityError, InvalidKeyError, StoreError } from "../errors.js";
import type { Backend, BackendWriteOptions, ByteRange, Retrier, StoredObject } from "./backend.js";
import type { BufferPool } from "./buffer-pool.js";
import { GcsTransport, encodePart, headerValue, queryString, type Response, type TokenSource, type Where } from "./gcs-http.js";
import { CHUNK_QUANTUM, multipartUpload, resumableUpload } from "./gcs-upload.js";
import { checkLength } from "./http-errors.js";
import { ObjectStore, type StoreOptions } from "./object-store.js";
import { parseContentRange, rangeHeader, sliceRange } from "./range.js";
import type { ObjectInfo } from "./types.js";

export type { TokenSource } from "./gcs-http.js";

export const GCS_ENDPOINT = "https://storage.googleapis.com";

export interface GcsStoreOptions extends StoreOptions {
  bucket: string;
  /** Key prefix inside the bucket; the store is rooted there. */
  prefix?: string;
  /** OAuth2 access token, or a function returning a current one. Default: `GOOGLE_OAUTH_ACCESS_TOKEN`. */
  token?: TokenSource;
  /** Default `https://storage.googleapis.com`. */
  endpoint?: string;
  /** Send no credentials (public buckets). */
  anonymous?: boolean;
  /** Objects larger than this use a resumable upload. Default 8 MiB. */
  resumableThreshold?: number;
  /** Bytes per resumable PUT, rounded up to a multiple of 256 KiB. Default 16 MiB. */
  chunkSize?: number;
  /** Objects per listing page, 1–1000. Default 1000. */
  pageSize?: number;
  /** Check full reads against the object's MD5. Default true. */
  verifyMd5?: boolean;
}

const DEFAULT_CONCURRENCY = 32;
const gunzip = promisify(gunzipCallback);

interface ObjectResource {
  name: string;
  size: number;
  contentEncoding?: string;
  etag?: string;
  md5Hash?: string;
  updated?: Date;
}

function md5Base64(data: Uint8Array): string {
  return createHash("md5").update(data).digest("base64");
}

/** The values in `x-goog-hash: crc32c=...,md5=...` (possibly repeated headers). */
function googHashes(res: Response): Map<string, string> | undefined {
  const header = headerValue(res, "x-goog-hash");
  if (header === undefined) return undefined;
  const hashes = new Map<string, string>();
  for (const part of header.split(",")) {
    const eq = part.indexOf("=");
    if (eq > 0) hashes.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  return hashes;
}

function isIdentity(encoding: string | undefined): boolean {
  return encoding === undefined || encoding === "" || encoding.toLowerCase() === "identity";
}

export class GcsBackend implements Backend {
  readonly url: string;
  readonly defaultConcurrency = DEFAULT_CONCURRENCY;
  readonly bucket: string;
  readonly prefix: string;
  private readonly http: GcsTransport;
  private readonly resumableThreshold: number;
  private readonly chunkSize: number;
  private readonly pageSize: number;
  private readonly verifyMd5: boolean;

  constructor(options: GcsStoreOptions) {
    if (!options.bucket || /[/\s]/.test(options.bucket)) {
      throw new InvalidKeyError("gs://", options.bucket ?? "", "bucket name must be non-empty without '/' or spaces");
    }
    this.bucket = options.bucket;
    const prefix = (options.prefix ?? "").replace(/^\/+|\/+$/g, "");
    this.prefix = prefix ? `${prefix}/` : "";
    this.url = `gs://${this.bucket}${prefix ? `/${prefix}` : ""}`;
    const token = options.anonymous ? undefined : (options.token ?? (process.env.GOOGLE_OAUTH_ACCESS_TOKEN || undefined));
    const connections = options.concurrency ?? DEFAULT_CONCURRENCY;
    this.http = new GcsTransport(options.endpoint ?? GCS_ENDPOINT, connections, token);
    this.resumableThreshold = options.resumableThreshold ?? 8 * 1024 * 1024;
    const chunk = options.chunkSize ?? 16 * 1024 * 1024;
    this.chunkSize = Math.max(1, Math.ceil(chunk / CHUNK_QUANTUM)) * CHUNK_QUANTUM;
    this.pageSize = Math.min(1000, Math.max(1, options.pageSize ?? 1000));
    this.verifyMd5 = options.verifyMd5 ?? true;
  }

  /** GCS object names: 1–1024 bytes of UTF-8, no CR/LF, not "." or "..". */
  validateKey(key: string): void {
    const name = this.prefix + key;
    if (key === "") throw new InvalidKeyError(this.url, key, "empty key");
    if (/[\r\n]/.test(key)) throw new InvalidKeyError(this.url, key, "GCS object names cannot contain CR or LF");
    if (name === "." || name === "..") throw new InvalidKeyError(this.url, key, 'GCS object names cannot be "." or ".."');
    if (Buffer.byteLength(name, "utf8") > 1024) {
      throw new InvalidKeyError(this.url, key, "GCS object names are at most 1024 bytes of UTF-8");
    }
  }

  private objectPath(key: string): string {
    return `/storage/v1/b/${encodePart(this.bucket)}/o/${encodePart(this.prefix + key)}`;
  }

  private where(key: string, operation: string): Where {
    return { store: this.url, key, operation };
  }

  async read(key: string, range: ByteRange | undefined, signal?: AbortSignal, buffers?: BufferPool): Promise<StoredObject | undefined> {
    const where = this.where(key, range ? "getRange" : "get");
    if (range && ("suffixLength" in range ? range.suffixLength === 0 : range.length === 0)) {
      // No valid Range header asks for zero bytes; the answer only depends on existence.
      const info = await this.stat(key, signal);
      return info && { data: new Uint8Array(0), contentEncoding: info.contentEncoding };
    }
    const headers: Record<string, string> = { "accept-encoding": "gzip" };
    if (range) headers.range = rangeHeader(range);
    const res = await this.http.send("GET", `${this.objectPath(key)}?alt=media`, { headers, signal }, where);
    if (res.statusCode === 404) {
      await this.http.checkNotFound(res, where);
      return undefined;
    }
    if (res.statusCode === 416) {
      // Offset at or past the end: like a file, the bytes that exist there are none.
      await this.http.discard(res);
      return { data: new Uint8Array(0) };
    }
    if (res.statusCode !== 200 && res.statusCode !== 206) throw await this.http.failure(res, where);

    const announced = Number(headerValue(res, "content-length"));
    let data = Number.isSafeInteger(announced) && announced >= 0
      ? await this.http.bytesOfLength(res, announced, where, signal, buffers)
      : await this.http.bytes(res, where, signal);
    checkLength(data, res.headers["content-length"], where);
    let encoding = headerValue(res, "content-encoding");
    const stored = headerValue(res, "x-goog-stored-content-encoding");
    if (stored !== undefined && isIdentity(stored) && !isIdentity(encoding)) {
      // Stored plain but compressed on the way (a front end honouring our Accept-Encoding): that is
      // transport, not the object's encoding, so undo it here and hand on the stored bytes.
      const storedLength = Number(headerValue(res, "x-goog-stored-content-length"));
      data = await this.undoTransportGzip(data, encoding!, storedLength, where);
      encoding = undefined;
    }
    // Served decoded although stored encoded: something between us and GCS dropped Accept-Encoding.
    const transcoded = !isIdentity(stored) && isIdentity(encoding);

    if (res.statusCode === 206) {
      if (!range) throw new IntegrityError("206 Partial Content for a request without a Range", { ...where, status: 206 });
      this.checkContentRange(res, data, range, where);
    } else {
      if (transcoded && range) {
        throw new StoreError(
          `object is stored with Content-Encoding ${stored} and was served decoded (transcoded), so the Range was ` +
            `ignored; read it whole, or make sure Accept-Encoding: gzip reaches GCS`,
          { ...where, status: 200 },
        );
      }
      if (!transcoded) await this.checkMd5(res, data, key, signal, where);
      // A 200 to a range request carries the whole object (checked above): cut the range out here.
      if (range) data = sliceRange(data, range);
    }
    return { data, contentEncoding: transcoded || isIdentity(encoding) ? undefined : encoding };
  }

  /** Decodes at most the object's stored size: a response cannot be larger than the object. */
  private async undoTransportGzip(data: Uint8Array, encoding: string, limit: number, where: Where): Promise<Uint8Array> {
    if (encoding.toLowerCase() !== "gzip") {
      throw new StoreError(`response compressed with ${encoding}, which was not asked for`, where);
    }
    try {
      const maxOutputLength = Number.isSafeInteger(limit) && limit >= 0 ? Math.max(1, limit) : undefined;
      return new Uint8Array(await gunzip(data, maxOutputLength ? { maxOutputLength } : {}));
    } catch (cause) {
      throw new IntegrityError("gzip-compressed response does not decode", { ...where, cause });
    }
  }

  /** A 206 must describe exactly the bytes we asked for, and carry that many. */
  private checkContentRange(res: Response, data: Uint8Array, range: ByteRange, where: Where): void {
    const cr = parseContentRange(headerValue(res, "content-range"));
    const fail = (why: string) =>
      new IntegrityError(`${why} (Content-Range ${headerValue(res, "content-range") ?? "missing"})`, { ...where, status: 206 });
    if (!cr) throw fail("206 without a valid Content-Range");
    if (data.length !== cr.end - cr.start + 1) throw fail(`body of ${data.length} bytes does not match the range`);
    if ("suffixLength" in range) {
      if (cr.total !== undefined && (cr.end !== cr.total - 1 || cr.start !== Math.max(0, cr.total - range.suffixLength))) {
        throw fail(`not the last ${range.suffixLength} bytes`);
      }
    } else {
      if (cr.start !== range.offset) throw fail(`range starts at ${cr.start}, asked for ${range.offset}`);
      if (range.length !== undefined && cr.end > range.offset + range.length - 1) throw fail("range longer than asked for");
    }
  }

  private async checkMd5(res: Response, data: Uint8Array, key: string, signal: AbortSignal | undefined, where: Where) {
    if (!this.verifyMd5) return;
    const hashes = googHashes(res);
    let expected = hashes?.get("md5");
    if (hashes === undefined) {
      // No x-goog-hash at all (a proxy stripped it?): ask for the metadata of the generation we got.
      const generation = headerValue(res, "x-goog-generation");
      expected = (await this.resource(key, signal, where, generation))?.md5Hash;
    }
    if (expected === undefined) return; // composite objects carry only a CRC32C
    const actual = md5Base64(data);
    if (actual !== expected) {
      throw new IntegrityError(`MD5 mismatch: object has ${expected}, received bytes hash to ${actual}`, where);
    }
  }

  async write(key: string, data: Uint8Array, options: BackendWriteOptions): Promise<void> {
    const where = this.where(key, "set");
    const target = { bucket: this.bucket, name: this.prefix + key };
    if (data.length > this.resumableThreshold) {
      return resumableUpload(this.http, target, data, options, this.chunkSize, where);
    }
    return multipartUpload(this.http, target, data, options, where);
  }

  async remove(key: string, signal?: AbortSignal): Promise<void> {
    const where = this.where(key, "delete");
    const res = await this.http.send("DELETE", this.objectPath(key), { signal }, where);
    if (res.statusCode === 404) return this.http.checkNotFound(res, where);
    if (res.statusCode !== 204 && res.statusCode !== 200) throw await this.http.failure(res, where);
    await this.http.discard(res);
  }

  async stat(key: string, signal?: AbortSignal): Promise<ObjectInfo | undefined> {
    const resource = await this.resource(key, signal, this.where(key, "head"));
    return resource && this.info(resource);
  }

  private async resource(
    key: string,
    signal: AbortSignal | undefined,
    where: Where,
    generation?: string,
  ): Promise<ObjectResource | undefined> {
    const res = await this.http.send("GET", this.objectPath(key) + queryString({ generation }), { signal }, where);
    if (res.statusCode === 404) {
      await this.http.checkNotFound(res, where);
      return undefined;
    }
    if (res.statusCode !== 200) throw await this.http.failure(res, where);
    return parseResource(await this.http.json(res, where, signal), where);
  }

  async *list(prefix: string, options: { signal?: AbortSignal; retry: Retrier }): AsyncIterable<ObjectInfo> {
    const where = this.where(prefix, "list");
    let pageToken: string | undefined;
    do {
      const token = pageToken;
      const page = await options.retry(async () => {
        const path =
          `/storage/v1/b/${encodePart(this.bucket)}/o` +
          queryString({
            prefix: this.prefix + prefix || undefined,
            pageToken: token,
            maxResults: this.pageSize,
            fields: "items(name,size,contentEncoding,etag,md5Hash,updated),nextPageToken",
          });
        const res = await this.http.send("GET", path, { signal: options.signal }, where);
        if (res.statusCode !== 200) throw await this.http.failure(res, where);
        return this.http.json(res, where, options.signal);
      });
      const items = page.items ?? [];
      if (!Array.isArray(items)) throw new StoreError("listing page has a non-array `items`", where);
      for (const item of items) {
        const resource = parseResource(item, where);
        if (!resource.name.startsWith(this.prefix)) {
          throw new StoreError(`listing returned "${resource.name}" outside prefix "${this.prefix}"`, where);
        }
        yield this.info(resource);
      }
      if (page.nextPageToken !== undefined && typeof page.nextPageToken !== "string") {
        throw new StoreError("listing page has a non-string nextPageToken", where);
      }
      if (page.nextPageToken !== undefined && page.nextPageToken === token) {
        throw new StoreError("listing returned the same page token twice", where);
      }
      pageToken = page.nextPageToken || undefined;
    } while (pageToken);
  }

  private info(resource: ObjectResource): ObjectInfo {
    return {
      key: resource.name.slice(this.prefix.length),
      size: resource.size,
      contentEncoding: resource.contentEncoding,
      etag: resource.etag,
      lastModified: resource.updated,
    };
  }

  close(): Promise<void> {
    return this.http.close();
  }
}

/** Checks the fields we rely on in an object resource (sizes are decimal strings in the JSON API). */
function parseResource(value: unknown, where: Where): ObjectResource {
  const o = value as Record<string, unknown> | null;
  if (typeof o !== "object" || o === null || typeof o.name !== "string") {
    throw new StoreError("object resource without a name", where);
  }
  const size = typeof o.size === "string" && /^\d+$/.test(o.size) ? Number(o.size) : NaN;
  if (!Number.isSafeInteger(size)) throw new StoreError(`object resource "${o.name}" has an invalid size`, where);
  const text = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
  const updated = text(o.updated) ? new Date(o.updated as string) : undefined;
  return {
    name: o.name,
    size,
    contentEncoding: text(o.contentEncoding),
    etag: text(o.etag),
    md5Hash: text(o.md5Hash),
    updated: updated && !Number.isNaN(updated.getTime()) ? updated : undefined,
  };
}

export class GcsStore extends ObjectStore {
  constructor(options: GcsStoreOptions) {
    super(new GcsBackend(options), options);
  }
}
