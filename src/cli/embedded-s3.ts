/**
 * s3rver in a child process: the embedded S3 of `activestore demo`, and the S3 server of the test
 * suite (test/servers/s3rver.ts re-exports this). It runs under `node --openssl-legacy-provider` (its
 * signature code needs the legacy hashes), on 127.0.0.1 with an ephemeral port and a fresh temp
 * directory, so parallel test files never share a server or a bucket.
 *
 * s3rver accepts any V4 signature from the access key S3RVER / S3RVER and unsigned requests as
 * anonymous. Known deviations from S3 that tests must not rely on: suffix ranges (`bytes=-N`) are
 * served as `bytes=0-N`, and `bytes=0-0` as the whole object.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

export const S3RVER_CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };

export interface S3rverHandle {
  /** `http://127.0.0.1:<port>`, for `endpoint` with `forcePathStyle: true`. */
  endpoint: string;
  /** s3rver's filesystem root: `<directory>/<bucket>/<key>._S3rver_object` holds an object's bytes. */
  directory: string;
  stop(): Promise<void>;
}

// Runs in the child: start s3rver, report the port on stdout, exit when the parent goes away
// (stdin closes), so a crashed test run leaves no server behind.
const CHILD = `
const S3rver = require(process.env.S3RVER_MODULE);
const server = new S3rver({
  address: "127.0.0.1",
  port: 0,
  silent: true,
  directory: process.env.S3RVER_DIR,
  configureBuckets: JSON.parse(process.env.S3RVER_BUCKETS).map((name) => ({ name })),
});
server.run().then(
  (address) => process.stdout.write(JSON.stringify({ port: address.port }) + "\\n"),
  (error) => { process.stderr.write(String(error && error.stack || error)); process.exit(1); },
);
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
process.on("SIGTERM", () => server.close(() => process.exit(0)));
`;

/** Starts s3rver with the given buckets already created. */
export async function startS3rver(options: { buckets?: string[] } = {}): Promise<S3rverHandle> {
  const directory = await mkdtemp(join(tmpdir(), "s3rver-"));
  const require = createRequire(import.meta.url);
  const child = spawn(process.execPath, ["--openssl-legacy-provider", "-e", CHILD], {
    env: {
      ...process.env,
      S3RVER_MODULE: require.resolve("s3rver"),
      S3RVER_DIR: directory,
      S3RVER_BUCKETS: JSON.stringify(options.buckets ?? ["test"]),
    },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  try {
    const port = await readPort(child, () => stderr);
    return {
      endpoint: `http://127.0.0.1:${port}`,
      directory,
      stop: async () => {
        await stopChild(child);
        await rm(directory, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await stopChild(child);
    await rm(directory, { recursive: true, force: true });
    throw error;
  }
}

function readPort(child: ChildProcess, stderr: () => string): Promise<number> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    const timer = setTimeout(() => fail(new Error("s3rver did not start within 20 s")), 20_000);
    const fail = (error: Error) => {
      clearTimeout(timer);
      lines.close();
      reject(new Error(`${error.message}\n${stderr()}`));
    };
    lines.once("line", (line) => {
      clearTimeout(timer);
      lines.close();
      try {
        resolve((JSON.parse(line) as { port: number }).port);
      } catch {
        reject(new Error(`s3rver said ${JSON.stringify(line)}\n${stderr()}`));
      }
    });
    child.once("exit", (code) => fail(new Error(`s3rver exited with code ${code}`)));
    child.once("error", fail);
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.stdin?.end();
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
  await exited;
  clearTimeout(timer);
}
