/** A chunk whose decoded data is shorter than its shape is an error naming the chunk, never values read past its end. */
import { describe, expect, it } from "vitest";
import { reduceArray, type ChunkSource } from "../src/active/engine.js";
import { CodecError } from "../src/errors.js";

describe("decoded chunk size", () => {
  it("the in-thread engine refuses a chunk that decoded short", async () => {
    const array: ChunkSource = {
      shape: [4, 6],
      chunks: [2, 6],
      dtype: "float64",
      async getChunk(coords) {
        // Chunk 1.0 decodes to 10 of its 12 elements (a damaged stream that still inflates).
        const n = coords[0] === 1 ? 10 : 12;
        return { data: new Float64Array(n).fill(1), shape: [2, 6], stride: [6, 1] };
      },
    };
    const error = await reduceArray(array, null, { buffers: false }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CodecError);
    expect((error as CodecError).chunkKey).toBe("1.0");
    expect((error as Error).message).toMatch(/decoded 10 elements.*holds 12/);
  });

  it("whole chunks reduce", async () => {
    const array: ChunkSource = {
      shape: [4, 6],
      chunks: [2, 6],
      dtype: "float64",
      async getChunk() {
        return { data: new Float64Array(12).fill(1), shape: [2, 6], stride: [6, 1] };
      },
    };
    const { partials } = await reduceArray(array, null, { buffers: false });
    expect(partials.count[0]).toBe(24);
    expect(partials.sum[0]).toBe(24);
  });
});
