/**
 * SIMD unshuffle for 8- and 4-byte elements into an arena (wasm memory): the reduction workers
 * decode shuffled chunks there, so the kernel's SIMD fold then reads the elements in place. The
 * inflated input is copied into the arena first (wasm reads only its own memory); the copy costs
 * less than the JavaScript unshuffle saves.
 */
import type { ArenaPool } from "../stores/arena-pool.js";
import { SHUFFLE_WASM } from "./wasm/shuffle-bytes.js";

/** Unshuffles the first `count` elements of planes `n` bytes long. */
type Unshuffle = (src: number, dst: number, n: number, count: number) => void;

let compiled: WebAssembly.Module | null | undefined;

/**
 * Where a thread's shuffle codecs decode 4- and 8-byte elements: regions of `arena`, held until
 * `release()`. A reduction worker decodes one chunk at a time and releases after reducing it, so a
 * region never outlives its chunk even when a later codec (a byte swap) copies the data elsewhere.
 */
export class ShuffleArena {
  private readonly held: Uint8Array[] = [];

  private constructor(
    readonly arena: ArenaPool,
    private readonly fns: { 4: Unshuffle; 8: Unshuffle },
  ) {}

  /** Undefined when this runtime has no wasm SIMD. */
  static attach(arena: ArenaPool): ShuffleArena | undefined {
    if (compiled === undefined) {
      try {
        compiled = new WebAssembly.Module(Buffer.from(SHUFFLE_WASM, "base64"));
      } catch {
        compiled = null;
      }
    }
    if (!compiled) return undefined;
    const { exports } = new WebAssembly.Instance(compiled, { env: { memory: arena.memory } });
    return new ShuffleArena(arena, { 4: exports.unshuffle4 as Unshuffle, 8: exports.unshuffle8 as Unshuffle });
  }

  /**
   * `src` unshuffled (elements of `size` bytes, trailing bytes kept as they are) into the arena, or
   * undefined when the arena has no room: the caller unshuffles as usual.
   */
  unshuffle(src: Uint8Array, size: 4 | 8): Uint8Array | undefined {
    const arena = this.arena;
    const input = arena.take(src.length);
    const out = arena.take(src.length);
    if (!arena.inArena(input) || !arena.inArena(out)) {
      arena.give(input);
      arena.give(out);
      return undefined;
    }
    this.held.push(out); // given back by release(), even if what follows throws
    try {
      input.set(src);
      const n = Math.floor(src.length / size);
      const simd = n - (n % 16);
      this.fns[size](input.byteOffset, out.byteOffset, n, simd);
      // The last n mod 16 elements byte by byte, then the bytes past the last whole element.
      for (let b = 0; b < size; b++) {
        for (let i = simd; i < n; i++) out[i * size + b] = input[b * n + i];
      }
      out.set(input.subarray(n * size), n * size);
    } finally {
      arena.give(input);
    }
    return out;
  }

  /** Gives back every region handed out since the last release. */
  release(): void {
    for (const out of this.held.splice(0)) this.arena.give(out);
  }
}
