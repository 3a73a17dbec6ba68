/**
 * The built `activestore` CLI, run as a child process against the real disk and s3rver: the
 * done-when check (`cp -r ./dir s3://bucket/prefix` and back is byte-for-byte), ls/cat/du/rm, and
 * the one-line failure contract.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGcsServer } from "./servers/gcs.js";
import { startHttpServer } from "./servers/nginx.js";
import { S3RVER_CREDENTIALS, startS3rver, type S3rverHandle } from "./servers/s3rver.js";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
let build: string; // temp outDir inside the repo, so the build resolves node_modules
let cli: string;
let work: string;
let s3: S3rverHandle;

interface Run {
  code: number;
  stdout: Buffer;
  stderr: string;
}

function run(args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<Run> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [cli, ...args],
      {
        cwd: options.cwd ?? work,
        encoding: "buffer",
        maxBuffer: 64 * 2 ** 20,
        env: {
          ...process.env,
          AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
          AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
          AWS_REGION: "us-east-1",
          AWS_ENDPOINT_URL: s3.endpoint,
          ...options.env,
        },
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        done({ code, stdout, stderr: stderr.toString() });
      },
    );
  });
}

/** Every file under `root` with its bytes, keyed by `/`-separated relative path. */
async function tree(root: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    out.set(relative(root, path).split("\\").join("/"), await readFile(path));
  }
  return out;
}

function expectOneLineFailure(result: Run, pattern: RegExp): void {
  expect(result.code).not.toBe(0);
  expect(result.stderr).toMatch(/^activestore: .+\n$/);
  expect(result.stderr).toMatch(pattern);
}

beforeAll(async () => {
  await mkdir(join(repo, "node_modules/.cache"), { recursive: true });
  build = await mkdtemp(join(repo, "node_modules/.cache/cli-test-"));
  // Only the CLI's import graph is compiled, so half-written modules elsewhere cannot break it.
  const config = {
    extends: join(repo, "tsconfig.build.json"),
    compilerOptions: { outDir: join(build, "out"), rootDir: join(repo, "src"), sourceMap: false, declaration: false },
    // The ambient declarations (WebAssembly, seek-bzip) come with it: tsconfig.build.json's include does.
    files: [join(repo, "src/cli/main.ts"), join(repo, "src/active/wasm/webassembly.d.ts"), join(repo, "src/codecs/seek-bzip.d.ts")],
    include: [],
  };
  await writeFile(join(build, "tsconfig.json"), JSON.stringify(config));
  // tsc emits despite type errors; a type error in another module (reported by `npm run typecheck`)
  // must not hide what the CLI does, so only a missing output fails here.
  const diagnostics = await new Promise<string>((done) =>
    execFile(
      process.execPath,
      [join(repo, "node_modules/typescript/bin/tsc"), "-p", join(build, "tsconfig.json")],
      (error, stdout) => done(error ? stdout : ""),
    ),
  );
  cli = join(build, "out/cli/main.js");
  await stat(cli).catch(() => {
    throw new Error(`the CLI did not build:\n${diagnostics}`);
  });
  if (diagnostics) console.warn(`tsc reported (output still built):\n${diagnostics}`);
  work = await mkdtemp(join(tmpdir(), "activestore-cli-"));
  s3 = await startS3rver({ buckets: ["bucket"] });
}, 120_000);

afterAll(async () => {
  await s3?.stop();
  if (work) await rm(work, { recursive: true, force: true });
  if (build) await rm(build, { recursive: true, force: true });
});

