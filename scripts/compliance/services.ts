/**
 * The servers the compliance suite talks to, started together: s3rver standing in for MinIO,
 * the Node static server (writable, basic auth admin/admin) standing in for the suite's nginx,
 * and our active-storage server. Prints one JSON line with their URLs, then runs until stdin
 * closes or SIGTERM. Run with `npx vite-node scripts/compliance/services.ts -- <http-root>`.
 */
import { mkdir, symlink } from "node:fs/promises";
import { join } from "node:path";
import { startServer } from "../../src/server/index.js";
import { startStaticServer } from "../../test/servers/nginx.js";
import { startS3rver } from "../../test/servers/s3rver.js";

const root = process.argv[process.argv.length - 1];
await mkdir(root, { recursive: true });
// The suite PUTs to <http>/upload/<name> and reads <http>/<name> (its nginx maps both to one directory).
await symlink(".", join(root, "upload")).catch(() => undefined);
const s3 = await startS3rver({ buckets: [] });
const http = await startStaticServer(root, { writable: true, auth: { username: "admin", password: "admin" } });
const server = await startServer({
  port: Number(process.env.ACTIVESTORE_PORT ?? 0),
  allowHosts: ["127.0.0.1", "localhost"],
  logger: (entry) => {
    if (entry.level === "error") process.stderr.write(JSON.stringify(entry) + "\n");
  },
});
process.stdout.write(JSON.stringify({ s3: s3.endpoint, http: http.url, server: server.url }) + "\n");

const stop = async () => {
  await server.close();
  await http.stop();
  await s3.stop();
  process.exit(0);
};
process.on("SIGTERM", () => void stop());
process.stdin.on("end", () => void stop());
process.stdin.resume();
