/**
 * The SIMD unshuffle (src/codecs/shuffle-simd.ts, wasm/shuffle.wat) that reduction workers decode
 * into: the same bytes as the JavaScript unshuffle (itself checked against h5py's shuffle filter in
 * codecs.test.ts) for 4- and 8-byte elements, any element count and trailing bytes; regions go back
 * on release; no room in the arena means undefined (the caller decodes as usual).
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ShuffleCodec, decodeShufflesInto } from "../src/codecs/shuffle.js";
import { ShuffleArena } from "../src/codecs/shuffle-simd.js";
import { ArenaPool } from "../src/stores/arena-pool.js";
import { mulberry32 } from "./support/prng.js";

const ROOT = join(import.meta.dirname, "..");

describe("SIMD unshuffle", () => {
  it("the committed module is what shuffle.wat compiles to", () => {
    execFileSync(process.execPath, [join(ROOT, "scripts", "build-wasm.mjs"), "--check"], { stdio: "pipe" });
  });

  it("gives the JavaScript unshuffle's bytes for 4- and 8-byte elements, any length", () => {
    const arena = new ArenaPool(8 << 20, { minSize: 4096 });
    const target = ShuffleArena.attach(arena)!;
    expect(target, "this runtime runs wasm SIMD").toBeDefined();
    const random = mulberry32(5);
    for (const size of [4, 8] as const) {
      const codec = new ShuffleCodec(size);
      for (const length of [4096, 4100, 4096 + 8 * 15 + 3, 125_000, 200_003, 1 << 20]) {
        const plain = new Uint8Array(length);
        for (let i = 0; i < length; i++) plain[i] = Math.floor(random() * 256);
        const shuffled = codec.encode(plain);
        const ours = target.unshuffle(shuffled, size)!;
        expect(arena.inArena(ours), `${size} ${length}`).toBe(true);
        expect(Buffer.compare(ours, plain), `size ${size}, ${length} bytes`).toBe(0);
        target.release();
      }
    }
    expect(arena.stats.reused, "released regions are used again").toBeGreaterThan(0);
  });

  it("the shuffle codec decodes into the arena while a target is set, as before otherwise", () => {
    const arena = new ArenaPool(1 << 20, { minSize: 4096 });
    const target = ShuffleArena.attach(arena)!;
    const codec = new ShuffleCodec(8);
    const plain = Uint8Array.from({ length: 80_000 }, (_, i) => (i * 7919) % 251);
    const shuffled = codec.encode(plain);
    decodeShufflesInto(target);
    try {
      const a = codec.decodeLocal(shuffled);
      expect(arena.inArena(a)).toBe(true);
      expect(Buffer.compare(a, plain)).toBe(0);
      // A full arena: undefined from the target, and the codec decodes into a plain buffer.
      const big = codec.encode(new Uint8Array(600_000).fill(3));
      const b = codec.decodeLocal(big);
      expect(arena.inArena(b)).toBe(false);
      expect(b.every((v) => v === 3)).toBe(true);
      target.release();
    } finally {
      decodeShufflesInto(undefined);
    }
    expect(arena.inArena(codec.decodeLocal(shuffled))).toBe(false);
  });
});
