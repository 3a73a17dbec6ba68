/**
 * Reusable read buffers. Reading a large selection chunk by chunk allocated a fresh buffer per
 * read (1.16 GB for a 500³ float64 variable): page faults and garbage collection took a third of
 * the work. A reader takes its destination from a pool, and the consumer gives each chunk's bytes
 * back once it is done with them, so the same few buffers carry the whole read.
 *
 * Safety is the point: a buffer is handed out again only when every use of it has been given back.
 * A block read once and cut into several chunk views is `split`: each view is one use, and the
 * block is reusable after the last of them comes back. A use never given back (an error, a caller
 * that keeps the bytes) just keeps its buffer out of the pool; the garbage collector takes it, since
 * the pool knows its buffers only through a WeakMap. Giving back a view the pool did not hand out
 * (a decoded copy, a fill chunk) is a no-op, so a consumer can give whatever it received.
 *
 * The contract for the layers in between: whoever cuts a pooled buffer into views it hands on calls
 * `split`; a layer that keeps bytes (a cache) must not pass a pool down; a layer that transforms
 * bytes (decompression) gives the pooled input back itself and hands on its new bytes.
 */

export interface BufferPoolOptions {
  /** Bytes of free buffers kept for reuse; more are left to the garbage collector. Default 64 MiB. */
  maxFreeBytes?: number;
  /** Reads smaller than this get a plain new buffer: pooling them saves nothing. Default 64 KiB. */
  minSize?: number;
}

export interface BufferPoolStats {
  /** Buffers handed out by `take`. */
  taken: number;
  /** Of those, how many were reused rather than allocated. */
  reused: number;
  /** Bytes of free buffers held now. */
  freeBytes: number;
}

/** One pooled buffer: the byte regions of it that are out (one per use), none when free. */
export interface Lease {
  regions: { start: number; end: number }[];
  free: boolean;
}

/**
 * `block` (a use of the lease) is handed on as `parts`, views inside it: one use per part. True
 * when no use is left (no parts).
 */
export function splitLease(lease: Lease, block: Uint8Array, parts: readonly Uint8Array[]): boolean {
  const i = findRegion(lease, block);
  if (i < 0) throw new Error("BufferPool.split: the block is not out (already given back or split)");
  const start = block.byteOffset;
  const end = start + block.byteLength;
  const regions = parts.map((p) => {
    if (p.buffer !== block.buffer || p.byteOffset < start || p.byteOffset + p.byteLength > end) {
      throw new Error("BufferPool.split: a part is not a view inside the block");
    }
    return { start: p.byteOffset, end: p.byteOffset + p.byteLength };
  });
  lease.regions.splice(i, 1, ...regions);
  return lease.regions.length === 0;
}

/** One use, `view`, comes back; true when it was the last. Throws for a use that is not out. */
export function giveLease(lease: Lease, view: ArrayBufferView): boolean {
  const i = lease.free ? -1 : findRegion(lease, view);
  if (i < 0) throw new Error("BufferPool.give: this view was already given back (or never handed out)");
  lease.regions.splice(i, 1);
  return lease.regions.length === 0;
}

/** The tightest out region containing `view`: with overlapping parts, each gets its own back. */
function findRegion(lease: Lease, view: ArrayBufferView): number {
  const start = view.byteOffset;
  const end = start + view.byteLength;
  let best = -1;
  for (let i = 0; i < lease.regions.length; i++) {
    const r = lease.regions[i];
    if (r.start <= start && end <= r.end && (best < 0 || r.end - r.start < lease.regions[best].end - lease.regions[best].start)) {
      best = i;
    }
  }
  return best;
}

/**
 * Size classes: a request is rounded up to a multiple of an eighth of its power of two, so a
 * buffer fits requests within 12.5% of its size and a pool serves slightly varying sizes (chunks
 * compressed to different lengths, blocks of a few chunks) from few classes.
 */
