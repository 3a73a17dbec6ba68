/** One thread of the WorkerPool (pool.ts): encodes chunks and runs module functions on them. */
import { isAbsolute } from "node:path";
import { pathToFileURL } from "node:url";
import { parentPort } from "node:worker_threads";
import type * as zarr from "zarrita";
import { CodecError } from "../errors.js";
import { ChunkEncoder, type ChunkData } from "./encode.js";
import type { ChunkFunction } from "./dataset.js";
import type { ModuleFunction, WorkerReply, WorkerRequest } from "./pool.js";

const encoders = new Map<string, ChunkEncoder>();
const functions = new Map<string, Promise<ChunkFunction>>();

function encoderFor(pipeline: string, chunkShape: number[]): ChunkEncoder {
  const cacheKey = `${pipeline}|${chunkShape}`;
  let encoder = encoders.get(cacheKey);
  if (!encoder) {
    encoder = new ChunkEncoder(JSON.parse(pipeline) as zarr.ArrayMetadata<zarr.DataType>, chunkShape);
    encoders.set(cacheKey, encoder);
  }
  return encoder;
}

function load(fn: ModuleFunction): Promise<ChunkFunction> {
  const url = isAbsolute(fn.module) ? pathToFileURL(fn.module).href : fn.module;
  const name = fn.name ?? "default";
  const cacheKey = `${url}#${name}`;
  let loaded = functions.get(cacheKey);
  if (!loaded) {
    loaded = import(url).then((mod: Record<string, unknown>) => {
      const f = mod[name];
      if (typeof f !== "function") throw new Error(`${url} has no function export "${name}"`);
      return f as ChunkFunction;
    });
    functions.set(cacheKey, loaded);
  }
  return loaded;
}

async function handle(request: WorkerRequest): Promise<{ value: Uint8Array | ChunkData; transfer: ArrayBuffer[] }> {
  if (request.kind === "encode") {
    const bytes = await encoderFor(request.pipeline, request.chunkShape).encode(request.data, request.key);
    return { value: bytes, transfer: [] };
  }
  const fn = await load(request.fn);
  const result = await fn(request.chunk, request.info);
  return { value: result, transfer: [] };
}

parentPort?.on("message", (request: WorkerRequest) => {
  handle(request).then(
    ({ value, transfer }) => parentPort!.postMessage({ id: request.id, ok: true, value } satisfies WorkerReply, transfer),
    (error: unknown) =>
      parentPort!.postMessage({
        id: request.id,
        ok: false,
        error: error instanceof Error ? error.message : String(error),
        codec: error instanceof CodecError,
      } satisfies WorkerReply),
  );
});
