/**
 * Opening what `Active` reduces: an HDF5/netCDF4 file or URL (references built on the fly), a
 * kerchunk reference set (object, or a .json path/URL), or a zarr array on any store. Everything
 * ends up as a zarrita array whose chunk reads are counted.
 */
import * as zarr from "zarrita";
import type { AsyncReadable } from "@zarrita/storage";
import { registerCodecs } from "../codecs/registry.js";
import { ReferenceSetError } from "../errors.js";
import { openHdf5 } from "../hdf5/file.js";
import { byteSourceFromStore } from "../hdf5/io.js";
import { buildFromReader } from "../refs/build.js";
import { filtersToCodecs } from "../refs/filters.js";
import { parseReferences, ReferenceStore } from "../refs/reference-store.js";
import { storeResolver } from "../refs/resolve.js";
import type { References } from "../refs/types.js";
import { openStore, splitUrl, type OpenStoreOptions } from "../stores/open.js";
import type { Store } from "../stores/types.js";
import { Active, type ActiveOptions, type ReadCounter } from "./active.js";
import type { ChunkSource } from "./engine.js";
import { remoteArray } from "./remote-source.js";

export type ActiveSource = string | References | Store;

/** Moved to src/refs/resolve.ts; re-exported for existing imports. */
export { storeResolver };

export interface OpenActiveOptions extends ActiveOptions {
  /** Options for the stores that URLs open (credentials, endpoints, anonymous...). */
  store?: OpenStoreOptions;
}

const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

function isReferences(value: unknown): value is References {
  return typeof value === "object" && value !== null && "refs" in value && !("get" in value);
}

function isStore(value: unknown): value is Store {
  return typeof value === "object" && value !== null && "get" in value && "url" in value;
}

/** What zarrita reads through; `localRange` lets the threaded engine's workers read local chunks themselves. */
type CountedStore = AsyncReadable & Partial<Pick<ReferenceStore, "localRange">>;

function counting(store: CountedStore, counter: ReadCounter): CountedStore {
  const counted: CountedStore = {
    async get(key, opts) {
      const bytes = await store.get(key, opts);
      if (bytes) counter.bytesRead += bytes.length;
      return bytes;
    },
  };
  // Whoever asks where a chunk is on disk reads it: its bytes count as read.
  if (store.localRange) {
    const locate = store.localRange.bind(store);
    counted.localRange = async (key) => {
      const range = await locate(key);
      if (range) counter.bytesRead += range.length;
      return range;
    };
  }
  return counted;
}

async function isHdf5(store: Store, key: string): Promise<boolean> {
  // The signature may sit after a user block (512, 1024, ... bytes); the first slot is enough to
  // tell HDF5 from zarr/JSON, and the reader searches the rest.
  const head = await store.getRange(key, { offset: 0, length: 8 });
  if (!head || head.length < 8) return false;
  if (HDF5_SIGNATURE.every((b, i) => head[i] === b)) return true;
  const at512 = await store.getRange(key, { offset: 512, length: 8 });
  return !!at512 && at512.length === 8 && HDF5_SIGNATURE.every((b, i) => at512[i] === b);
}

async function fromReferences(
  references: References,
  variable: string,
  options: OpenActiveOptions,
  baseUrl?: string,
  netcdf?: boolean,
): Promise<Active> {
  registerCodecs();
  const counter: ReadCounter = { bytesRead: 0 };
  const refStore = new ReferenceStore(references, { resolver: storeResolver(options.store, baseUrl) });
  const root = zarr.root(counting(refStore, counter));
  const path = variable.replace(/^\/+/, "");
  let array: zarr.Array<zarr.DataType, AsyncReadable>;
  try {
    array = await zarr.open.v2(root.resolve(path), { kind: "array" });
  } catch (cause) {
    throw new ReferenceSetError(`variable "${variable}" not found or not an array`, path, undefined, { cause });
  }
  const rootAttrs = references.refs[".zattrs"];
  const isNetcdf =
    netcdf ?? (typeof rootAttrs === "string" && /"_NCProperties"|"Conventions"\s*:\s*"CF/.test(rootAttrs));
  const remote =
    options.server !== undefined
      ? await remoteArray(refStore, path, { baseUrl, s3Endpoint: options.store?.s3?.endpoint })
      : undefined;
  return new Active(array as unknown as ChunkSource, array.attrs, { netcdf: isNetcdf, ...options }, counter, remote);
}

/** Opens a variable for active reductions. */
export async function openActive(
  source: ActiveSource,
  variable: string,
  options: OpenActiveOptions = {},
): Promise<Active> {
  if (isReferences(source)) return fromReferences(source, variable, options);
  if (isStore(source)) return fromZarr(source, variable, options);
  const { storeUrl, key } = splitUrl(source);
  const store = openStore(storeUrl, options.store);
  if (/\.json$/i.test(key)) {
    const text = await store.get(key);
    if (!text) throw new ReferenceSetError("reference file not found", undefined, source);
    return fromReferences(parseReferences(new TextDecoder().decode(text)), variable, options, source);
  }
  if (await isHdf5(store, key)) {
    const file = await openHdf5(byteSourceFromStore(store, key, source));
    const root = await file.root();
    const netcdf = root.attributes.some((a) => a.name === "_NCProperties");
    // Servers read byte ranges, so nothing is inlined when the work is pushed to them.
    const { references } = await buildFromReader(file, filtersToCodecs, {
      url: source,
      ...(options.server !== undefined && { inlineThreshold: 0 }),
    });
    return fromReferences(references, variable, options, undefined, options.netcdf ?? netcdf);
  }
  return fromZarr(openStore(source, options.store), variable, options);
}

async function fromZarr(store: Store, variable: string, options: OpenActiveOptions): Promise<Active> {
  registerCodecs();
  const counter: ReadCounter = { bytesRead: 0 };
  const array = await zarr.open(zarr.root(counting(store, counter)).resolve(variable.replace(/^\/+/, "")), {
    kind: "array",
  });
  return new Active(array as unknown as ChunkSource, array.attrs, options, counter);
}
