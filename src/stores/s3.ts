/**
 * Amazon S3 and S3-compatible services (MinIO, Ceph, s3rver, ...) through `@aws-sdk/client-s3`.
 *
 * The SDK client (s3-client.ts) stays out of the ObjectStore's way: no SDK retries, checksums only
 * where required, one keep-alive agent sized to the store's concurrency. Integrity is ours:
 * Content-Length on every body, the MD5 in the ETag on whole-object reads, Content-MD5 on every
 * write and every multipart part.
 *
 * The SDK is loaded on a store's first request, not when this module is imported (see
 * deps-lazy.ts): constructing an S3Store, or opening an `s3://` URL, stays synchronous and cheap.
 *
 * Create-only writes send `If-None-Match: *`. S3 (since 2024) and most modern servers honour it;
 * servers that ignore it (s3rver does) silently overwrite, so create-only is only guaranteed where
 * the server supports conditional writes.
 */
import type { GetObjectCommandOutput, S3Client } from "@aws-sdk/client-s3";
import { InvalidKeyError, StoreError } from "../errors.js";
import type { Backend, BackendWriteOptions, ByteRange, Retrier, StoredObject } from "./backend.js";
import type { BufferPool } from "./buffer-pool.js";
import { ObjectStore, type StoreOptions } from "./object-store.js";
import { rangeHeader } from "./range.js";
import { loadFailure, loadS3Sdk, OnFirstUse } from "./deps-lazy.js";
import type { S3ClientSettings } from "./s3-client.js";
import { asBodyStream, readBody } from "./s3-body.js";
import { codeOf, s3Error, statusOf } from "./s3-errors.js";
import { md5OfObject, resolveRange, type ResolvedRange } from "./s3-range.js";
import type { ObjectInfo } from "./types.js";

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface S3Options {
  bucket: string;
  /** Key prefix all keys live under, like a directory: `data/run1` stores `k` at `data/run1/k`. */
  prefix?: string;
  /**
   * Default: `AWS_REGION`, then `AWS_DEFAULT_REGION`, then "us-east-1". A bucket elsewhere still
   * works on AWS: its 301 names the right region and the request is re-sent there.
   */
  region?: string;
  /** For S3-compatible services: `http://127.0.0.1:9000`. */
  endpoint?: string;
  /** Path-style URLs (`endpoint/bucket/key`), which most S3-compatible services need. */
  forcePathStyle?: boolean;
  /** Explicit credentials; otherwise the SDK's default chain (env, shared config/profile, SSO, IMDS...). */
  credentials?: S3Credentials;
  /** Named profile from ~/.aws/config and ~/.aws/credentials. */
  profile?: string;
  /** Unsigned requests, for public buckets; no credentials are looked up. */
  anonymous?: boolean;
  /**
   * Objects of at least this many bytes are uploaded in parts. Default 64 MiB: below it one PUT
   * carries a Content-MD5 the server checks end to end and costs one request, and chunked stores
   * rarely write bigger objects (the AWS CLI switches at 8 MiB, tuned for bulk file copies).
   */
  multipartThreshold?: number;
  /** Part size for multipart uploads (at least 5 MiB; grown to stay under 10 000 parts). Default 16 MiB. */
  partSize?: number;
  /** Keys per ListObjectsV2 page (S3's maximum and default is 1000). */
  listPageSize?: number;
  /** Check whole-object reads against an MD5 ETag. Default true. */
  verifyMd5?: boolean;
}

export const DEFAULT_MULTIPART_THRESHOLD = 64 * 1024 * 1024;
export const DEFAULT_PART_SIZE = 16 * 1024 * 1024;
/** Requests in flight by default: enough to hide S3's per-request latency without hitting SlowDown. */
export const DEFAULT_S3_CONCURRENCY = 32;
/** Per-key DeleteObjects failures worth repeating the whole group for. */
const TRANSIENT_DELETE_CODES = new Set(["InternalError", "SlowDown", "ServiceUnavailable"]);
/** Parts of one upload in flight at once. */
const MULTIPART_CONCURRENCY = 4;
/** S3 keys are at most 1024 bytes of UTF-8, prefix included. */
const MAX_KEY_BYTES = 1024;

type Where = { store: string; key: string; operation: string };

