/**
 * Memory of coalesced reads: a block a reader has consumed must be collectable while other
 * requests of the same batch are still in flight (it used to stay alive until the whole batch
 * finished, doubling peak RSS of a whole-variable read).
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BatchReader } from "../src/refs/batch-reader.js";
import type { TargetStore } from "../src/refs/resolve.js";
import { BufferPool } from "../src/stores/buffer-pool.js";
import { LocalStore } from "../src/stores/local.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

describe("BatchReader memory", () => {
  it("drops a settled block while the batch's other requests are pending", async () => {
    let releaseSecond!: () => void;
    const secondGate = new Promise<void>((r) => (releaseSecond = r));
    let firstBlock: WeakRef<ArrayBuffer> | undefined;
    const target: TargetStore = {
      async get() {
        return undefined;
      },
      async getRange(_key, range) {
        const bytes = new Uint8Array(range.length).fill(range.offset === 0 ? 1 : 2);
        if (range.offset === 0) firstBlock = new WeakRef(bytes.buffer);
        else await secondGate;
        return bytes;
      },
    };
    // Two spans 64 MiB apart: two requests in one batch, one group.
    const reader = new BatchReader({ coalesceGap: 1024, maxBlock: 1 << 20 });
    // Only the first byte is kept: the caller holds no view of the block.
    const firstByte = reader.read(target, "file", { offset: 0, length: 1 << 20 }).then((b) => b![0]);
    const second = reader.read(target, "file", { offset: 64 << 20, length: 1 << 20 });
    expect(await firstByte).toBe(1);
    // Let the read's own promise chain settle, then collect.
    await new Promise((r) => setImmediate(r));
    gc();
    await new Promise((r) => setImmediate(r));
    gc();
    expect(firstBlock).toBeDefined();
    expect(firstBlock!.deref()).toBeUndefined();
    releaseSecond();
    expect((await second)![0]).toBe(2);
  });

  it("lets the collector take a pooled block that is never given back", async () => {
    const dir = mkdtempSync(join(tmpdir(), "batch-memory-"));
    try {
      writeFileSync(join(dir, "file"), new Uint8Array(2 << 20).fill(3));
      const pool = new BufferPool();
      const reader = new BatchReader();
      const store = new LocalStore(dir);
      let block: WeakRef<ArrayBuffer> | undefined;
      await Promise.all([
        reader.read(store, "file", { offset: 0, length: 1 << 20 }, pool),
        reader.read(store, "file", { offset: 1 << 20, length: 1 << 20 }, pool),
      ]).then(([a, b]) => {
        expect(pool.holds(a!) && a!.buffer === b!.buffer).toBe(true);
        block = new WeakRef(a!.buffer as ArrayBuffer);
        pool.give(a!); // one of its two uses back; the other reader drops its view
      });
      await new Promise((r) => setImmediate(r));
      gc();
      await new Promise((r) => setImmediate(r));
      gc();
      expect(block!.deref()).toBeUndefined();
      expect(pool.stats.freeBytes).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
