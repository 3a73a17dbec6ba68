/**
 * `activestore serve`: the active-storage server (Reductionist API v2). Options override the
 * `--config` file, which overrides the defaults. SIGTERM/SIGINT shut down gracefully: stop
 * accepting, let in-flight requests finish, then exit.
 */
import { InvalidArgumentError, type Command } from "commander";
import { defaultConfig, loadConfigFile, type ServerConfig } from "../../server/config.js";
import { startServer } from "../../server/server.js";

interface ServeOptions {
  host?: string;
  port?: number;
  config?: string;
  cert?: string;
  key?: string;
  allowHost?: string[];
  memory?: number;
  concurrency?: number;
  maxChunkBytes?: number;
  cacheDir?: string;
  cacheBytes?: number;
  cacheTtl?: number;
  timeout?: number;
}

function count(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError("expected a non-negative integer");
  return n;
}

function hosts(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(",").map((h) => h.trim()).filter(Boolean)];
}

export function register(program: Command): void {
  program
    .command("serve")
    .description("run the active-storage server (Reductionist API v2: POST /v2/{count,max,min,select,sum,moments})")
    .option("--host <host>", "address to listen on (default 127.0.0.1)")
    .option("--port <port>", "port to listen on (default 8080; 0 = any free port)", count)
    .option("--config <file.json>", "server configuration (see ServerConfig)")
    .option("--cert <pem>", "TLS certificate (serve HTTPS with --key)")
    .option("--key <pem>", "TLS private key")
    .option("--allow-host <hosts>", "upstream hosts requests may read, comma-separated, repeatable; '*' = any public host", hosts)
    .option("--memory <bytes>", "memory budget for chunk data in flight", count)
    .option("--max-chunk-bytes <bytes>", "largest byte range one request may read", count)
    .option("--cache-dir <dir>", "on-disk chunk cache directory (off unless given)")
    .option("--cache-bytes <bytes>", "chunk cache size limit (default 1 GiB)", count)
    .option("--cache-ttl <ms>", "chunk cache entry lifetime (default 1 hour)", count)
    .option("--timeout <ms>", "per-request deadline", count)
    .action(async (_options: ServeOptions, command: Command) => {
      // --concurrency is the program's global option: here, operations computing at once.
      const options = command.optsWithGlobals<ServeOptions>();
      if ((options.cert === undefined) !== (options.key === undefined)) throw new InvalidArgumentError("--cert and --key go together");
      let config: ServerConfig = options.config ? await loadConfigFile(options.config) : defaultConfig();
      config = {
        ...config,
        ...(options.host !== undefined ? { host: options.host } : {}),
        ...(options.port !== undefined ? { port: options.port } : {}),
        ...(options.allowHost ? { allowHosts: options.allowHost } : {}),
        ...(options.memory !== undefined ? { memoryBytes: options.memory } : {}),
        ...(options.concurrency !== undefined ? { concurrency: Math.max(1, options.concurrency) } : {}),
        ...(options.maxChunkBytes !== undefined ? { maxChunkBytes: options.maxChunkBytes } : {}),
        ...(options.timeout !== undefined ? { requestTimeoutMs: options.timeout } : {}),
        ...(options.cert && options.key ? { tls: { cert: options.cert, key: options.key } } : {}),
        ...(options.cacheDir
          ? { cache: { dir: options.cacheDir, maxBytes: options.cacheBytes ?? 1 << 30, ttlMs: options.cacheTtl ?? 3_600_000 } }
          : {}),
      };
      const server = await startServer(config);
      if (config.allowHosts.length === 0) {
        process.stderr.write("activestore serve: no --allow-host given, every upstream will be refused\n");
      }
      process.stdout.write(`${server.url}\n`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off("SIGTERM", stop);
          process.off("SIGINT", stop);
          void server.close().then(resolve);
        };
        process.on("SIGTERM", stop);
        process.on("SIGINT", stop);
      });
    });
}
