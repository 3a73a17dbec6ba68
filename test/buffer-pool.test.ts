/**
 * The buffer pool's accounting: a buffer is handed out again only after every use of it is back.
 * Each test would catch a premature reuse by writing through the new holder and checking the old
 * holder's bytes.
 */
import { describe, expect, it } from "vitest";
import { BufferPool, POOL_LEAD, sizeClass } from "../src/stores/buffer-pool.js";

const MiB = 2 ** 20;

describe("BufferPool", () => {
  it("reuses a buffer given back, and allocates while it is out", () => {
    const pool = new BufferPool();
    const a = pool.take(MiB);
    const b = pool.take(MiB);
    expect(b.buffer).not.toBe(a.buffer);
    pool.give(a);
    const c = pool.take(MiB);
    expect(c.buffer).toBe(a.buffer);
    expect(c.length).toBe(MiB);
    expect(pool.stats).toMatchObject({ taken: 3, reused: 1 });
  });

  it("places pooled bytes POOL_LEAD bytes into their buffer, aligned for every dtype, and counts free bytes by class", () => {
    const pool = new BufferPool();
    const a = pool.take(3_375_000); // a 75^3 float64 chunk
    expect(a.byteOffset).toBe(POOL_LEAD); // off a page-aligned file offset by more than 4K aliasing's reach
    expect(POOL_LEAD % 16).toBe(0);
    expect(new Float64Array(a.buffer, a.byteOffset, a.length / 8).length).toBe(421_875);
    expect(a.buffer.byteLength).toBe(POOL_LEAD + sizeClass(3_375_000));
    pool.give(a);
    expect(pool.stats.freeBytes).toBe(sizeClass(3_375_000));
    const b = pool.take(3_300_000); // same class: the same buffer, same placement
    expect(b.buffer).toBe(a.buffer);
    expect(b.byteOffset).toBe(POOL_LEAD);
    expect(pool.stats.freeBytes).toBe(0);
  });

  it("keeps a split block out until both chunk views are given back", () => {
    const pool = new BufferPool();
    const block = pool.take(2 * MiB);
    const first = block.subarray(0, MiB);
    const second = block.subarray(MiB);
    pool.split(block, [first, second]);
    second.fill(7);
    // The first chunk is done (as a float64 view, the way the engine sees it).
    pool.give(new Float64Array(first.buffer, first.byteOffset, first.length / 8));
    const other = pool.take(2 * MiB);
    expect(other.buffer).not.toBe(block.buffer);
    other.fill(1);
    expect(second.every((v) => v === 7)).toBe(true);
    expect(pool.holds(second)).toBe(true);
    pool.give(second);
    expect(pool.holds(second)).toBe(false);
    expect(pool.take(2 * MiB).buffer).toBe(block.buffer);
  });

  it("refuses a use given back twice, before and after the buffer is free", () => {
    const pool = new BufferPool();
    const block = pool.take(2 * MiB);
    const [x, y] = [block.subarray(0, MiB), block.subarray(MiB)];
    pool.split(block, [x, y]);
    pool.give(x);
    expect(() => pool.give(x)).toThrow(/already given back/);
    pool.give(y);
    expect(() => pool.give(y)).toThrow(/already given back/);
    // The refused gives changed nothing: the block is free exactly once.
    expect(pool.take(2 * MiB).buffer).toBe(block.buffer);
    expect(pool.take(2 * MiB).buffer).not.toBe(block.buffer);
  });

  it("counts repeated and overlapping parts once each", () => {
    const pool = new BufferPool();
    const block = pool.take(MiB);
    const whole = block.subarray(0, MiB);
    const inner = block.subarray(1000, 2000);
    pool.split(block, [inner, whole, block.subarray(1000, 2000)]);
    pool.give(inner);
    pool.give(whole);
    expect(pool.holds(block)).toBe(true);
    pool.give(block.subarray(1000, 2000));
    expect(pool.holds(block)).toBe(false);
  });

  it("ignores views it did not hand out and refuses parts outside the block", () => {
    const pool = new BufferPool();
    expect(() => pool.give(new Uint8Array(MiB))).not.toThrow();
    pool.split(new Uint8Array(10), [new Uint8Array(5)]); // not pooled: left alone
    const block = pool.take(MiB);
    expect(() => pool.split(block.subarray(0, 100), [block.subarray(50, 200)])).toThrow(/inside the block/);
    expect(() => pool.split(block, [new Uint8Array(4)])).toThrow(/inside the block/);
  });

  it("hands small reads plain buffers", () => {
    const pool = new BufferPool({ minSize: 4096 });
    const small = pool.take(100);
    pool.give(small);
    expect(pool.take(100).buffer).not.toBe(small.buffer);
    expect(pool.stats.taken).toBe(0);
  });

  it("keeps at most maxFreeBytes of free buffers", () => {
    const pool = new BufferPool({ maxFreeBytes: 2 * MiB });
    const bufs = [pool.take(MiB), pool.take(MiB), pool.take(MiB)];
    for (const b of bufs) pool.give(b);
    expect(pool.stats.freeBytes).toBe(2 * MiB);
    const again = [pool.take(MiB), pool.take(MiB), pool.take(MiB)];
    expect(pool.stats.reused).toBe(2);
    expect(new Set(again.map((b) => b.buffer)).size).toBe(3);
    // The one dropped is still known as given back: a stale give of it is refused.
    expect(() => pool.give(bufs[2])).toThrow(/already given back/);
  });

  it("serves nearby sizes from one size class", () => {
    expect(sizeClass(3_375_000)).toBeGreaterThanOrEqual(3_375_000);
    expect(sizeClass(3_375_000)).toBeLessThan(3_375_000 * 1.125);
    const pool = new BufferPool();
    const a = pool.take(3_375_000);
    pool.give(a);
    const b = pool.take(3_300_000);
    expect(b.buffer).toBe(a.buffer);
    expect(b.length).toBe(3_300_000);
    expect(() => pool.take(-1)).toThrow(RangeError);
  });
});
