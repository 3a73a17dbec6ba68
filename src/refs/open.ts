/**
 * `openReferences`: the one call from a kerchunk reference set — an object, a `.json` file or URL,
 * or a parquet reference directory — to a zarrita-ready store. Codecs are registered, urls in the
 * set resolve through the store layer relative to where the set lives, and reads are coalesced.
 */
import { registerCodecs } from "../codecs/registry.js";
import { ReferenceSetError } from "../errors.js";
import { openStore, splitUrl, type OpenStoreOptions } from "../stores/open.js";
import { DEFAULT_CONCURRENCY, type BatchReaderOptions } from "./batch-reader.js";
import { readParquetReferences } from "./parquet-read.js";
import { parseReferences, ReferenceStore } from "./reference-store.js";
import { resolveUrl, storeResolver } from "./resolve.js";
import type { References } from "./types.js";

export interface OpenReferencesOptions extends BatchReaderOptions {
  /** Settings for every store the set's urls (and the set itself) are read through. */
  store?: OpenStoreOptions;
  /** The url of references whose url is null or empty. */
  target?: string;
  /** Where a set given as an object lives, for its relative urls (default: the working directory). */
  base?: string;
}

/**
 * Opens a reference set for reading with zarrita: `zarr.open(await openReferences(url))`. A string
 * ending in `.json` is a reference file; any other string is tried as a parquet reference
 * directory (kerchunk's `.zmetadata` + `refs.<n>.parq` layout). Close the store when done.
 */
export async function openReferences(refsOrUrl: References | string, options: OpenReferencesOptions = {}): Promise<ReferenceStore> {
  registerCodecs();
  const concurrency = options.concurrency ?? options.store?.concurrency ?? DEFAULT_CONCURRENCY;
  // The stores' own pools are sized like the batch limit, so connections never outnumber it.
  const storeOptions: OpenStoreOptions = { ...options.store, concurrency };
  const batch = { coalesceGap: options.coalesceGap, maxBlock: options.maxBlock, concurrency, target: options.target };
  if (typeof refsOrUrl !== "string") {
    const resolver = storeResolver(storeOptions, options.base);
    return withResolver(new ReferenceStore(parseReferences(refsOrUrl), { ...batch, resolver }), resolver);
  }
  const url = resolveUrl(refsOrUrl.replace(/\/+$/, ""), process.cwd() + "/");
  if (/\.json$/i.test(url)) {
    const { storeUrl, key } = splitUrl(url);
    const store = openStore(storeUrl, storeOptions);
    let bytes: Uint8Array | undefined;
    try {
      bytes = await store.get(key);
    } finally {
      await store.close();
    }
    if (bytes === undefined) throw new ReferenceSetError("reference file not found", undefined, url);
    const resolver = storeResolver(storeOptions, url);
    const references = parseReferences(new TextDecoder().decode(bytes));
    return withResolver(new ReferenceStore(references, { ...batch, resolver }), resolver);
  }
  // The directory's store stays open for record files read later; closing the ReferenceStore closes it.
  const directory = openStore(url, storeOptions);
  let parquet;
  try {
    parquet = await readParquetReferences("", { store: directory });
  } catch (error) {
    await directory.close();
    if (error instanceof ReferenceSetError && /no \.zmetadata/.test(error.message)) {
      throw new ReferenceSetError("neither a .json reference file nor a parquet reference directory", undefined, url, { cause: error });
    }
    throw error;
  }
  // Relative urls resolve as for a JSON file in the directory's place: a set converted between the
  // two formats at the same path keeps working.
  const resolver = storeResolver(storeOptions, url);
  const references: References = { version: 1, refs: Object.fromEntries(parquet.metadata) };
  return withResolver(new ReferenceStore(references, { ...batch, resolver, lookup: parquet }), {
    close: async () => {
      await resolver.close();
      await directory.close();
    },
  });
}

/** The store closes the resolver it was opened with. */
function withResolver(store: ReferenceStore, resolver: { close(): Promise<void> }): ReferenceStore {
  const close = store.close.bind(store);
  store.close = async () => {
    await close();
    await resolver.close();
  };
  return store;
}
