/**
 * zstd, blosc and numcodecs-lz4 through numcodecs.js (wasm builds of the reference C libraries).
 * zarrita registers the same classes; we wrap them so that
 *  - sizes declared in the frame header are checked against the chunk before the wasm side allocates,
 *  - failures surface as CodecError naming the codec, not as a wasm abort string.
 *
 * Framings: HDF5 zstd (32015) stores one plain zstd frame, like numcodecs `zstd`. HDF5 blosc (32001)
 * stores one blosc frame, like numcodecs `blosc`. numcodecs `lz4` is u32 LE size + one LZ4 block
 * (not the HDF5 lz4 framing; see lz4h5.ts).
 */
import { CodecError } from "../errors.js";
import { type PoolTask, offloadDecode, poolTask } from "./pool.js";
import { type BytesCodec, type ChunkMeta, type CodecConfig, checkSize, chunkBytes, decodedLimit, readU32LE } from "./types.js";

interface WasmCodec {
  encode(data: Uint8Array): Uint8Array | Promise<Uint8Array>;
  decode(data: Uint8Array): Uint8Array | Promise<Uint8Array>;
}
interface WasmCodecClass {
  fromConfig(config: CodecConfig): WasmCodec;
}

type HeaderCheck = (bytes: Uint8Array, limit: number) => void;

/** zstd frame header: reject a declared content size above the limit (RFC 8878 section 3.1.1.1). */
function checkZstd(b: Uint8Array, limit: number): void {
  if (b.length < 5 || readU32LE(b, 0) !== 0xfd2fb528) throw new CodecError("not a zstd frame (bad magic)", "zstd");
  const fhd = b[4];
  const fcsFlag = fhd >>> 6;
  const singleSegment = (fhd >>> 5) & 1;
  const dictBytes = [0, 1, 2, 4][fhd & 3];
  const fcsBytes = fcsFlag === 0 ? singleSegment : [0, 2, 4, 8][fcsFlag];
  if (fcsBytes === 0) return; // size not declared: the decoder streams, bounded by the chunk below
  const at = 5 + (singleSegment ? 0 : 1) + dictBytes;
  if (b.length < at + fcsBytes) throw new CodecError("truncated zstd frame header", "zstd");
  let size = 0;
  for (let i = fcsBytes - 1; i >= 0; i--) size = size * 256 + b[at + i];
  if (fcsBytes === 2) size += 256;
  checkSize("zstd", "declared content size", size, limit);
}

/** blosc header: nbytes (decoded) at 4, cbytes (whole frame) at 12, both u32 LE. */
function checkBlosc(b: Uint8Array, limit: number): void {
  if (b.length < 16) throw new CodecError(`${b.length} bytes is too short for a blosc header`, "blosc");
  checkSize("blosc", "declared decoded size", readU32LE(b, 4), limit);
  const cbytes = readU32LE(b, 12);
  if (cbytes > b.length) throw new CodecError(`truncated frame: header says ${cbytes} bytes, have ${b.length}`, "blosc");
}

function checkLz4(b: Uint8Array, limit: number): void {
  if (b.length < 4) throw new CodecError(`${b.length} bytes is too short for the size header`, "lz4");
  checkSize("lz4", "declared decoded size", readU32LE(b, 0), limit);
}

class WasmWrapped implements BytesCodec {
  readonly kind = "bytes_to_bytes" as const;
  constructor(
    private readonly id: string,
    private readonly inner: WasmCodec,
    private readonly check: HeaderCheck,
    private readonly limit: number,
    private readonly task: PoolTask,
    private readonly expected: number,
  ) {}

  async encode(bytes: Uint8Array): Promise<Uint8Array> {
    try {
      return await this.inner.encode(bytes);
    } catch (cause) {
      throw new CodecError(`cannot encode ${bytes.length} bytes: ${describe(cause)}`, this.id, undefined, { cause });
    }
  }

  async decode(bytes: Uint8Array): Promise<Uint8Array> {
    // The header check is cheap and stays here, so a bad frame fails before any thread hop.
    this.check(bytes, this.limit);
    const work = Math.max(bytes.length, this.expected);
    return (await offloadDecode(this.task, bytes, work, () => this.decodeLocal(bytes))) ?? this.decodeLocal(bytes);
  }

  async decodeLocal(bytes: Uint8Array): Promise<Uint8Array> {
    this.check(bytes, this.limit);
    let out: Uint8Array;
    try {
      out = await this.inner.decode(bytes);
    } catch (cause) {
      throw new CodecError(`cannot decompress ${bytes.length} bytes: ${describe(cause)}`, this.id, undefined, { cause });
    }
    checkSize(this.id, "decoded size", out.length, this.limit);
    return out;
  }
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function wrapped(id: string, load: () => Promise<WasmCodecClass>, check: HeaderCheck) {
  return async () => {
    const Inner = await load();
    return {
      kind: "bytes_to_bytes" as const,
      fromConfig(config: unknown, meta?: ChunkMeta): BytesCodec {
        const cfg = { ...(typeof config === "object" && config !== null ? config : {}), id } as CodecConfig;
        const task = poolTask(id, config, meta);
        return new WasmWrapped(id, Inner.fromConfig(cfg), check, decodedLimit(meta), task, chunkBytes(meta) ?? 0);
      },
    };
  };
}

export const loadZstd = wrapped("zstd", async () => (await import("numcodecs/zstd")).default, checkZstd);
export const loadBlosc = wrapped("blosc", async () => (await import("numcodecs/blosc")).default, checkBlosc);
export const loadLz4 = wrapped("lz4", async () => (await import("numcodecs/lz4")).default, checkLz4);
