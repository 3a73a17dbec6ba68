/**
 * activestore: chunked N-d scientific data on object stores.
 *
 * One pipeline: stores (bytes by key and range) → HDF5 reader (metadata only) → kerchunk
 * references → reference store (a zarrita store) → chunk plan → chunk kernel → partials → result,
 * locally or on an active-storage server. Everything a user imports comes from here.
 */

// Errors
export * from "./errors.js";

// Stores
export * from "./stores/index.js";
export type { GetRangesOptions } from "./stores/object-store.js";
export { BufferPool, sizeClass, type BufferPoolOptions, type BufferPoolStats } from "./stores/buffer-pool.js";
export { ArenaPool, type ArenaPoolOptions } from "./stores/arena-pool.js";

// HDF5 reader (metadata only)
export { openHdf5, Hdf5File, type OpenOptions as Hdf5OpenOptions } from "./hdf5/file.js";
export { byteSourceFromStore, CachedSource, FileContext, type ByteSource } from "./hdf5/io.js";
export { decodeValue } from "./hdf5/datatype-values.js";
export { readChunkIndex, type ChunkIndexOptions } from "./hdf5/chunk-index/index.js";
export type {
  Attribute,
  AttributeValue,
  ChunkEntry,
  ChunkIndexInfo,
  FillValue,
  Dataset,
  Datatype,
  Filter,
  Group,
  Layout,
  Link,
  Node as Hdf5Node,
} from "./hdf5/model.js";

// References (kerchunk)
export {
  buildFromReader,
  buildReferences,
  buildReferencesWithWarnings,
  type BuildOptions,
  type BuildResult,
  type Hdf5Reader,
} from "./refs/build.js";
export {
  localResolver,
  parseReferences,
  ReferenceStore,
  type ReferenceGetOptions,
  type ReferenceStoreOptions,
  type LocalRange,
  type Resolver,
  type TargetStore,
} from "./refs/reference-store.js";
export type { BuildWarning, Reference, References } from "./refs/types.js";
export { readVariable } from "./refs/dump.js";
export { get } from "./zarr/get.js";
export { openReferences, type OpenReferencesOptions } from "./refs/open.js";
export { resolveUrl, type StoreResolver } from "./refs/resolve.js";
export { expandGen } from "./refs/gen.js";
export {
  combineReferences,
  combineReferencesWithNotes,
  type CombineInput,
  type CombineOptions,
  type CombineResult,
  type CoordSource,
} from "./refs/combine.js";
export { referencesJson, writeReferences, type WriteReferencesOptions } from "./refs/write.js";
export {
  readParquetReferences,
  type ParquetReferenceOptions,
  type ParquetReferences,
  type ReferenceLookup,
} from "./refs/parquet-read.js";
export { referencesToParquet } from "./refs/parquet.js";
export { filtersToCodecs, HDF5_FILTER } from "./refs/filters.js";
export { encodeNpy, decodeNpy, type NpyArray } from "./refs/npy.js";

// Codecs
export {
  assertCodecsSupported,
  closeCodecPool,
  CODEC_IDS,
  codecThreads,
  loadCodecChain,
  registerCodecs,
  setCodecThreads,
  type CodecChain,
} from "./codecs/index.js";

// Active reductions
export { Active, type ActiveOptions, type StatisticOptions } from "./active/active.js";
export { openActive, storeResolver, type ActiveSource, type OpenActiveOptions } from "./active/source.js";
export type { ReductionResult, Statistic } from "./active/result.js";
export { combinePartials, type Partials } from "./active/partials.js";
export { reduceChunk, type ChunkSelection, type KernelOptions, type MissingRules } from "./active/kernel.js";
export { reduceArray, workerCount, type ReduceOptions } from "./active/engine.js";
export { reduceArrayThreaded, type ThreadedOptions } from "./active/worker-engine.js";
export { closeReducePool } from "./active/reduce-pool.js";
export { parseSelection, type Selection } from "./active/selection.js";
export { missingRules, packing } from "./active/cf.js";

// Active-storage server (Reductionist API v2) and its client
export * from "./server/index.js";
export {
  missingJson,
  reduceRemote,
  type RemoteArray,
  type RemoteChunk,
  type RemoteOptions,
  type RemoteResult,
} from "./active/remote.js";
export { remoteArray, serverUrl } from "./active/remote-source.js";

// Datasets on object stores and partitioned writes
export * from "./datasets/index.js";
