/**
 * The JSON schema (draft 2020-12) of a request body, served at `/.well-known/reductionist-schema`
 * (Reductionist serves a placeholder there). It states the shape of each field; cross-field rules
 * (selection needs shape, size = prod(shape) × item size, axes ascending) are in the descriptions
 * and enforced by request.ts.
 */
import { COMPRESSION_IDS, EXTRA_DTYPES, FILTER_IDS, REDUCTIONIST_DTYPES } from "./request.js";

const nullable = { type: ["integer", "null"] };
const nonNegative = { type: "integer", minimum: 0 };
const value = { type: "number", description: "must fit the request dtype; integers for integer dtypes" };

export const REQUEST_SCHEMA = {
  $schema: "https://json-schema.org/draft/2020-12/schema",
  $id: "https://github.com/activestore/activestore/reductionist-request.json",
  title: "Reductionist API v2 request (activestore)",
  description:
    "POST /v2/{count,max,min,select,sum} with this body; the extension POST /v2/moments returns count, sum, min, max, " +
    "M2 (sum of squared deviations) and NaN flags per output element, for mean/variance/std across chunks.",
  type: "object",
  additionalProperties: false,
  required: ["interface_type", "url", "dtype"],
  properties: {
    interface_type: { enum: ["s3", "http", "https"] },
    url: { type: "string", format: "uri", description: "s3: <endpoint>/<bucket>/<key> (path-style); http(s): the object's URL" },
    dtype: {
      enum: [...REDUCTIONIST_DTYPES, ...EXTRA_DTYPES],
      description: "int8, int16, uint8, uint16 and float16 are activestore extensions (float16 results come back as float32)",
    },
    byte_order: { enum: ["big", "little"], default: "little" },
    offset: { ...nonNegative, default: 0 },
    size: { type: "integer", minimum: 1, description: "bytes to read; default the rest of the object" },
    shape: { type: "array", minItems: 1, items: { type: "integer", minimum: 1 } },
    axis: {
      oneOf: [nonNegative, { type: "array", items: nonNegative, uniqueItems: true }],
      description: "axes to reduce over, ascending; default all; [] reduces over none",
    },
    order: { enum: ["C", "F"], default: "C" },
    selection: {
      type: "array",
      minItems: 1,
      items: {
        type: "array",
        prefixItems: [nullable, nullable, { type: ["integer", "null"], not: { const: 0 } }],
        minItems: 3,
        maxItems: 3,
      },
      description:
        "[start, end, stride] per dimension, numpy slice semantics (negative values count from the end; null = numpy's default, an extension); needs shape",
    },
    compression: {
      type: "object",
      required: ["id"],
      properties: { id: { enum: COMPRESSION_IDS } },
      description: "gzip and zlib as Reductionist; the others (with their numcodecs/imagecodecs configuration) are extensions",
    },
    filters: {
      type: "array",
      items: {
        type: "object",
        required: ["id"],
        properties: { id: { enum: FILTER_IDS }, element_size: { type: "integer", minimum: 1 } },
      },
    },
    missing: {
      type: "object",
      description: "exactly one rule (the moments extension accepts several, and skip_nan)",
      properties: {
        missing_value: value,
        missing_values: { type: "array", items: value },
        valid_min: value,
        valid_max: value,
        valid_range: { type: "array", items: value, minItems: 2, maxItems: 2 },
        skip_nan: { type: "boolean", description: "moments only: leave NaNs out instead of propagating them" },
      },
      additionalProperties: false,
      minProperties: 1,
    },
    option_disable_chunk_cache: { type: "boolean" },
    option_shape_as_bytes: { type: "boolean" },
    option_count_as_bytes: { type: "boolean" },
  },
} as const;
