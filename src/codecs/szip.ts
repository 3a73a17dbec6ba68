/**
 * SZIP (HDF5 filter 4, CCSDS 121.0 adaptive entropy coding via libaec). No maintained decoder exists
 * on npm (no libaec build, no pure-JS port), so the codec refuses to be built.
 *
 * Where that surfaces: zarrita builds codecs lazily, on the first chunk an array encodes or decodes;
 * `zarr.open` itself succeeds. So the first read of a stored chunk rejects with this CodecError
 * (chunks never written read as the fill value without touching codecs). Callers that want to fail
 * at open time call `assertCodecsSupported` (registry.ts) on the array's filters first.
 */
import { CodecError } from "../errors.js";
import type { BytesCodec } from "./types.js";

export const SZIP_UNSUPPORTED =
  "unsupported codec szip: no SZIP/libaec decoder is available for JavaScript; " +
  "convert the dataset first (e.g. `h5repack -f GZIP=4 in.h5 out.h5`, or `nccopy -d4`)";

export class SzipCodec implements BytesCodec {
  static readonly kind = "bytes_to_bytes";
  readonly kind = "bytes_to_bytes" as const;

  static fromConfig(): SzipCodec {
    throw new CodecError(SZIP_UNSUPPORTED, "szip");
  }

  encode(): Uint8Array {
    throw new CodecError(SZIP_UNSUPPORTED, "szip");
  }

  decode(): Uint8Array {
    throw new CodecError(SZIP_UNSUPPORTED, "szip");
  }
}