export function sizeClass(size: number): number {
  if (size <= 4096) return 4096;
  const step = 2 ** (Math.floor(Math.log2(size)) - 3);
  return Math.ceil(size / step) * step;
}

/**
 * Where a pooled buffer's bytes start. Large ArrayBuffers come from malloc's mmap path, 16 bytes
 * past a page boundary, and a read from a page-aligned file offset into them (a whole chunk file,
 * offset 0) makes the kernel copy to an address 16 bytes past the source modulo 4096: a 4K-aliasing
 * stall that made such copies 1.6x slower here (bench notes in RESULTS, "Fifth session"). 64 bytes
 * in, the distance is 80 and the copy runs at full speed; a view stays aligned for every dtype.
 */
export const POOL_LEAD = 64;

export class BufferPool {
  readonly stats: BufferPoolStats = { taken: 0, reused: 0, freeBytes: 0 };
  private readonly leases = new WeakMap<ArrayBuffer, Lease>();
  private readonly free = new Map<number, ArrayBuffer[]>();
  private readonly maxFreeBytes: number;
  protected readonly minSize: number;

  constructor(options: BufferPoolOptions = {}) {
    this.maxFreeBytes = options.maxFreeBytes ?? 64 * 2 ** 20;
    this.minSize = options.minSize ?? 64 * 1024;
  }

  /** A buffer of `size` bytes (contents undefined), out as one use until given back or split. */
  take(size: number): Uint8Array {
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`buffer size ${size} is not a byte count`);
    if (size < this.minSize) return new Uint8Array(size);
    this.stats.taken++;
    const cls = sizeClass(size);
    const list = this.free.get(cls);
    let buffer = list?.pop();
    if (buffer) {
      this.stats.reused++;
      this.stats.freeBytes -= cls;
      const lease = this.leases.get(buffer)!;
      lease.free = false;
      lease.regions = [{ start: POOL_LEAD, end: POOL_LEAD + size }];
    } else {
      buffer = new ArrayBuffer(POOL_LEAD + cls);
      this.leases.set(buffer, { regions: [{ start: POOL_LEAD, end: POOL_LEAD + size }], free: false });
    }
    return new Uint8Array(buffer, POOL_LEAD, size);
  }

  /** Whether `view` lies in a buffer of this pool that is out (taken and not fully given back). */
  holds(view: ArrayBufferView): boolean {
    const lease = this.leases.get(view.buffer as ArrayBuffer);
    return lease !== undefined && !lease.free;
  }

  /**
   * Declares that `block` (a use of a pooled buffer) is handed on as `parts`, views inside it: the
   * block's use becomes one use per part (overlapping or repeated parts count once each). A block
   * not from this pool is left alone.
   */
  split(block: Uint8Array, parts: readonly Uint8Array[]): void {
    const lease = this.leases.get(block.buffer as ArrayBuffer);
    if (lease && splitLease(lease, block, parts)) this.release(block.buffer as ArrayBuffer, lease);
  }

  /**
   * Gives back one use: `view` is (a view inside) something this pool handed out. The buffer is
   * reused once all its uses are back. Views of other buffers are ignored. Giving back a use that is
   * not out (the same chunk twice) throws: it would let the buffer be reused under another reader.
   */
  give(view: ArrayBufferView): void {
    const lease = this.leases.get(view.buffer as ArrayBuffer);
    if (lease && giveLease(lease, view)) this.release(view.buffer as ArrayBuffer, lease);
  }

  private release(buffer: ArrayBuffer, lease: Lease): void {
    lease.free = true;
    if (buffer.byteLength === 0) return; // transferred to a worker while out: nothing left to reuse
    const cls = buffer.byteLength - POOL_LEAD;
    if (this.stats.freeBytes + cls > this.maxFreeBytes) return; // over the bound: left to the GC
    let list = this.free.get(cls);
    if (!list) this.free.set(cls, (list = []));
    list.push(buffer);
    this.stats.freeBytes += cls;
  }
}
