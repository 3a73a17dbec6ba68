/**
 * What an active-storage server needs to reduce one variable of a reference set: per chunk, a url
 * the server can reach (S3 endpoint/bucket/key or http(s)), the byte range and the codecs. Built
 * from kerchunk references without reading any chunk.
 */
import { ReferenceSetError, UnsupportedFeatureError } from "../errors.js";
import type { CodecConfig } from "../codecs/types.js";
import type { ReferenceStore } from "../refs/reference-store.js";
import { resolveUrl } from "../refs/resolve.js";
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

/**
 * The remote view of `variable` behind a reference store: chunk locations come from the store, so
 * templates, `gen`, default targets and parquet references resolve exactly as reads resolve them;
 * relative urls are taken against `baseUrl` (where the references live).
 */
export async function remoteArray(
  store: ReferenceStore,
  variable: string,
  options: RemoteSourceOptions & { baseUrl?: string } = {},
): Promise<RemoteArray> {
  const path = variable.replace(/^\/+|\/+$/g, "");
  const prefix = path === "" ? "" : `${path}/`;
  const text = await store.get(`/${prefix}.zarray`);
  if (text === undefined) throw new ReferenceSetError("no such array", `${prefix}.zarray`);
  const meta = JSON.parse(new TextDecoder().decode(text)) as Zarray;
  const kind = meta.dtype.slice(1);
  const dtype = DTYPES[kind];
  if (!dtype) throw new UnsupportedFeatureError(`data type ${meta.dtype}`, path, "reductions need numeric data");
  const codecs = [...(meta.filters ?? []), ...(meta.compressor ? [meta.compressor] : [])];
  const separator = meta.dimension_separator ?? ".";
  const keyOf = (coords: readonly number[]) => `${prefix}${coords.length === 0 ? "0" : coords.join(separator)}`;

  let interfaceType: RemoteArray["interfaceType"] | undefined;
  const locate = async (key: string) => {
    const range = await store.byteRange(key);
    if (range === undefined) return undefined;
    if (range === null) {
      throw new UnsupportedFeatureError(
        "an inline or whole-object chunk reference",
        key,
        "servers read byte ranges: rebuild the references with --inline-threshold 0, or reduce locally",
      );
    }
    const target = serverUrl(resolveUrl(range.url, options.baseUrl), options);
    if (interfaceType !== undefined && target.interfaceType !== interfaceType) {
      throw new UnsupportedFeatureError("chunks on different kinds of storage", path, "reduce locally");
    }
    interfaceType = target.interfaceType;
    return { url: target.url, offset: range.offset, length: range.length };
  };
  // The interface type comes from the first chunk (refusing, at open, urls a server cannot read).
  const grid = meta.shape.map((n, d) => Math.ceil(n / meta.chunks[d]));
  if (grid.every((n) => n > 0)) await locate(keyOf(grid.map(() => 0)));
  const fill = meta.fill_value;
  return {
    shape: meta.shape,
    chunks: meta.chunks,
    dtype,
    byteOrder: meta.dtype[0] === ">" ? "big" : "little",
    order: meta.order ?? "C",
    fillValue: typeof fill === "string" ? (fill === "NaN" ? NaN : Number(fill)) : fill,
    // A getter: when chunk 0 was never written, the first chunk located decides it.
    get interfaceType() {
      return interfaceType ?? "http";
    },
    async chunk(coords): Promise<RemoteChunk | undefined> {
      const found = await locate(keyOf(coords));
      return found && { url: found.url, offset: found.offset, size: found.length, codecs };
    },
  };
}
