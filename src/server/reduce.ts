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
import { chunkPlan, isFortranOutput, momentsResult, runOperation, type OperationResult } from "./operations.js";
import { newArrayId, reducePool, type ArraySpec, type BatchChunk } from "../active/reduce-pool.js";
import { unpack } from "../active/worker-engine.js";
import type { KernelOptions } from "../active/kernel.js";
import type { DimPiece } from "../active/plan.js";
import type { ReducePlan } from "../active/engine.js";
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
  /** Worker threads for `moments` batches of compressed chunks; 0 or absent: decode and reduce as single requests do. */
  reduceThreads?: number;
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
              const answers = await this.computeGroup(group.items, raws, groupSignal);
              group.items.forEach((item, i) => (results[item.index] = answers[i]));
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

  /** A group's answers: on the reduce workers when they can give today's answer, else chunk by chunk. */
  private async computeGroup(items: readonly Item[], raws: Uint8Array[], signal: AbortSignal): Promise<OperationResult[]> {
    const threaded = await this.onWorkers(items, raws, signal);
    return threaded ?? Promise.all(items.map((item, i) => this.compute(item.req, raws[i], signal)));
  }

  /**
   * Decodes and reduces a group of compressed `moments` chunks as ONE batch on the reduce workers;
   * only partials come back. Undefined when the group does not qualify, no worker can run, or a
   * worker failed: the caller then takes today's path, which gives today's answer or error
   * (a corrupt chunk's 400 included) byte for byte.
   */
  private async onWorkers(items: readonly Item[], raws: Uint8Array[], signal: AbortSignal): Promise<OperationResult[] | undefined> {
    const threads = this.parts.reduceThreads ?? 0;
    const plans = threads > 0 ? items.map((item) => workerPlan(item.req)) : [];
    if (plans.length === 0 || plans.some((p) => p === undefined)) return undefined;
    // Every chunk of a group shares dtype, shape, axis and options; only the selection differs,
    // and the kernel takes `collapsed` per batch (a selection can drop a dimension).
    const collapsed = plans[0]!.plan.collapsed;
    if (plans.some((p) => p!.plan.collapsed.some((c, d) => c !== collapsed[d]))) return undefined;
    const spec = this.specFor(items[0].req);
    if (!spec) return undefined;
    const pool = await reducePool(threads);
    if (!pool) return undefined;
    signal.throwIfAborted();
    let size = 0;
    const chunks: BatchChunk[] = items.map((item, i) => {
      const offset = (size + 7) & ~7; // aligned, so zarrita views the decoded bytes without a copy
      size = offset + raws[i].length;
      return { coords: item.req.shape!.map(() => 0), pieces: plans[i]!.pieces, key: item.req.url.pathname, offset, length: raws[i].length };
    });
    const buffer = new ArrayBuffer(size);
    const view = new Uint8Array(buffer);
    chunks.forEach((c, i) => view.set(raws[i], c.offset));
    const kernel = plans[0]!.kernel;
    let reply;
    try {
      reply = await pool.run({ kind: "batch", array: spec, kernel, collapsed, chunks, buffer }, [buffer]);
    } catch {
      return undefined; // a worker died: today's path answers
    }
    if (!reply.ok) return undefined;
    signal.throwIfAborted();
    const partials = unpack(reply, chunks, collapsed, kernel);
    return items.map((item, i) => momentsResult(item.req, partials[i], plans[i]!.plan.outShape));
  }

  /** ArraySpecs by `.zarray` text: workers open each distinct chunk description once. */
  private readonly specs = new Map<string, ArraySpec>();

  private specFor(req: ReductionRequest): ArraySpec | undefined {
    const code = DTYPE_CODES[req.dtype];
    if (!code) return undefined;
    const endian = ITEM_SIZE[req.dtype] === 1 ? "|" : req.byteOrder === "big" ? ">" : "<";
    const doc = JSON.stringify({
      zarr_format: 2, shape: req.shape, chunks: req.shape, dtype: endian + code, order: req.order,
      // Filters first, compression last, decoded in reverse: the request's codec list as it is (kerchunk's form).
      compressor: null, filters: req.codecs, fill_value: null,
    });
    let spec = this.specs.get(doc);
    if (spec) {
      this.specs.delete(doc);
    } else {
      spec = { id: newArrayId(), path: "/", version: 2, docs: { ".zarray": doc } };
      while (this.specs.size >= MAX_SPECS) {
        const [oldest, old] = this.specs.entries().next().value as [string, ArraySpec];
        this.specs.delete(oldest);
        void reducePool(this.parts.reduceThreads ?? 0).then((pool) => pool?.release(old.id));
      }
    }
    this.specs.set(doc, spec);
    return spec;
  }

  private async compute(req: ReductionRequest, raw: Uint8Array, signal: AbortSignal): Promise<OperationResult> {
    signal.throwIfAborted();
    const decoded = req.codecs.length === 0 ? raw : await (await this.parts.chains.get(req)).decode(raw, req.url.pathname);
    return this.parts.compute.run(() => runOperation(req, decoded));
  }
}

const MAX_SPECS = 64;

/** zarr v2 type codes of the dtypes a worker decodes (float16's answer widens: today's path keeps it). */
const DTYPE_CODES: Partial<Record<string, string>> = {
  int8: "i1", uint8: "u1", int16: "i2", uint16: "u2", int32: "i4", uint32: "u4", int64: "i8", uint64: "u8", float32: "f4", float64: "f8",
};

/** The chunk's plan when the workers answer it exactly as `runOperation` would, else undefined. */
function workerPlan(req: ReductionRequest): { plan: ReducePlan; pieces: DimPiece[]; kernel: KernelOptions } | undefined {
  if (req.operation !== "moments" || req.codecs.length === 0 || !req.shape || !DTYPE_CODES[req.dtype]) return undefined;
  let planned;
  try {
    planned = chunkPlan(req, req.shape);
  } catch {
    return undefined; // a bad selection: today's path reports it, after the decode as ever
  }
  return isFortranOutput(req, planned.plan) ? undefined : planned;
}
