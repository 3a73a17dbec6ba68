/**
 * `Active`: PyActiveStorage-style reductions over a hyperslab of one variable, computed chunk by
 * chunk so the selection is never materialised. Open it on an HDF5/netCDF4 file (references built
 * on the fly), a kerchunk reference set, or a zarr array; then ask for mean/min/max/sum/count/
 * variance/std with an optional selection and axes.
 */
import { missingRules, packing, type Attributes, type Packing } from "./cf.js";
import { availableParallelism } from "node:os";
import { planReduction, reduceArray, type ChunkSource } from "./engine.js";
import { countChunks } from "./plan.js";
import type { Partials } from "./partials.js";
import { reduceRemote, type RemoteArray, type RemoteOptions } from "./remote.js";
import type { MissingRules } from "./kernel.js";
import { finalize, type ReductionResult, type Statistic } from "./result.js";
import type { Selection } from "./selection.js";
import { arrayLayout, type ArrayLayout } from "./layout.js";
import { reduceArrayThreaded } from "./worker-engine.js";
import { sharedReducePool } from "./reduce-pool.js";

export interface ActiveOptions {
  /** Reduce the stored (packed) values instead of unpacking scale_factor/add_offset. */
  raw?: boolean;
  /** Leave NaNs out instead of propagating them like numpy. */
  skipNaN?: boolean;
  /** Apply the netCDF default fill when `_FillValue` is absent (auto-detected when opening files). */
  netcdf?: boolean;
  /** Replace the CF rules derived from attributes. */
  missing?: MissingRules;
  /** Chunks in flight at once. Default 16. */
  concurrency?: number;
  /** Bytes of decoded chunks held at once; caps the workers for big chunks. Default 32 MiB. */
  memoryBudget?: number;
  signal?: AbortSignal;
  /**
   * Worker threads that decode and reduce chunks (only partials come back to this thread); 0 decodes
   * and reduces here. Default: min(cores, 4) for compressed chunks, 0 for raw ones (the kernel on
   * raw chunks is cheaper than shipping them to a thread).
   */
  threads?: number;
  /**
   * Push the work to active-storage servers (Reductionist API v2; several are used round-robin):
   * one request per chunk, only partials come back.
   */
  server?: string | string[];
  /** Forwarded to the server as HTTP Basic auth: S3 access key/secret or the HTTP origin's login. */
  serverCredentials?: { username: string; password: string };
  /** "moments" (activestore's server, all statistics) or "reductionist" (a stock server). */
  protocol?: RemoteOptions["protocol"];
}

export interface StatisticOptions {
  /** Axes of the selected array to reduce over (numpy semantics); default all. */
  axis?: number | number[] | null;
  /** Return the merged partials too, to aggregate across files. */
  components?: boolean;
  /** numpy's ddof for variance/std. Default 0. */
  ddof?: number;
}

/** Counts what the reads cost; `bytesRead` grows as chunks are fetched. */
export interface ReadCounter {
  bytesRead: number;
}

/** Fewer chunks than this reduce in-thread by default: a few round trips buy nothing. */
const MIN_THREADED_CHUNKS = 16;

export class Active {
  readonly missing: MissingRules;
  readonly packing: Packing | undefined;

  constructor(
    readonly array: ChunkSource,
    readonly attributes: Attributes,
    private readonly options: ActiveOptions = {},
    private readonly counter: ReadCounter = { bytesRead: 0 },
    /** Where the chunks are, for server reductions (required with `options.server`). */
    private readonly remote?: RemoteArray,
  ) {
    this.missing = options.missing ?? missingRules(attributes, array.dtype, options);
    this.packing = options.raw ? undefined : packing(attributes);
  }

  /**
   * Opens `variable` of an HDF5/netCDF4 file or URL, a kerchunk reference set (object or .json), or
   * a zarr hierarchy on a store. See `openActive` in source.ts.
   */
  static async open(
    source: import("./source.js").ActiveSource,
    variable: string,
    options?: import("./source.js").OpenActiveOptions,
  ): Promise<Active> {
    const { openActive } = await import("./source.js");
    return openActive(source, variable, options);
  }

