/**
 * Without the address space for a WebAssembly memory (`ulimit -v`: V8 reserves about 10 GiB per
 * memory), the engines fall back to plain buffers and JavaScript loops: the in-thread engine's read
 * arena, the workers' arena (raw chunks read there, shuffled ones decoded there). A reduction must
 * still give the result it gives with them, raw and shuffled, in-thread and on workers.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as zarr from "zarrita";
import { openActive } from "../src/active/source.js";
import { closeReducePool } from "../src/active/reduce-pool.js";
import { registerCodecs } from "../src/codecs/registry.js";
import { LocalStore } from "../src/stores/local.js";

const ROOT = join(import.meta.dirname, "..");
const dir = mkdtempSync(join(tmpdir(), "activestore-arena-fallback-"));
const ulimitWorks = (() => {
  try {
    return execFileSync("bash", ["-c", "ulimit -v 8000000 && node -e \"try { new WebAssembly.Memory({ initial: 1 }); console.log('yes') } catch { console.log('no') }\""]).toString().trim() === "no";
  } catch {
    return false;
  }
})();

beforeAll(async () => {
  registerCodecs();
  const store = new LocalStore(dir);
  const data = Float64Array.from({ length: 256 * 300 }, (_, i) => Math.sin(i) * 100);
  // 128 KiB chunks: big enough for the arenas (64 KiB and up).
  for (const [name, codecs] of [
    ["raw", [{ name: "bytes", configuration: { endian: "little" } }]],
    ["shuffled", [{ name: "bytes", configuration: { endian: "little" } }, { name: "numcodecs.shuffle", configuration: { elementsize: 8 } }, { name: "numcodecs.zlib", configuration: { level: 1 } }]],
  ] as const) {
    const arr = await zarr.create(zarr.root(store).resolve(name), { shape: [256, 300], chunkShape: [128, 128], dtype: "float64", codecs: codecs as never });
    await zarr.set(arr, null, { data, shape: [256, 300], stride: [300, 1] });
  }
});
afterAll(async () => {
  await closeReducePool();
  rmSync(dir, { recursive: true, force: true });
});

describe.runIf(ulimitWorks)("no address space for wasm memory (ulimit -v)", () => {
  it("raw and shuffled float64, in-thread and on workers: the same results as with the arenas", async () => {
    expect(existsSync(join(ROOT, "dist", "index.js")), "dist/ (npm run build)").toBe(true);
    const cases: Record<string, string> = {};
    for (const name of ["raw", "shuffled"]) {
      for (const threads of [0, 2]) {
        const active = await openActive(new LocalStore(dir), name, { threads });
        const [mean, variance] = [await active.mean(), await active.variance(null, { axis: [0] })];
        cases[`${name}/${threads}`] = JSON.stringify([mean.value, variance.value]);
      }
    }
    const script = `
      import { openActive, LocalStore, closeReducePool } from ${JSON.stringify(join(ROOT, "dist", "index.js"))};
      const out = {};
      for (const name of ["raw", "shuffled"]) for (const threads of [0, 2]) {
        const active = await openActive(new LocalStore(${JSON.stringify(dir)}), name, { threads });
        const [mean, variance] = [await active.mean(), await active.variance(null, { axis: [0] })];
        out[name + "/" + threads] = JSON.stringify([mean.value, variance.value]);
      }
      try { new WebAssembly.Memory({ initial: 1 }); out.wasm = "yes"; } catch { out.wasm = "no"; }
      await closeReducePool();
      console.log(JSON.stringify(out));`;
    const file = join(dir, "limited.mjs");
    writeFileSync(file, script);
    const stdout = execFileSync("bash", ["-c", `ulimit -v 8000000 && exec node ${JSON.stringify(file)}`], {
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
    }).toString();
    const limited = JSON.parse(stdout.trim().split("\n").at(-1)!) as Record<string, string>;
    expect(limited.wasm, "the child could not make a wasm memory").toBe("no");
    for (const [key, value] of Object.entries(cases)) expect(limited[key], key).toBe(value);
  });
});