/** s3-client.ts: the SDK's commands, the client factory and the multipart upload. */
type S3Sdk = typeof import("./s3-client.js");

/** A live client and the module it came from, created on first use. */
interface Connection {
  sdk: S3Sdk;
  client: S3Client;
  close(): void;
}

/** A 416 answer: the object exists but the range holds no bytes. */
const UNSATISFIABLE = Symbol("unsatisfiable");

/** Releases the socket behind a response whose body will not be read. */
function discard(response: GetObjectCommandOutput): void {
  const body = response.Body as { destroy?: () => void } | undefined;
  body?.destroy?.();
}

function normalizePrefix(prefix: string | undefined): string {
  const trimmed = (prefix ?? "").replace(/^\/+|\/+$/g, "");
  return trimmed === "" ? "" : `${trimmed}/`;
}

export class S3Backend implements Backend {
  readonly url: string;
  readonly defaultConcurrency: number;
  readonly maxBatchDelete = 1000;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly multipartThreshold: number;
  private readonly partSize: number;
  private readonly pageSize: number;
  private readonly verifyMd5: boolean;
  private readonly settings: S3ClientSettings;
  /** Created, with the SDK loaded, on the first request. */
  private readonly connection: OnFirstUse<Connection>;

  constructor(options: S3Options & StoreOptions) {
    if (!options.bucket) throw new TypeError("S3Store: `bucket` is required");
    this.bucket = options.bucket;
    this.prefix = normalizePrefix(options.prefix);
    this.url = `s3://${this.bucket}/${this.prefix}`.replace(/\/$/, "");
    this.defaultConcurrency = options.concurrency ?? DEFAULT_S3_CONCURRENCY;
    this.multipartThreshold = options.multipartThreshold ?? DEFAULT_MULTIPART_THRESHOLD;
    this.partSize = options.partSize ?? DEFAULT_PART_SIZE;
    this.pageSize = Math.min(Math.max(1, options.listPageSize ?? 1000), 1000);
    this.verifyMd5 = options.verifyMd5 ?? true;
    this.settings = {
      region: options.region ?? (process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || "us-east-1"),
      endpoint: options.endpoint,
      forcePathStyle: options.forcePathStyle,
      credentials: options.credentials,
      profile: options.profile,
      anonymous: options.anonymous,
      maxSockets: this.defaultConcurrency,
      socketTimeoutMs: options.timeoutMs ?? 60_000,
    };
    this.connection = new OnFirstUse(async () => {
      const sdk = await loadS3Sdk();
      const { client, close } = sdk.createS3Client(this.settings);
      return { sdk, client, close };
    });
  }

  /** The SDK client, created (and the SDK loaded) on first use. */
  async client(): Promise<S3Client> {
    return (await this.connect({ store: this.url, key: "", operation: "connect" })).client;
  }

  /** The live connection; a failure to load the SDK or build the client is a StoreError at `where`. */
  private async connect(where: Where): Promise<Connection> {
    try {
      return await this.connection.get();
    } catch (error) {
      throw loadFailure(error, where);
    }
  }

  validateKey(key: string): void {
    if (key === "") throw new InvalidKeyError(this.url, key, "empty key");
    if (key.includes("\0")) throw new InvalidKeyError(this.url, key, "NUL character");
    // Servers and proxies that normalise paths would resolve these and escape the prefix.
    if (key.split("/").some((part) => part === "." || part === "..")) {
      throw new InvalidKeyError(this.url, key, '"." and ".." path segments are not allowed');
    }
    if (Buffer.byteLength(this.prefix + key) > MAX_KEY_BYTES) {
      throw new InvalidKeyError(this.url, key, `longer than S3's ${MAX_KEY_BYTES} bytes (prefix included)`);
    }
  }

