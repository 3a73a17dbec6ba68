/** `npm start`: the whole pipeline on data/demo.nc, including the server part over embedded S3. */
import { describe, expect, test } from "vitest";
import { runDemo } from "../src/cli/commands/demo.js";
import { resultJson } from "../src/cli/commands/reduce.js";
import { Active } from "../src/active/active.js";
import { demoFile } from "../src/cli/commands/demo.js";

describe("demo", () => {
  test("runs every step, and the server's answers equal the local ones", async () => {
    const lines: string[] = [];
    await runDemo((line) => lines.push(line));
    const text = lines.join("\n");
    for (const step of ["1. stored demo.nc", "2. built kerchunk references", "3. zarrita", "4. active", "5. the same"]) {
      expect(text).toContain(step);
    }
    const local = await (await Active.open(demoFile(), "tas")).mean();
    const serverLine = lines.find((l) => l.includes("mean of tas") && l.includes("server"))!;
    const [, viaLocal, viaServer] = /local (\S+) .* server (\S+)/.exec(serverLine)!;
    expect(Number(viaLocal)).toBeCloseTo(local.value as number, 3);
    expect(viaServer).toBe(viaLocal);
  });

  test("reduce --json spells bigints and non-finite numbers so JSON parsers keep them", () => {
    const json = resultJson({
      op: "sum", value: 2n ** 60n, count: 3, shape: [], dtype: "int64", missing: false, chunks: 1, bytesRead: 8,
    });
    expect(JSON.parse(json).value).toBe("1152921504606846976");
    expect(JSON.parse(resultJson({ op: "mean", value: NaN, count: 1, shape: [], dtype: "float64", missing: false, chunks: 1, bytesRead: 8 })).value).toBe("NaN");
  });
});
