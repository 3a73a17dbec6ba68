/**
 * Upstream access: the request's url → a store from src/stores and a key, read by range only.
 *
 * As Reductionist does: the S3 endpoint is the url's origin and the first path segment the bucket
 * (path-style); the key is the rest of the path, percent-decoded. HTTP Basic credentials of the
 * request become the S3 access key/secret (or go to the HTTP origin); without them requests are
 * anonymous. Stores are pooled per (endpoint, bucket, credentials) so keep-alive connections are
 * reused; the pool key holds a hash of the secret, never the secret.
 *
 * Before anything is fetched the host must be on the allow-list, and, unless the operator listed
 * it by name, must not resolve to a loopback, link-local or cloud-metadata address (SSRF).
 */
import { createHash } from "node:crypto";
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { RequestError } from "../errors.js";
import { HttpStore } from "../stores/http.js";
import type { ObjectStore } from "../stores/object-store.js";
import { S3Store } from "../stores/s3.js";
import { UpstreamMissingError } from "./errors.js";
import type { ReductionRequest } from "./request.js";

export interface Credentials {
  username: string;
  password: string;
}

export interface UpstreamOptions {
  /** Hosts (`name` or `name:port`) requests may read from; `*` allows any public host. */
  allowHosts: readonly string[];
  timeoutMs: number;
  /** Attempts per upstream read (1 = no retry). */
  attempts: number;
  maxPooledStores: number;
}

/** `Authorization: Basic ...` → credentials, or undefined when absent. */
export function basicAuth(header: string | undefined): Credentials | undefined {
  if (!header) return undefined;
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!m) throw new RequestError("authorization header is not valid", 400, ["only HTTP Basic authentication is supported"]);
  const text = Buffer.from(m[1], "base64").toString("utf8");
  const colon = text.indexOf(":");
  if (colon < 0) throw new RequestError("authorization header is not valid", 400, ["Basic credentials need user:password"]);
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** Identifies credentials without holding the secret (cache and pool keys). */
export function credentialsId(credentials: Credentials | undefined): string {
  if (!credentials) return "anonymous";
  return createHash("sha256").update(credentials.username).update("\0").update(credentials.password).digest("hex");
}

const METADATA_HOSTS = new Set(["metadata.google.internal", "metadata", "instance-data", "instance-data.ec2.internal"]);

function dangerousAddress(address: string): string | undefined {
  const v = isIP(address);
  if (v === 4) {
    const [a, b] = address.split(".").map(Number);
    if (a === 169 && b === 254) return "a link-local (cloud metadata) address";
    if (a === 127) return "a loopback address";
    if (a === 0) return "an unspecified address";
    if (a === 100 && b >= 64 && b < 128) return "a carrier-grade NAT address";
  } else if (v === 6) {
    const x = address.toLowerCase();
    if (x === "::1" || x === "::") return "a loopback address";
    if (/^fe[89ab]/.test(x)) return "a link-local address";
    if (x.startsWith("fd00:ec2::")) return "a cloud metadata address";
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(x);
    if (mapped) return dangerousAddress(mapped[1]);
  }
  return undefined;
}

/** Refuses (403) a url whose host is not allowed, before any connection is made. */
export async function checkHost(url: URL, allowHosts: readonly string[]): Promise<void> {
  const host = url.hostname.replace(/^\[|\]$/g, "").toLowerCase();
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  const named = allowHosts.some((h) => {
    const entry = h.toLowerCase().replace(/^\[|\]$/g, "");
    return entry === host || entry === `${host}:${port}` || entry === `[${host}]:${port}`;
  });
  const refuse = (why: string): never => {
    throw new RequestError("upstream host is not allowed", 403, [
      `${url.host}: ${why}; the server operator can allow it with --allow-host ${url.host}`,
    ]);
  };
  if (named) return;
  if (!allowHosts.includes("*")) refuse("not on this server's allow-list");
  if (METADATA_HOSTS.has(host)) refuse("a cloud metadata host");
  const addresses = isIP(host) ? [host] : (await lookup(host, { all: true }).catch(() => [])).map((a) => a.address);
  for (const a of addresses) {
    const why = dangerousAddress(a);
    if (why) refuse(`resolves to ${why}`);
  }
}

interface Target {
  poolKey: string;
  key: string;
  make(): ObjectStore;
}

function decodePath(path: string, url: URL): string {
  try {
    return decodeURIComponent(path);
  } catch {
    throw new RequestError("request data is not valid", 400, [`url: ${url.pathname} is not validly percent-encoded`]);
  }
}

