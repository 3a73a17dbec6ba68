/** Datasets on object stores (DosNa) and partitioned writes from independent processes (xpartition). */
export { createDataset, createGroup, openDataset, type CreateDatasetOptions } from "./create.js";
export {
  Dataset,
  type ChunkData,
  type ChunkFunction,
  type ChunkInfo,
  type DatasetWriteOptions,
  type Values,
} from "./dataset.js";
export type { LoadSource, MapOptions } from "./ops.js";
export type { Region, Range } from "./grid.js";
export { createOnlyGuarantee, withChunkLock, type LockOptions, type WriteGuarantee } from "./guard.js";
export { parseCodecs, type CodecSpec, type CodecId, type NumericDataType } from "./metadata.js";
