import { describe, expect, test } from "vitest";
import { registerCodecs } from "../src/codecs/index.js";
import { CodecChains } from "../src/server/chains.js";
import type { ReductionRequest } from "../src/server/request.js";

registerCodecs();
type ChainRequest = Pick<ReductionRequest, "codecs" | "dtype" | "shape">;
const zlib: ChainRequest = { codecs: [{ id: "shuffle", elementsize: 4 }, { id: "zlib" }], dtype: "float32", shape: [4, 5] };

describe("codec chains shared across requests", () => {
  test("one chain per codecs, dtype and shape; it decodes what the codecs encoded", async () => {
    const chains = new CodecChains(8);
    const a = await chains.get(zlib);
    expect(await chains.get({ ...zlib, codecs: zlib.codecs.map((c) => ({ ...c })) })).toBe(a);
    expect(await chains.get({ ...zlib, shape: [5, 4] })).not.toBe(a);
    expect(await chains.get({ ...zlib, dtype: "int32" })).not.toBe(a);
    const values = new Float32Array(20).map((_, i) => i * 1.5);
    const encoded = await a.encode(new Uint8Array(values.buffer));
    expect(new Float32Array((await a.decode(encoded)).slice().buffer)).toEqual(values);
    // The chain checks the decoded length against the shape it was built for.
    await expect((await chains.get({ ...zlib, shape: [5, 5] })).decode(encoded)).rejects.toThrow(/decoded 80 bytes/);
  });

  test("least recently used chains go first; a chain that failed to load is not kept", async () => {
    const chains = new CodecChains(2);
    const a = await chains.get(zlib);
    const b = await chains.get({ ...zlib, shape: [1] });
    expect(await chains.get(zlib)).toBe(a); // a is now the most recent
    await chains.get({ ...zlib, shape: [2] }); // evicts b
    expect(await chains.get(zlib)).toBe(a);
    expect(await chains.get({ ...zlib, shape: [1] })).not.toBe(b);
    const bad: ChainRequest = { codecs: [{ id: "no-such-codec" }], dtype: "float32", shape: [1] };
    const first = chains.get(bad);
    await expect(first).rejects.toThrow(/unknown codec id "no-such-codec"/);
    expect(chains.get(bad)).not.toBe(first);
    await expect(chains.get(bad)).rejects.toThrow(/unknown codec/);
  });
});