describe("activestore CLI", () => {
  it("reports the package version and lists its commands", async () => {
    const pkg = JSON.parse(await readFile(join(repo, "package.json"), "utf8")) as { version: string };
    const version = await run(["--version"]);
    expect(version.code).toBe(0);
    expect(version.stdout.toString().trim()).toBe(pkg.version);
    const help = await run(["--help"]);
    expect(help.code).toBe(0);
    const commands = ["ls", "cat", "cp", "rm", "du", "refs", "combine", "dump", "convert", "reduce", "serve", "demo"];
    for (const command of commands) expect(help.stdout.toString()).toContain(`  ${command} `);
  });

  it("round-trips a directory through S3 byte for byte (cp -r there and back)", async () => {
    const src = join(work, "tree");
    const files: Record<string, Buffer> = {
      "a.bin": randomBytes(200_000),
      "empty.dat": Buffer.alloc(0),
      "nested/deeper/b.nc": randomBytes(3 * 2 ** 20 + 17),
      "nested/c d é.txt": Buffer.from("spaces and unicode in a key\n"),
    };
    for (let i = 0; i < 150; i++) files[`many/${String(i).padStart(3, "0")}`] = randomBytes(1 + i * 37);
    for (const [path, bytes] of Object.entries(files)) {
      await mkdir(dirname(join(src, path)), { recursive: true });
      await writeFile(join(src, path), bytes);
    }

    const up = await run(["cp", "-r", "./tree", "s3://bucket/prefix", "--concurrency", "8"]);
    expect(up.stderr).toBe("");
    expect(up.code).toBe(0);
    const down = await run(["cp", "-r", "s3://bucket/prefix", join(work, "back")]);
    expect(down.stderr).toBe("");
    expect(down.code).toBe(0);

    const back = await tree(join(work, "back"));
    expect([...back.keys()].sort()).toEqual(Object.keys(files).sort());
    for (const [path, bytes] of Object.entries(files)) expect(back.get(path)!.equals(bytes), path).toBe(true);
  });

  it("ls shows first-level entries, -r every key, -l sizes", async () => {
    const ls = await run(["ls", "s3://bucket/prefix"]);
    expect(ls.code).toBe(0);
    expect(ls.stdout.toString().split("\n").filter(Boolean).sort()).toEqual(["a.bin", "empty.dat", "many/", "nested/"]);

    const all = await run(["ls", "-r", "s3://bucket/prefix/nested"]);
    expect(all.stdout.toString().split("\n").filter(Boolean).sort()).toEqual(["c d é.txt", "deeper/b.nc"]);

    const long = await run(["ls", "-l", "-r", "./tree/nested"]);
    const sizes = long.stdout
      .toString()
      .split("\n")
      .filter(Boolean)
      .map((line) => line.trim().split(/\s+/));
    const b = sizes.find((fields) => fields.at(-1) === "deeper/b.nc");
    expect(b?.[0]).toBe(String(3 * 2 ** 20 + 17));
  });

  it("du totals sizes and counts objects, -h in binary units", async () => {
    const local = await tree(join(work, "tree"));
    let total = 0;
    for (const bytes of local.values()) total += bytes.length;
    const du = await run(["du", "s3://bucket/prefix"]);
    expect(du.code).toBe(0);
    expect(du.stdout.toString()).toBe(`${total}\t${local.size} objects\ts3://bucket/prefix\n`);
    const human = await run(["du", "-h", "./tree/nested/deeper"]);
    expect(human.stdout.toString()).toBe("3.0 MiB\t1 object\t./tree/nested/deeper\n");
  });

  it("cat writes an object or an inclusive byte range to stdout", async () => {
    const original = await readFile(join(work, "tree/a.bin"));
    const whole = await run(["cat", "s3://bucket/prefix/a.bin"]);
    expect(whole.code).toBe(0);
    expect(whole.stdout.equals(original)).toBe(true);

    const range = await run(["cat", "s3://bucket/prefix/a.bin", "--range", "1000-1999"]);
    expect(range.stdout.equals(original.subarray(1000, 2000))).toBe(true);
    const open = await run(["cat", "./tree/a.bin", "--range", "199990-"]);
    expect(open.stdout.equals(original.subarray(199_990))).toBe(true);
    const suffix = await run(["cat", "./tree/a.bin", "--range", "-5"]);
    expect(suffix.stdout.equals(original.subarray(-5))).toBe(true);
  });

  it("cp --compress stores compressed objects that read back as the original", async () => {
    const text = Buffer.from("temperature,pressure\n".repeat(5000));
    await writeFile(join(work, "table.csv"), text);
    const up = await run(["cp", "table.csv", "s3://bucket/zipped/", "--compress", "gzip"]);
    expect(up.stderr).toBe("");
    const du = await run(["du", "s3://bucket/zipped/table.csv"]);
    const stored = Number(du.stdout.toString().split("\t")[0]);
    // Stored size is the gzip stream's size, far below the 105 kB of text.
    expect(stored).toBeLessThan(text.length / 20);
    expect(Math.abs(stored - gzipSync(text).length)).toBeLessThan(64);
    const cat = await run(["cat", "s3://bucket/zipped/table.csv"]);
    expect(cat.stdout.equals(text)).toBe(true);
    // And back to disk: the copy is decompressed on read.
    await run(["cp", "s3://bucket/zipped/table.csv", join(work, "table-back.csv")]);
    expect((await readFile(join(work, "table-back.csv"))).equals(text)).toBe(true);
  });

  it("cp of one object into a directory keeps its name", async () => {
    await mkdir(join(work, "into"));
    const r = await run(["cp", "s3://bucket/prefix/nested/deeper/b.nc", "into"]);
    expect(r.code).toBe(0);
    expect((await stat(join(work, "into/b.nc"))).size).toBe(3 * 2 ** 20 + 17);
  });

  it("copies between any two stores: s3:// → gs:// → file://, and cats over http://", async () => {
    const gcs = await startGcsServer({ buckets: ["gbucket"] });
    const web = await startHttpServer(join(work, "tree"));
    try {
      const env = { STORAGE_EMULATOR_HOST: gcs.url };
      const toGcs = await run(["cp", "-r", "s3://bucket/prefix/nested", "gs://gbucket/copy"], { env });
      expect(toGcs.stderr).toBe("");
      const listed = await run(["ls", "-r", "gs://gbucket/copy"], { env });
      expect(listed.stdout.toString().split("\n").filter(Boolean).sort()).toEqual(["c d é.txt", "deeper/b.nc"]);
      const target = pathToFileURL(join(work, "from-gcs")).href;
      const toDisk = await run(["cp", "-r", "gs://gbucket/copy", target], { env });
      expect(toDisk.stderr).toBe("");
      const expected = await tree(join(work, "tree/nested"));
      const copied = await tree(join(work, "from-gcs"));
      expect([...copied.keys()].sort()).toEqual([...expected.keys()].sort());
      for (const [path, bytes] of expected) expect(copied.get(path)!.equals(bytes), path).toBe(true);

      const original = await readFile(join(work, "tree/nested/deeper/b.nc"));
      const cat = await run(["cat", `${web.url}/nested/deeper/b.nc`, "--range", "1048576-1049599"]);
      expect(cat.stderr).toBe("");
      expect(cat.stdout.equals(original.subarray(1_048_576, 1_049_600))).toBe(true);
      // An HTTP server cannot list: the CLI says so instead of copying nothing.
      expectOneLineFailure(await run(["ls", web.url]), /list/i);
    } finally {
      await web.stop();
      await gcs.stop();
    }
  });

  it("rm deletes one object, rm -r a prefix", async () => {
    expect((await run(["rm", "s3://bucket/prefix/a.bin"])).code).toBe(0);
    expect((await run(["ls", "s3://bucket/prefix"])).stdout.toString()).not.toContain("a.bin");
    const r = await run(["rm", "-r", "s3://bucket/prefix/many"]);
    expect(r.code).toBe(0);
    const du = await run(["du", "s3://bucket/prefix"]);
    expect(du.stdout.toString()).toMatch(/\t3 objects\t/);
    expectOneLineFailure(await run(["ls", "s3://bucket/prefix/many"]), /no objects at s3:\/\/bucket\/prefix\/many/);
  });

  it("fails with one line and no stack; --debug adds the stack", async () => {
    const missing = await run(["cat", "s3://bucket/prefix/nope.nc"]);
    expectOneLineFailure(missing, /no such object: s3:\/\/bucket\/prefix\/nope\.nc/);
    expect(missing.code).toBe(1);
    expectOneLineFailure(await run(["rm", "./tree/nope"]), /no such object/);
    expectOneLineFailure(await run(["cp", "-r", "./missing-dir", "s3://bucket/x"]), /no objects at \.\/missing-dir$/m);
    expectOneLineFailure(await run(["cp", "./tree", "s3://bucket/x"]), /\.\/tree is a directory; use cp -r/);
    expectOneLineFailure(await run(["rm", "-r", "s3://bucket/never"]), /no objects at s3:\/\/bucket\/never$/m);

    const usage = await run(["cat", "./tree/a.bin", "--range", "9-1"]);
    expectOneLineFailure(usage, /invalid --range "9-1"/);
    expect(usage.code).toBe(2);
    const unknown = await run(["ls", "--bogus"]);
    expectOneLineFailure(unknown, /unknown option '--bogus'/);
    expect(unknown.code).toBe(2);

    // A server that is not there: a StoreError after the configured attempts, not "missing".
    const port = await new Promise<number>((done) => {
      const server = createServer().listen(0, "127.0.0.1", () => {
        const { port: p } = server.address() as AddressInfo;
        server.close(() => done(p));
      });
    });
    const args = ["cat", "s3://bucket/a.bin", "--endpoint", `http://127.0.0.1:${port}`, "--retries", "1"];
    const down = await run(args);
    expectOneLineFailure(down, /get s3:\/\/bucket key "a\.bin"/);
    expect(down.stderr).not.toMatch(/no such object/);
    const debug = await run([...args, "--debug"]);
    expect(debug.code).toBe(1);
    expect(debug.stderr.split("\n")[0]).toMatch(/^activestore: /);
    expect(debug.stderr).toMatch(/\n\s+at /);
  });
});
