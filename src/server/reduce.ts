/**
 * The work behind a reduction request, for one chunk (`/v2/<operation>`) or a batch of chunks
 * (`/v2/<operation>/batch`, our extension): check the upstream host, take memory from the
 * budget, read the byte ranges (or the chunk cache), decode through the codec chain, reduce with
 * the chunk kernel.
 *
 * A batch reads consecutive chunks of one object as coalesced range GETs (chunks written one
 * after another sit back to back in the file), and saves the per-request HTTP work on both ends;
 * each chunk is still validated, budgeted and reduced exactly as a single request would be.
 */
import { RequestError } from "../errors.js";
import { type ChunkCache, cacheKey } from "./cache.js";
import { encodeBatch, encodeResponse } from "./cbor.js";
import type { CodecChains } from "./chains.js";
import type { LogEntry } from "./config.js";
import type { MemoryBudget, Semaphore } from "./limits.js";
import type { Metrics } from "./metrics.js";
import { runOperation, type OperationResult } from "./operations.js";
import { ITEM_SIZE, parseBatch, parseRequest, type Operation, type ReductionRequest, type RequestLimits } from "./request.js";
import { basicAuth, checkHost, credentialsId, type Credentials, type Upstream } from "./upstream.js";

export interface ReducerParts {
  allowHosts: readonly string[];
  limits: RequestLimits;
  budget: MemoryBudget;
  compute: Semaphore;
  cache?: ChunkCache;
  upstream: Upstream;
  metrics: Metrics;
  chains: CodecChains;
  log: (entry: LogEntry) => void;
}

/** What the access log notes about a request. */
export type Note = Record<string, unknown>;

/** Bytes a request holds at its peak: the fetched range, the decoded bytes and the typed copy. */
function memoryFor(req: ReductionRequest, fetched: number): number {
  const decoded = req.shape ? req.shape.reduce((a, b) => a * b, ITEM_SIZE[req.dtype]) : fetched;
  return fetched + 2 * decoded;
}

interface Item {
  req: ReductionRequest;
  length: number;
  index: number;
}

export class Reducer {
  constructor(private readonly parts: ReducerParts) {}

  /** One chunk: the CBOR answer. `authorization` is the request's header (parsed after the host check). */
  async one(operation: Operation, body: string, authorization: string | undefined, signal: AbortSignal, note: Note): Promise<Uint8Array> {
    const req = parseRequest(operation, body, this.parts.limits);
    note.upstream = req.url.origin + req.url.pathname;
    note.interface_type = req.interfaceType;
    await checkHost(req.url, this.parts.allowHosts);
    const credentials = basicAuth(authorization);
    const item = { req, length: await this.lengthOf(req, credentials, signal), index: 0 };
    const release = await this.parts.budget.acquire(memoryFor(req, item.length), signal);
    try {
      const [raw] = await this.fetch([item], credentials, signal);
      note.fetched = raw.length;
      return encodeResponse(await this.compute(req, raw, signal), req);
    } finally {
      release();
    }
  }

