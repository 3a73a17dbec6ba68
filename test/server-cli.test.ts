/** `activestore serve` registered on a program: listens, serves, and stops on SIGTERM. */
import { writeFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { expect, test, vi } from "vitest";
import { register } from "../src/cli/commands/serve.js";

test("serve: --config plus flags, prints its URL, answers, and shuts down on SIGTERM", async () => {
  const dir = await mkdtemp(join(tmpdir(), "serve-cli-"));
  const config = join(dir, "server.json");
  await writeFile(config, JSON.stringify({ maxBodyBytes: 100, allowHosts: ["data.example.org"] }));
  const program = new Command("activestore").option("--concurrency <n>", "global", Number).exitOverride();
  register(program);
  const printed: string[] = [];
  const out = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => (printed.push(String(chunk)), true));
  const err = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
  try {
    const running = program.parseAsync(["node", "activestore", "serve", "--port", "0", "--config", config, "--allow-host", "127.0.0.1,localhost"]);
    await vi.waitFor(() => expect(printed.join("")).toMatch(/^http:\/\/127\.0\.0\.1:\d+\n/), { timeout: 10_000 });
    const url = printed.join("").trim();
    const big = await fetch(`${url}/v2/sum`, { method: "POST", body: "x".repeat(200) });
    expect(big.status).toBe(413); // maxBodyBytes came from the config file
    const refused = await fetch(`${url}/v2/sum`, {
      method: "POST",
      body: JSON.stringify({ interface_type: "http", url: "http://data.example.org/x", dtype: "int32" }),
    });
    expect(refused.status).toBe(403); // --allow-host replaced the file's list
    process.emit("SIGTERM");
    await running;
    await expect(fetch(`${url}/metrics`)).rejects.toThrow();
  } finally {
    out.mockRestore();
    err.mockRestore();
    await rm(dir, { recursive: true, force: true });
  }
});
