/**
 * Response encoding. Reductionist serialises `CBORResponse` with serde_cbor: a map of exactly
 * {bytes, dtype, shape, shape_as_bytes, count, count_as_bytes, byte_order} where `bytes`,
 * `shape_as_bytes` and `count_as_bytes` are CBOR byte strings (empty unless the option asked for
 * them) and shape/count are arrays of integers. Byte strings must be plain major type 2, not
 * cbor-x's tagged typed arrays, or Python's cbor2 hands clients a tag object.
 */
import { createRequire } from "node:module";
import type { Decoder, Encoder } from "cbor-x";
import type { OperationResult } from "./operations.js";

// cbor-x loads on first use (its CommonJS build, so these stay synchronous): importing the library
// for local work should not pay for the server's wire format.
let codec: { encoder: Encoder; decoder: Decoder } | undefined;
function cbor(): { encoder: Encoder; decoder: Decoder } {
  if (!codec) {
    const { Decoder, Encoder } = createRequire(import.meta.url)("cbor-x") as typeof import("cbor-x");
    codec = {
      encoder: new Encoder({ useRecords: false, tagUint8Array: false, variableMapSize: true }),
      decoder: new Decoder({ useRecords: false, mapsAsObjects: true }),
    };
  }
  return codec;
}

function u64Bytes(values: readonly number[], signed: boolean): Uint8Array {
  const a = signed ? new BigInt64Array(values.length) : new BigUint64Array(values.length);
  values.forEach((v, i) => (a[i] = BigInt(v)));
  return new Uint8Array(a.buffer);
}

export interface EncodeOptions {
  shapeAsBytes: boolean;
  countAsBytes: boolean;
}

function responseBody(result: OperationResult, options: EncodeOptions): Record<string, unknown> {
  const body: Record<string, unknown> = {
    bytes: result.bytes,
    dtype: result.dtype,
    shape: options.shapeAsBytes ? [] : result.shape,
    shape_as_bytes: options.shapeAsBytes ? u64Bytes(result.shape, false) : new Uint8Array(0),
    count: options.countAsBytes ? [] : result.count,
    count_as_bytes: options.countAsBytes ? u64Bytes(result.count, true) : new Uint8Array(0),
    byte_order: "little",
  };
  if (result.moments) Object.assign(body, result.moments);
  return body;
}

export function encodeResponse(result: OperationResult, options: EncodeOptions): Uint8Array {
  return cbor().encoder.encode(responseBody(result, options));
}

/** A batch's answer (our extension): `{results: [...]}`, one single-request answer per chunk, in order. */
export function encodeBatch(results: readonly { result: OperationResult; options: EncodeOptions }[]): Uint8Array {
  return cbor().encoder.encode({ results: results.map((r) => responseBody(r.result, r.options)) });
}

export function decodeCbor(bytes: Uint8Array): unknown {
  return cbor().decoder.decode(bytes);
}