function target(req: ReductionRequest, credentials: Credentials | undefined, options: UpstreamOptions): Target {
  const url = req.url;
  const common = { timeoutMs: options.timeoutMs, retry: { attempts: options.attempts }, concurrency: 8 };
  const who = credentialsId(credentials);
  if (req.interfaceType === "s3") {
    const segments = url.pathname.replace(/^\/+/, "").split("/");
    const bucket = decodePath(segments[0], url);
    const key = decodePath(segments.slice(1).join("/"), url);
    if (!bucket || !key) {
      throw new RequestError("request data is not valid", 400, [`url: ${url.href} needs the form <endpoint>/<bucket>/<key>`]);
    }
    return {
      poolKey: `s3 ${url.origin} ${bucket} ${who}`,
      key,
      make: () =>
        new S3Store({
          ...common,
          bucket,
          endpoint: url.origin,
          forcePathStyle: true,
          region: process.env.AWS_REGION ?? "us-east-1",
          ...(credentials
            ? { credentials: { accessKeyId: credentials.username, secretAccessKey: credentials.password } }
            : { anonymous: true }),
          verifyMd5: false,
        }),
    };
  }
  const key = decodePath(url.pathname.replace(/^\/+/, ""), url);
  if (!key) throw new RequestError("request data is not valid", 400, [`url: ${url.href} names no object`]);
  return {
    poolKey: `http ${url.origin} ${who}`,
    key,
    make: () => new HttpStore(url.origin + "/", { ...common, ...(credentials ? { auth: credentials } : {}) }),
  };
}

function checkLength(req: ReductionRequest, length: number, bytes: Uint8Array): Uint8Array {
  if (bytes.length !== length) {
    throw new RequestError("request data is not valid", 400, [
      `offset ${req.offset} + size ${length} is beyond the end of ${req.url.href} (read ${bytes.length} bytes)`,
    ]);
  }
  return bytes;
}

/** Reads byte ranges from upstream objects through pooled stores. */
export class Upstream {
  private readonly pool = new Map<string, ObjectStore>();
  constructor(private readonly options: UpstreamOptions) {}

  private store(t: Target): ObjectStore {
    let store = this.pool.get(t.poolKey);
    if (store) {
      this.pool.delete(t.poolKey); // re-insert: the Map's order is our LRU order
    } else {
      store = t.make();
      while (this.pool.size >= this.options.maxPooledStores) {
        const [oldKey, old] = this.pool.entries().next().value as [string, ObjectStore];
        this.pool.delete(oldKey);
        void old.close().catch(() => undefined);
      }
    }
    this.pool.set(t.poolKey, store);
    return store;
  }

  /** Object size when the request gives no `size` (a HEAD), so the budget is known before the read. */
  async size(req: ReductionRequest, credentials: Credentials | undefined, signal?: AbortSignal): Promise<number> {
    const t = target(req, credentials, this.options);
    const info = await this.store(t).head(t.key, { signal });
    if (!info) throw new UpstreamMissingError(req.interfaceType === "s3" ? "s3" : "http", req.url.href);
    return info.size;
  }

  /** The request's bytes: `size` bytes from `offset`, or the rest of the object. */
  async read(req: ReductionRequest, length: number, credentials: Credentials | undefined, signal?: AbortSignal): Promise<Uint8Array> {
    const t = target(req, credentials, this.options);
    const bytes = await this.store(t).getRange(t.key, { offset: req.offset, length }, { signal });
    if (!bytes) throw new UpstreamMissingError(req.interfaceType === "s3" ? "s3" : "http", req.url.href);
    return checkLength(req, length, bytes);
  }

  /**
   * Several requests' bytes, in order. Ranges of one object go out together through the store's
   * `getRanges`: touching ranges (consecutive chunks) coalesce into one GET, never with a gap, so
   * no byte is read that the memory budget did not count.
   */
  async readMany(
    reqs: readonly ReductionRequest[],
    lengths: readonly number[],
    credentials: Credentials | undefined,
    signal?: AbortSignal,
  ): Promise<Uint8Array[]> {
    if (reqs.length === 1) return [await this.read(reqs[0], lengths[0], credentials, signal)];
    const byObject = new Map<string, { t: Target; members: number[] }>();
    reqs.forEach((req, i) => {
      const t = target(req, credentials, this.options);
      const id = `${t.poolKey}\n${t.key}`;
      const group = byObject.get(id);
      if (group) group.members.push(i);
      else byObject.set(id, { t, members: [i] });
    });
    const out = new Array<Uint8Array>(reqs.length);
    await Promise.all(
      [...byObject.values()].map(async ({ t, members }) => {
        const ranges = members.map((i) => ({ offset: reqs[i].offset, length: lengths[i] }));
        const parts = await this.store(t).getRanges(t.key, ranges, { signal, coalesceGap: 0, multiRange: false });
        const first = reqs[members[0]];
        if (!parts) throw new UpstreamMissingError(first.interfaceType === "s3" ? "s3" : "http", first.url.href);
        members.forEach((i, j) => (out[i] = checkLength(reqs[i], lengths[i], parts[j])));
      }),
    );
    return out;
  }

  async close(): Promise<void> {
    const stores = [...this.pool.values()];
    this.pool.clear();
    await Promise.all(stores.map((s) => s.close().catch(() => undefined)));
  }
}
