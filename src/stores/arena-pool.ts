/**
 * A BufferPool whose buffers live in one WebAssembly memory, so wasm code (the SIMD kernel) can
 * read what a store read into them in place. Reads bigger than what is left of the arena, and
 * those taken while it is full, get plain buffers from the BufferPool underneath: the arena is an
 * accelerator, never a limit.
 *
 * The memory is sized once and never grows: growing would replace its ArrayBuffer under the views
 * (and reads) that are out. Space is handed out in units of 64 KiB; a freed region is kept for a
 * later request of the same size class (a reduction reads blocks of a few sizes, over and over).
 */
import { BufferPool, giveLease, sizeClass, splitLease, type BufferPoolOptions, type Lease } from "./buffer-pool.js";

const UNIT = 64 * 1024;
const PAGE = 64 * 1024; // a WebAssembly page

export interface ArenaPoolOptions extends BufferPoolOptions {
  /** Bytes at the start of the memory kept for the wasm code's own use (rounded up to 64 KiB). */
  reserved?: number;
}

interface Region extends Lease {
  /** First unit, and units spanned. */
  unit: number;
  units: number;
}

export class ArenaPool extends BufferPool {
  readonly memory: WebAssembly.Memory;
  private readonly firstUnit: number;
  private readonly owner: Int32Array; // unit -> first unit of the region holding it, -1: none
  private readonly regions = new Map<number, Region>();
  private readonly spare = new Map<number, Region[]>(); // free regions by units
  private top: number;

  /** An arena of `capacity` bytes (rounded up to 64 KiB). */
  constructor(capacity: number, options: ArenaPoolOptions = {}) {
    super(options);
    this.firstUnit = Math.ceil((options.reserved ?? 0) / UNIT);
    const units = this.firstUnit + Math.ceil(capacity / UNIT);
    const pages = Math.ceil((units * UNIT) / PAGE);
    this.memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
    this.owner = new Int32Array(units).fill(-1);
    this.top = this.firstUnit;
  }

  /** Whether `view` is in the arena (rather than a plain buffer). */
  inArena(view: ArrayBufferView): boolean {
    return view.buffer === this.memory.buffer;
  }

  override take(size: number): Uint8Array {
    if (!Number.isSafeInteger(size) || size < this.minSize) return super.take(size);
    const units = Math.ceil(sizeClass(size) / UNIT);
    let region = this.spare.get(units)?.pop();
    if (region) this.stats.reused++;
    else if (this.top + units <= this.owner.length) {
      region = { unit: this.top, units, regions: [], free: true };
      this.owner.fill(this.top, this.top, this.top + units);
      this.regions.set(this.top, region);
      this.top += units;
    } else {
      return super.take(size); // the arena is full: a plain buffer
    }
    this.stats.taken++;
    const start = region.unit * UNIT;
    region.free = false;
    region.regions = [{ start, end: start + size }];
    return new Uint8Array(this.memory.buffer, start, size);
  }

  override holds(view: ArrayBufferView): boolean {
    if (!this.inArena(view)) return super.holds(view);
    const region = this.regionOf(view);
    return region !== undefined && !region.free;
  }

  override split(block: Uint8Array, parts: readonly Uint8Array[]): void {
    if (!this.inArena(block)) return super.split(block, parts);
    const region = this.regionOf(block);
    if (region && splitLease(region, block, parts)) this.recycle(region);
  }

  override give(view: ArrayBufferView): void {
    if (!this.inArena(view)) return super.give(view);
    const region = this.regionOf(view);
    if (region && giveLease(region, view)) this.recycle(region);
  }

  private regionOf(view: ArrayBufferView): Region | undefined {
    const first = this.owner[Math.floor(view.byteOffset / UNIT)];
    return first === undefined || first < 0 ? undefined : this.regions.get(first);
  }

  private recycle(region: Region): void {
    region.free = true;
    let list = this.spare.get(region.units);
    if (!list) this.spare.set(region.units, (list = []));
    list.push(region);
  }
}
