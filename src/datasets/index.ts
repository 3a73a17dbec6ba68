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
export { WorkerPool, type ModuleFunction } from "./pool.js";
export { planPartitions, partitionRegion, type PartitionPlan } from "./partitions.js";
export { detectRank, type RankInfo } from "./ranks.js";
export { openSource, type OpenedSource, type SourceVariable } from "./source.js";
export {
  initConvert,
  convertPartition,
  verifyConversion,
  type ConvertOptions,
  type ConvertReport,
  type VerifyReport,
} from "./convert.js";
