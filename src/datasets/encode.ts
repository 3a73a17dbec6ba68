/**
 * Encoding one whole chunk to the bytes that get stored. zarrita's codec pipeline is not public, but
 * its `set` of a total selection encodes without reading; so we run it on a one-chunk array (shape =
 * chunk shape) whose store just captures the bytes. Every codec therefore comes from the one
 * registry (src/codecs), as DESIGN.md asks.
 */
import { stridesOf } from "../util/strides.js";
import * as zarr from "zarrita";
import { registry } from "zarrita";
import { registerCodecs } from "../codecs/registry.js";
import { CodecError } from "../errors.js";
import { product } from "./grid.js";

let registered = false;

/**
 * Our codecs, plus the v3 spec names `gzip` and `zstd` bound to our encoders (zarrita's own gzip
 * cannot encode, and ours check declared sizes before decoding).
 */
export function registerDatasetCodecs(): void {
  if (registered) return;
  registerCodecs();
  for (const name of ["gzip", "zstd"]) {
    const load = registry.get(`numcodecs.${name}`);
    if (load) registry.set(name, load);
  }
  registered = true;
}

/** The element arrays datasets hold. */
export type NumericArray =
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | Float32Array
  | Float64Array;

/** A C-ordered block of elements and its shape. */
export interface ChunkData {
  data: NumericArray;
  shape: number[];
}

export class ChunkEncoder {
  private readonly document: zarr.ArrayMetadata<zarr.DataType>;

  constructor(
    pipeline: zarr.ArrayMetadata<zarr.DataType>,
    private readonly chunkShape: number[],
  ) {
    registerDatasetCodecs();
    this.document = { ...pipeline, shape: chunkShape };
  }

  /** Encodes a full chunk (length = product of the chunk shape, C order). */
  async encode(data: NumericArray, key: string): Promise<Uint8Array> {
    if (data.length !== product(this.chunkShape)) {
      throw new CodecError(`chunk holds ${data.length} elements, expected ${product(this.chunkShape)}`, "encode", key);
    }
    let captured: Uint8Array | undefined;
    const capture = {
      async get() {
        return undefined;
      },
      async set(_key: string, bytes: Uint8Array) {
        captured = bytes;
      },
    };
    const array = new zarr.Array(capture, "/", this.document);
    try {
      await zarr.set(array, null, { data: data as zarr.TypedArray<zarr.DataType>, shape: this.chunkShape, stride: stridesOf(this.chunkShape) });
    } catch (cause) {
      throw new CodecError(`cannot encode: ${(cause as Error).message}`, "pipeline", key, { cause });
    }
    if (!captured) throw new CodecError("the codec pipeline produced no bytes", "pipeline", key);
    return captured;
  }
}