  async read(key: string, range: ByteRange | undefined, signal?: AbortSignal, buffers?: BufferPool): Promise<StoredObject | undefined> {
    const where: Where = { store: this.url, key, operation: range ? "getRange" : "get" };
    const empty = range && ("suffixLength" in range ? range.suffixLength === 0 : range.length === 0);
    if (empty) {
      // "bytes=N-(N-1)" is not a valid header; an empty range only needs to know the object exists.
      const info = await this.stat(key, signal);
      return info && { data: new Uint8Array(0), contentEncoding: info.contentEncoding };
    }
    const first = await this.fetch(key, range, where, signal);
    if (first === undefined) return undefined;
    if (first === UNSATISFIABLE) return { data: new Uint8Array(0) };
    if (!range) return this.finish(first, undefined, where, signal, buffers);
    const resolved = this.check(() => resolveRange(range, first, where), first, where);
    if (resolved.covered) return this.finish(first, resolved, where, signal, buffers);
    // The server answered some other range (s3rver serves "bytes=-N" as "bytes=0-N"): ask again
    // with the explicit range the Content-Range total lets us compute.
    discard(first);
    const explicit = { offset: resolved.start, length: resolved.end - resolved.start + 1 };
    const second = await this.fetch(key, explicit, where, signal);
    if (second === undefined) return undefined;
    if (second === UNSATISFIABLE) return { data: new Uint8Array(0) };
    const again = this.check(() => resolveRange(explicit, second, where), second, where);
    if (!again.covered) {
      discard(second);
      throw new StoreError(
        `server does not honour Range requests (asked for ${rangeHeader(explicit)}, got ` +
          `${second.ContentRange ?? "no Content-Range"})`,
        where,
      );
    }
    return this.finish(second, again, where, signal, buffers);
  }

  /** Runs a check on a response's headers; on failure the unread body is released first. */
  private check<T>(f: () => T, response: GetObjectCommandOutput, where: Where): T {
    try {
      return f();
    } catch (error) {
      discard(response);
      throw s3Error(error, where);
    }
  }

  /** One GetObject; `undefined` for a missing object, UNSATISFIABLE for a range past the end (416). */
  private async fetch(
    key: string,
    range: ByteRange | undefined,
    where: Where,
    signal?: AbortSignal,
  ): Promise<GetObjectCommandOutput | typeof UNSATISFIABLE | undefined> {
    const { sdk, client } = await this.connect(where);
    try {
      return await client.send(
        new sdk.GetObjectCommand({
          Bucket: this.bucket,
          Key: this.prefix + key,
          Range: range ? rangeHeader(range) : undefined,
        }),
        { abortSignal: signal },
      );
    } catch (error) {
      const status = statusOf(error);
      if (status === 404 && codeOf(error) !== "NoSuchBucket") return undefined;
      // Like a slice past the end: the object exists, the range holds no bytes.
      if (status === 416 && range) return UNSATISFIABLE;
      throw s3Error(error, where, signal);
    }
  }

  /** Reads the body, checks it, and cuts out the wanted bytes when the server sent more. */
  private async finish(
    response: GetObjectCommandOutput,
    range: ResolvedRange | undefined,
    where: Where,
    signal?: AbortSignal,
    buffers?: BufferPool,
  ): Promise<StoredObject> {
    const contentEncoding = response.ContentEncoding || undefined;
    if (!response.Body) return { data: new Uint8Array(0), contentEncoding };
    const whole = range === undefined || response.ContentRange === undefined;
    const md5 = whole && this.verifyMd5 ? md5OfObject(response) : undefined;
    let data: Uint8Array;
    try {
      data = await readBody(asBodyStream(response.Body, where), where, {
        contentLength: response.ContentLength,
        md5,
        signal,
        buffers,
      });
    } catch (error) {
      throw s3Error(error, where, signal);
    }
    if (range) {
      const from = range.start - range.responseStart;
      data = data.subarray(from, Math.max(from, range.end - range.responseStart + 1));
    }
    return { data, contentEncoding };
  }

  async write(key: string, data: Uint8Array, options: BackendWriteOptions): Promise<void> {
    const where = { store: this.url, key, operation: "set" };
    const { sdk, client } = await this.connect(where);
    try {
      if (data.length >= this.multipartThreshold) {
        await sdk.multipartUpload(client, {
          bucket: this.bucket,
          key: this.prefix + key,
          data,
          partSize: this.partSize,
          concurrency: MULTIPART_CONCURRENCY,
          contentEncoding: options.contentEncoding,
          contentType: options.contentType,
          ifNoneMatch: options.ifNoneMatch,
          signal: options.signal,
        });
        return;
      }
      await client.send(
        new sdk.PutObjectCommand({
          Bucket: this.bucket,
          Key: this.prefix + key,
          Body: data,
          ContentLength: data.length,
          ContentMD5: sdk.md5Base64(data),
          ContentEncoding: options.contentEncoding,
          ContentType: options.contentType,
          IfNoneMatch: options.ifNoneMatch,
        }),
        { abortSignal: options.signal },
      );
    } catch (error) {
      throw s3Error(error, where, options.signal);
    }
  }