  get shape(): readonly number[] {
    return this.array.shape;
  }

  get dtype(): string {
    return this.array.dtype;
  }

  mean(selection?: Selection, options?: StatisticOptions): Promise<ReductionResult> {
    return this.reduce("mean", selection, options);
  }
  min(selection?: Selection, options?: StatisticOptions): Promise<ReductionResult> {
    return this.reduce("min", selection, options);
  }
  max(selection?: Selection, options?: StatisticOptions): Promise<ReductionResult> {
    return this.reduce("max", selection, options);
  }
  sum(selection?: Selection, options?: StatisticOptions): Promise<ReductionResult> {
    return this.reduce("sum", selection, options);
  }
  count(selection?: Selection, options?: StatisticOptions): Promise<ReductionResult> {
    return this.reduce("count", selection, options);
  }
  variance(selection?: Selection, options?: StatisticOptions): Promise<ReductionResult> {
    return this.reduce("variance", selection, options);
  }
  std(selection?: Selection, options?: StatisticOptions): Promise<ReductionResult> {
    return this.reduce("std", selection, options);
  }

  /**
   * Worker threads when nothing says: compressed chunks, enough of them to keep the workers busy.
   * Raw chunks of local files too once the workers are running: each reads and reduces its chunks
   * in its own cache (raw75 whole mean, warm: 0.12 s against 0.16-0.19 here), but starting them
   * (~55 ms, and their first batches' compilation) costs more than they save on one reduction.
   */
  private defaultThreads(layout: ArrayLayout | undefined, selection: Selection | undefined, axis: StatisticOptions["axis"]): number {
    if (!layout) return 0;
    const threads = Math.min(availableParallelism(), 4);
    const raw = layout.local && layout.spec.raw !== undefined && sharedReducePool()?.threads === threads && sharedReducePool()!.running;
    if (!layout.compressed && !raw) return 0;
    const chunks = countChunks(planReduction(this.array.shape, selection ?? null, axis).slab, this.array.chunks);
    return chunks >= MIN_THREADED_CHUNKS ? threads : 0;
  }

  /** Any statistic by name, as the CLI and server use it. */
  async reduce(op: Statistic, selection?: Selection, options: StatisticOptions = {}): Promise<ReductionResult> {
    // Both engines read the array's metadata document once: before the reduction's bytes count.
    const layout = this.options.server === undefined ? await arrayLayout(this.array) : undefined;
    const before = this.counter.bytesRead;
    const moments = op === "variance" || op === "std" || options.components === true;
    // Partials handed out (components) must merge with any others, so they keep everything.
    const extremes = op === "min" || op === "max" || options.components === true;
    let partials: Partials;
    let chunks: number;
    let bytesReceived: number | undefined;
    let bytesReduced: number | undefined;
    if (this.options.server !== undefined) {
      if (!this.remote) throw new Error("server reductions need an Active opened from references or a file");
      const r = await reduceRemote(this.remote, selection ?? null, {
        servers: this.options.server,
        credentials: this.options.serverCredentials,
        protocol: this.options.protocol,
        axis: options.axis,
        missing: this.missing,
        moments,
        extremes,
        concurrency: this.options.concurrency,
        signal: this.options.signal,
      });
      ({ partials, chunks, bytesReceived, bytesReduced } = r);
    } else {
      const local = {
        axis: options.axis,
        missing: this.missing,
        moments,
        extremes,
        concurrency: this.options.concurrency,
        memoryBudget: this.options.memoryBudget,
        signal: this.options.signal,
      };
      const threads = this.options.threads ?? this.defaultThreads(layout, selection, options.axis);
      ({ partials, chunks } =
        layout && threads > 0
          ? await reduceArrayThreaded(this.array, selection ?? null, { ...local, threads })
          : await reduceArray(this.array, selection ?? null, local));
    }
    const result = finalize(op, partials, this.array.dtype, { packing: this.packing, ddof: options.ddof });
    return {
      ...result,
      chunks,
      bytesRead: bytesReceived ?? this.counter.bytesRead - before,
      ...(bytesReduced !== undefined && { bytesReduced }),
      components: options.components ? partials : undefined,
    };
  }
}
