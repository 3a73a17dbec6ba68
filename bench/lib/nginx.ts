/**
 * nginx for the benchmark: like test/servers/nginx.ts but with `autoindex` (rclone's HTTP remote
 * lists directories from the index page) and WebDAV PUT/DELETE (HttpStore writes), in one server.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort, NGINX } from "../../test/servers/nginx.js";

export interface BenchServer {
  url: string;
  stop(): Promise<void>;
}

/**
 * nginx's default is 1,024 connections per worker; zarrita's ReferenceStore opens one per chunk at
 * once (8,000 for zlib25) and fails against it. ACTIVESTORE_BENCH_NGINX_CONNECTIONS raises the limit
 * so that baseline can finish.
 */
const CONNECTIONS = Number(process.env.ACTIVESTORE_BENCH_NGINX_CONNECTIONS ?? 1024);

function config(dir: string, root: string, port: number): string {
  return `
daemon off;
master_process off;
worker_processes 1;
pid ${join(dir, "nginx.pid")};
error_log ${join(dir, "error.log")} warn;
worker_rlimit_nofile ${2 * CONNECTIONS + 64};
events { worker_connections ${CONNECTIONS}; }
http {
  access_log off;
  client_body_temp_path ${join(dir, "body")};
  default_type application/octet-stream;
  sendfile on;
  keepalive_timeout 65s;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    location / {
      autoindex on;
      dav_methods PUT DELETE;
      create_full_put_path on;
      dav_access user:rw group:r all:r;
      client_max_body_size 0;
    }
  }
}
`;
}

function reachable(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => (socket.destroy(), done(true)));
    socket.once("error", () => done(false));
  });
}

export async function startBenchNginx(root: string): Promise<BenchServer> {
  const dir = await mkdtemp(join(tmpdir(), "activestore-bench-nginx-"));
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    await writeFile(join(dir, "nginx.conf"), config(dir, resolve(root), port));
    const child = spawn(NGINX, ["-p", dir, "-c", join(dir, "nginx.conf"), "-e", join(dir, "error.log")], {
      stdio: "ignore",
    });
    const exited = new Promise<void>((done) => child.once("exit", () => done()));
    let dead = false;
    void exited.then(() => (dead = true));
    for (let i = 0; i < 100 && !dead; i++) {
      if (await reachable(port)) {
        return {
          url: `http://127.0.0.1:${port}`,
          async stop() {
            if (!dead) {
              child.kill("SIGTERM");
              await exited;
            }
            await rm(dir, { recursive: true, force: true });
          },
        };
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!dead) child.kill("SIGKILL");
    await exited;
  }
  await rm(dir, { recursive: true, force: true });
  throw new Error("nginx did not start for the benchmark");
}
