/** The store layer: the Store contract, the generic ObjectStore and one adapter per service. */
export type {
  Batch,
  BatchItem,
  BatchOptions,
  BatchProgress,
  Compression,
  ObjectInfo,
  RangeQuery,
  ReadOptions,
  Store,
  WriteOptions,
} from "./types.js";
export type { Backend, BackendWriteOptions, ByteRange, Retrier, StoredObject } from "./backend.js";
export { ObjectStore, normalizeKey, type StoreOptions, type StoreStats } from "./object-store.js";
export type { RetryPolicy } from "./retry.js";
export { MemoryBackend, MemoryStore } from "./memory.js";
export { LocalBackend, LocalStore, type LocalStoreOptions } from "./local.js";
export { HttpBackend, HttpStore, type HttpStoreOptions } from "./http.js";
export { S3Backend, S3Store, type S3Credentials, type S3Options } from "./s3.js";
export { GcsBackend, GcsStore, GCS_ENDPOINT, type GcsStoreOptions, type TokenSource } from "./gcs.js";
export { openStore, splitUrl, type HttpOpenOptions, type OpenStoreOptions, type S3OpenOptions } from "./open.js";