  /** A batch: the CBOR `{results}`, one answer per chunk in the request's order. */
  async batch(operation: Operation, body: string, authorization: string | undefined, signal: AbortSignal, note: Note): Promise<Uint8Array> {
    const reqs = parseBatch(operation, body, this.parts.limits);
    note.upstream = reqs[0].url.origin + reqs[0].url.pathname;
    note.interface_type = reqs[0].interfaceType;
    note.chunks = reqs.length;
    const origins = new Map(reqs.map((r) => [r.url.origin, r.url]));
    for (const url of origins.values()) await checkHost(url, this.parts.allowHosts);
    const credentials = basicAuth(authorization);
    const items = await Promise.all(reqs.map(async (req, index) => ({ req, length: await this.lengthOf(req, credentials, signal), index })));

    // Groups of consecutive chunks of one object, each taking its memory at once; a quarter of the
    // budget at most, so one batch never holds the whole server.
    const groupLimit = Math.max(1, Math.floor(this.parts.budget.total / 4));
    const groups: { items: Item[]; memory: number }[] = [];
    for (const item of items) {
      const memory = memoryFor(item.req, item.length);
      const last = groups[groups.length - 1];
      const same = last && last.items[0].req.url.href === item.req.url.href && last.items[0].req.interfaceType === item.req.interfaceType;
      if (same && last.memory + memory <= groupLimit) {
        last.items.push(item);
        last.memory += memory;
      } else groups.push({ items: [item], memory });
    }
    const results = new Array<OperationResult>(items.length);
    let fetched = 0;
    // The first failure answers the request, and stops the other groups (queued ones leave the budget's queue).
    const failed = new AbortController();
    const stop = () => failed.abort(signal.reason);
    signal.addEventListener("abort", stop, { once: true });
    const groupSignal = failed.signal;
    try {
      await Promise.all(
        groups.map(async (group) => {
          try {
            const release = await this.parts.budget.acquire(group.memory, groupSignal);
            try {
              const raws = await this.fetch(group.items, credentials, groupSignal);
              fetched += raws.reduce((n, raw) => n + raw.length, 0);
              await Promise.all(group.items.map(async (item, i) => (results[item.index] = await this.compute(item.req, raws[i], groupSignal))));
            } finally {
              release();
            }
          } catch (error) {
            failed.abort(error);
            throw error;
          }
        }),
      );
    } finally {
      signal.removeEventListener("abort", stop);
    }
    note.fetched = fetched;
    return encodeBatch(results.map((result, i) => ({ result, options: reqs[i] })));
  }

  /** Bytes to read: `size`, or the rest of the object (a HEAD), checked against the limit. */
  private async lengthOf(req: ReductionRequest, credentials: Credentials | undefined, signal: AbortSignal): Promise<number> {
    const length = req.size ?? Math.max(0, (await this.parts.upstream.size(req, credentials, signal)) - req.offset);
    if (length === 0) throw new RequestError("request data is not valid", 400, [`offset ${req.offset} is at or past the end of the object`]);
    if (length > this.parts.limits.maxChunkBytes) {
      throw new RequestError("request data is not valid", 400, [`${length} bytes to read is over this server's limit of ${this.parts.limits.maxChunkBytes}`]);
    }
    return length;
  }

  /** The items' stored bytes: from the chunk cache where it has them, the rest from upstream in one go. */
  private async fetch(items: readonly Item[], credentials: Credentials | undefined, signal: AbortSignal): Promise<Uint8Array[]> {
    const { cache, metrics, upstream, log } = this.parts;
    const who = cache ? credentialsId(credentials) : "";
    const keys = items.map((it) => (cache && !it.req.disableChunkCache ? cacheKey(it.req.url.href, it.req.offset, it.length, who) : undefined));
    const out = await Promise.all(keys.map((key) => (key ? cache!.get(key) : undefined)));
    for (let i = 0; i < items.length; i++) if (keys[i]) out[i] ? metrics.cacheHits++ : metrics.cacheMisses++;
    const missing = items.flatMap((_, i) => (out[i] ? [] : [i]));
    if (missing.length > 0) {
      const read = await upstream.readMany(missing.map((i) => items[i].req), missing.map((i) => items[i].length), credentials, signal);
      missing.forEach((i, j) => (out[i] = read[j]));
      for (const i of missing) {
        metrics.upstreamBytes += out[i]!.length;
        const key = keys[i];
        if (key) await cache!.set(key, out[i]!).catch((error: unknown) => log({ level: "error", msg: "chunk cache write failed", error: String(error) }));
      }
    }
    return out as Uint8Array[];
  }

  private async compute(req: ReductionRequest, raw: Uint8Array, signal: AbortSignal): Promise<OperationResult> {
    signal.throwIfAborted();
    const decoded = req.codecs.length === 0 ? raw : await (await this.parts.chains.get(req)).decode(raw, req.url.pathname);
    return this.parts.compute.run(() => runOperation(req, decoded));
  }
}
