/**
 * One entry point from a URL to a Store: `s3://bucket/prefix`, `gs://bucket/prefix`,
 * `file:///path` or a bare path, `http(s)://host/path`, `memory://name/prefix`. Every store is
 * rooted at the URL's path, so keys are relative to it. Bucket URLs are taken literally (no
 * percent-decoding), like fsspec and CloudFiles; file URLs are decoded as file URLs are.
 */
import { dirname, basename, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { InvalidKeyError, UnsupportedFeatureError } from "../errors.js";
import type { Backend, BackendWriteOptions, ByteRange, Retrier, StoredObject } from "./backend.js";
import { GcsStore, type GcsStoreOptions } from "./gcs.js";
import { HttpStore, type HttpStoreOptions } from "./http.js";
import { LocalStore, type LocalStoreOptions } from "./local.js";
import { MemoryBackend } from "./memory.js";
import { ObjectStore, type StoreOptions } from "./object-store.js";
import { S3Store, type S3Options } from "./s3.js";
import type { ObjectInfo } from "./types.js";

type StoreOnly<T> = Omit<T, "bucket" | "prefix" | keyof StoreOptions>;

/**
 * S3 settings for `s3://` URLs. Defaults from the environment: endpoint `AWS_ENDPOINT_URL_S3`,
 * then `AWS_ENDPOINT_URL`; path-style addressing whenever an endpoint is set (S3-compatible
 * servers); anonymous when `AWS_NO_SIGN_REQUEST` is YES/true/1; region `AWS_REGION`, then
 * `AWS_DEFAULT_REGION`. Credentials otherwise come from the SDK's default chain.
 */
export type S3OpenOptions = StoreOnly<S3Options>;

/** HTTP settings for `http(s)://` URLs: headers, basic auth, pool size, compressed responses. */
export type HttpOpenOptions = StoreOnly<HttpStoreOptions>;

export interface OpenStoreOptions extends StoreOptions {
  s3?: S3OpenOptions;
  file?: StoreOnly<LocalStoreOptions>;
  /** Default endpoint: `STORAGE_EMULATOR_HOST` (the Google client libraries' convention), else GCS. */
  gcs?: StoreOnly<GcsStoreOptions>;
  http?: HttpOpenOptions;
  /** Environment to read conventions from; default `process.env`. */
  env?: Record<string, string | undefined>;
}

const SCHEME = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//;

/** `scheme://bucket/rest` taken literally. */
function splitBucketUrl(url: string, scheme: string): { bucket: string; path: string } {
  const rest = url.slice(scheme.length + 3);
  const slash = rest.indexOf("/");
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? "" : rest.slice(slash + 1).replace(/^\/+/, "");
  if (!bucket && scheme !== "memory") throw new InvalidKeyError(url, "", `a ${scheme}:// URL needs a bucket name`);
  return { bucket, path };
}

/** A local path from a file URL; remote hosts and other malformed file URLs are refused by name. */
function filePath(url: string): string {
  try {
    return fileURLToPath(url);
  } catch (error) {
    throw new UnsupportedFeatureError("file URL", url, `${(error as Error).message}; use file:///absolute/path`);
  }
}

function isTrue(value: string | undefined): boolean {
  return value !== undefined && /^(yes|true|1)$/i.test(value.trim());
}

function storeOptions(options: OpenStoreOptions): StoreOptions {
  const { concurrency, retry, timeoutMs, compress, level } = options;
  return { concurrency, retry, timeoutMs, compress, level };
}

/**
 * Opens the store a URL names. Returns the concrete ObjectStore so callers can read `stats` and
 * `close()` the connection pool when done.
 */
export function openStore(url: string, options: OpenStoreOptions = {}): ObjectStore {
  const env = options.env ?? process.env;
  const scheme = SCHEME.exec(url)?.[1]?.toLowerCase();
  const common = storeOptions(options);
  switch (scheme) {
    case undefined:
      return new LocalStore(resolve(url), { ...options.file, ...common });
    case "file":
      return new LocalStore(filePath(url), { ...options.file, ...common });
    case "memory": {
      const { bucket: name, path } = splitBucketUrl(url, scheme);
      const backend = new MemoryBackend(name);
      return new ObjectStore(path ? new PrefixedBackend(backend, path) : backend, common);
    }
    case "gs": {
      const { bucket, path } = splitBucketUrl(url, scheme);
      const emulator = env.STORAGE_EMULATOR_HOST;
      const endpoint =
        options.gcs?.endpoint ?? (emulator ? (SCHEME.test(emulator) ? emulator : `http://${emulator}`) : undefined);
      const token = options.gcs?.token ?? (env.GOOGLE_OAUTH_ACCESS_TOKEN || undefined);
      return new GcsStore({ ...options.gcs, ...common, bucket, prefix: path, endpoint, token });
    }
    case "s3": {
      const { bucket, path } = splitBucketUrl(url, scheme);
      const s3 = options.s3 ?? {};
      const endpoint = s3.endpoint ?? (env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined);
      return new S3Store({
        ...s3,
        ...common,
        bucket,
        prefix: path,
        endpoint,
        forcePathStyle: s3.forcePathStyle ?? endpoint !== undefined,
        anonymous: s3.anonymous ?? isTrue(env.AWS_NO_SIGN_REQUEST),
        region: s3.region ?? (env.AWS_REGION || env.AWS_DEFAULT_REGION || undefined),
      });
    }
    case "http":
    case "https":
      return new HttpStore(url, { ...options.http, ...common });
    default:
      throw new UnsupportedFeatureError(
        `store URL scheme "${scheme}:"`,
        url,
        "use s3://, gs://, http(s)://, file:// (or a plain path) or memory://",
      );
  }
}

/**
 * Splits an object URL into the store that holds it and the object's key: `s3://b/a/b.nc` →
 * `s3://b` + `a/b.nc`; `https://host/dir/f.nc` → `https://host/dir` + `f.nc`; a path → its
 * directory + file name. `openStore(storeUrl).get(key)` then reads the object.
 */
export function splitUrl(url: string): { storeUrl: string; key: string } {
  const scheme = SCHEME.exec(url)?.[1]?.toLowerCase();
  const noKey = (why: string) => new InvalidKeyError(url, "", why);
  if (scheme === "s3" || scheme === "gs" || scheme === "memory") {
    const { bucket, path } = splitBucketUrl(url, scheme);
    if (!path || path.endsWith("/")) throw noKey("the URL names a bucket or prefix, not an object");
    return { storeUrl: `${url.slice(0, scheme.length + 3)}${bucket}`, key: path };
  }
  if (scheme === "http" || scheme === "https") {
    const parsed = new URL(url);
    if (parsed.search || parsed.hash) {
      throw new UnsupportedFeatureError("query strings or fragments in object URLs", url, "give the plain object URL");
    }
    const cut = parsed.pathname.lastIndexOf("/");
    const key = decodeURIComponent(parsed.pathname.slice(cut + 1));
    if (!key) throw noKey("the URL names a directory, not an object");
    return { storeUrl: parsed.origin + parsed.pathname.slice(0, cut), key };
  }
  if (scheme === "file") {
    const path = filePath(url);
    if (url.endsWith("/")) throw noKey("the URL names a directory, not a file");
    return { storeUrl: pathToFileURL(dirname(path)).href, key: basename(path) };
  }
  if (scheme !== undefined) {
    throw new UnsupportedFeatureError(`store URL scheme "${scheme}:"`, url, "use s3://, gs://, http(s)://, file:// or a path");
  }
  if (/[/\\]$/.test(url)) throw noKey("the path names a directory, not a file");
  const path = resolve(url);
  return { storeUrl: dirname(path), key: basename(path) };
}

/** Roots any backend at a key prefix (used for `memory://name/prefix`). */
class PrefixedBackend implements Backend {
  readonly url: string;
  readonly defaultConcurrency: number;
  private readonly prefix: string;

  constructor(
    private readonly inner: Backend,
    prefix: string,
  ) {
    this.prefix = `${prefix.replace(/\/+$/, "")}/`;
    this.url = `${inner.url.replace(/\/+$/, "")}/${this.prefix.slice(0, -1)}`;
    this.defaultConcurrency = inner.defaultConcurrency;
  }

  validateKey(key: string): void {
    this.inner.validateKey?.(this.prefix + key);
  }
  read(key: string, range: ByteRange | undefined, signal?: AbortSignal): Promise<StoredObject | undefined> {
    return this.inner.read(this.prefix + key, range, signal);
  }
  write(key: string, data: Uint8Array, options: BackendWriteOptions): Promise<void> {
    return this.inner.write(this.prefix + key, data, options);
  }
  remove(key: string, signal?: AbortSignal): Promise<void> {
    return this.inner.remove(this.prefix + key, signal);
  }
  async stat(key: string, signal?: AbortSignal): Promise<ObjectInfo | undefined> {
    const info = await this.inner.stat(this.prefix + key, signal);
    return info && { ...info, key };
  }
  async *list(prefix: string, options: { signal?: AbortSignal; retry: Retrier }): AsyncIterable<ObjectInfo> {
    for await (const info of this.inner.list(this.prefix + prefix, options)) {
      yield { ...info, key: info.key.slice(this.prefix.length) };
    }
  }
  close(): Promise<void> {
    return this.inner.close?.() ?? Promise.resolve();
  }
}
