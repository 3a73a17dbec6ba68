/**
 * What an active-storage server needs to reduce one variable of a reference set: per chunk, a url
 * the server can reach (S3 endpoint/bucket/key or http(s)), the byte range and the codecs. Built
 * from kerchunk references without reading any chunk.
 */
import { ReferenceSetError, UnsupportedFeatureError } from "../errors.js";
import type { CodecConfig } from "../codecs/types.js";
import type { Reference, References } from "../refs/types.js";
import type { RemoteArray, RemoteChunk } from "./remote.js";

export interface RemoteSourceOptions {
  /** S3 endpoint the server should use for `s3://` urls (default $AWS_ENDPOINT_URL_S3 / $AWS_ENDPOINT_URL / AWS). */
  s3Endpoint?: string;
  region?: string;
}

interface Zarray {
  shape: number[];
  chunks: number[];
  dtype: string;
  order?: "C" | "F";
  filters?: CodecConfig[] | null;
  compressor?: CodecConfig | null;
  fill_value?: number | string | null;
  dimension_separator?: "." | "/";
}

const DTYPES: Record<string, string> = {
  i1: "int8", i2: "int16", i4: "int32", i8: "int64",
  u1: "uint8", u2: "uint16", u4: "uint32", u8: "uint64",
  f4: "float32", f8: "float64",
};

function metadata(refs: References, key: string): Zarray {
  const value = refs.refs[key] as Reference | object | undefined;
  if (value === undefined) throw new ReferenceSetError("no such array", key);
  if (typeof value === "string") return JSON.parse(value) as Zarray;
  if (!Array.isArray(value)) return value as Zarray;
  throw new UnsupportedFeatureError("array metadata stored as a byte range", key, "inline the .zarray");
}

function expandTemplates(url: string, refs: References): string {
  const templates = refs.templates ?? {};
  return url.replace(/\{\{\s*(\w+)\s*\}\}/g, (m, name: string) => templates[name] ?? m);
}

/** Maps a reference url to what a Reductionist server reads: interface type and url. */
export function serverUrl(
  url: string,
  options: RemoteSourceOptions = {},
): { interfaceType: "s3" | "http" | "https"; url: string } {
  const s3 = /^s3:\/\/([^/]+)\/(.+)$/.exec(url);
  if (s3) {
    const endpoint = (
      options.s3Endpoint ??
      process.env.AWS_ENDPOINT_URL_S3 ??
      process.env.AWS_ENDPOINT_URL ??
      `https://s3.${options.region ?? process.env.AWS_REGION ?? "us-east-1"}.amazonaws.com`
    ).replace(/\/+$/, "");
    return { interfaceType: "s3", url: `${endpoint}/${s3[1]}/${s3[2]}` };
  }
  if (/^https?:\/\//.test(url)) return { interfaceType: url.startsWith("https") ? "https" : "http", url };
  throw new UnsupportedFeatureError(
    `chunk url "${url}"`,
    "a server reduction",
    "an active-storage server reads S3 or HTTP(S) objects only; put the data on S3/HTTP or reduce locally",
  );
}

/** The remote view of `variable` in `refs` (urls relative to `baseUrl` resolved against it). */
export function remoteArray(
  refs: References,
  variable: string,
  options: RemoteSourceOptions & { baseUrl?: string } = {},
): RemoteArray {
  const path = variable.replace(/^\/+|\/+$/g, "");
  const prefix = path === "" ? "" : `${path}/`;
  const meta = metadata(refs, `${prefix}.zarray`);
  const kind = meta.dtype.slice(1);
  const dtype = DTYPES[kind];
  if (!dtype) throw new UnsupportedFeatureError(`data type ${meta.dtype}`, path, "reductions need numeric data");
  const byteOrder = meta.dtype[0] === ">" ? "big" : "little";
  const codecs = [...(meta.filters ?? []), ...(meta.compressor ? [meta.compressor] : [])];
  const separator = meta.dimension_separator ?? ".";
  const resolve = (url: string) => {
    const u = expandTemplates(url, refs);
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(u) || !options.baseUrl) return u;
    return `${options.baseUrl.replace(/\/[^/]*$/, "")}/${u}`;
  };

  let interfaceType: RemoteArray["interfaceType"] | undefined;
  const chunk = (coords: readonly number[]): RemoteChunk | undefined => {
    const key = `${prefix}${coords.length === 0 ? "0" : coords.join(separator)}`;
    const ref = refs.refs[key] as Reference | undefined;
    if (ref === undefined) return undefined;
    if (!Array.isArray(ref) || ref.length !== 3) {
      throw new UnsupportedFeatureError(
        "an inline or whole-object chunk reference",
        key,
        "servers read byte ranges: rebuild the references with --inline-threshold 0, or reduce locally",
      );
    }
    const target = serverUrl(resolve(ref[0]), options);
    if (interfaceType !== undefined && target.interfaceType !== interfaceType) {
      throw new UnsupportedFeatureError("chunks on different kinds of storage", path, "reduce locally");
    }
    return { url: target.url, offset: ref[1], size: ref[2], codecs };
  };

  // The interface type comes from the first ranged chunk reference of the array.
  for (const [key, ref] of Object.entries(refs.refs)) {
    if (key.startsWith(prefix) && !key.slice(prefix.length).includes("/") && Array.isArray(ref) && ref.length === 3) {
      interfaceType = serverUrl(resolve(ref[0]), options).interfaceType;
      break;
    }
  }
  const fill = meta.fill_value;
  return {
    shape: meta.shape,
    chunks: meta.chunks,
    dtype,
    byteOrder,
    order: meta.order ?? "C",
    fillValue: typeof fill === "string" ? (fill === "NaN" ? NaN : Number(fill)) : fill,
    interfaceType: interfaceType ?? "http",
    chunk,
  };
}