  async remove(key: string, signal?: AbortSignal): Promise<void> {
    const where = { store: this.url, key, operation: "delete" };
    const { sdk, client } = await this.connect(where);
    try {
      await client.send(new sdk.DeleteObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }), {
        abortSignal: signal,
      });
    } catch (error) {
      if (statusOf(error) === 404 && codeOf(error) !== "NoSuchBucket") return;
      throw s3Error(error, where, signal);
    }
  }

  async removeBatch(keys: string[], signal?: AbortSignal): Promise<void> {
    if (keys.length === 0) return;
    const where = { store: this.url, key: keys[0], operation: "deleteMany" };
    const { sdk, client } = await this.connect(where);
    let errors;
    try {
      const result = await client.send(
        new sdk.DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: { Objects: keys.map((k) => ({ Key: this.prefix + k })), Quiet: true },
        }),
        { abortSignal: signal },
      );
      errors = result.Errors ?? [];
    } catch (error) {
      throw s3Error(error, where, signal);
    }
    // NoSuchKey is not a failure for a delete; anything else is, per key.
    const failed = errors.filter((e) => e.Code !== "NoSuchKey");
    if (failed.length > 0) {
      const first = failed[0];
      const key = first.Key?.startsWith(this.prefix) ? first.Key.slice(this.prefix.length) : (first.Key ?? keys[0]);
      const transient = failed.every((e) => TRANSIENT_DELETE_CODES.has(e.Code ?? ""));
      throw new StoreError(
        `${failed.length} of ${keys.length} deletes failed; first: ${first.Code}: ${first.Message ?? ""}`.trim(),
        { ...where, key, retryable: transient },
      );
    }
  }

  async stat(key: string, signal?: AbortSignal): Promise<ObjectInfo | undefined> {
    const where = { store: this.url, key, operation: "head" };
    const { sdk, client } = await this.connect(where);
    try {
      const head = await client.send(new sdk.HeadObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }), {
        abortSignal: signal,
      });
      return {
        key,
        size: head.ContentLength ?? 0,
        contentEncoding: head.ContentEncoding || undefined,
        etag: head.ETag,
        lastModified: head.LastModified,
      };
    } catch (error) {
      // HEAD has no body, so a missing bucket cannot be told from a missing key here.
      if (statusOf(error) === 404) return undefined;
      throw s3Error(error, where, signal);
    }
  }

  async *list(prefix: string, options: { signal?: AbortSignal; retry: Retrier }): AsyncIterable<ObjectInfo> {
    const where = { store: this.url, key: prefix, operation: "list" };
    const { sdk, client } = await this.connect(where);
    let token: string | undefined;
    do {
      const page = await options.retry(async (signal) => {
        try {
          return await client.send(
            new sdk.ListObjectsV2Command({
              Bucket: this.bucket,
              Prefix: this.prefix + prefix,
              MaxKeys: this.pageSize,
              ContinuationToken: token,
            }),
            { abortSignal: signal ?? options.signal },
          );
        } catch (error) {
          throw s3Error(error, where, signal ?? options.signal);
        }
      });
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined || !object.Key.startsWith(this.prefix)) continue;
        const key = object.Key.slice(this.prefix.length);
        // The prefix's own "folder" marker (a zero-byte "prefix/" object) is not a key under it.
        if (key === "") continue;
        yield {
          key,
          size: object.Size ?? 0,
          etag: object.ETag,
          lastModified: object.LastModified,
        };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
      if (page.IsTruncated && !token) {
        throw new StoreError("listing is truncated but has no continuation token", where);
      }
    } while (token);
  }

  async close(): Promise<void> {
    // A later request connects again, as a fresh store would.
    (await this.connection.take())?.close();
  }
}

/** S3 and S3-compatible object storage as a `Store`. */
export class S3Store extends ObjectStore {
  constructor(options: S3Options & StoreOptions) {
    super(new S3Backend(options), options);
  }
}
