/**
 * The plain data the HDF5 reader produces. Nothing here knows zarr or kerchunk: `src/refs` is the
 * only place that maps these to zarr v2 metadata and codec ids.
 */

/** HDF5 datatype, decoded from the datatype message (class 0–10). */
export type Datatype =
  | { class: "integer"; size: number; littleEndian: boolean; signed: boolean }
  | { class: "float"; size: number; littleEndian: boolean }
  | {
      class: "string";
      size: number;
      /** 0 = null-terminated, 1 = null-padded, 2 = space-padded. */
      padding: number;
      charset: "ascii" | "utf-8";
    }
  | { class: "vlen-string"; charset: "ascii" | "utf-8"; padding: number }
  | { class: "vlen-sequence"; base: Datatype }
  | { class: "enum"; base: Datatype; members: { name: string; value: number | bigint }[] }
  | { class: "compound"; size: number; members: CompoundMember[] }
  | { class: "array"; base: Datatype; dims: number[] }
  | { class: "opaque"; size: number; tag: string }
  | { class: "reference"; size: number; kind: "object" | "region" }
  | { class: "bitfield"; size: number; littleEndian: boolean }
  | { class: "time"; size: number; littleEndian: boolean };

export interface CompoundMember {
  name: string;
  offset: number;
  type: Datatype;
}

/** One filter of a pipeline, in pipeline order (the order HDF5 applied them on write). */
export interface Filter {
  /** HDF5 filter id: 1 deflate, 2 shuffle, 3 fletcher32, 4 szip, 5 nbit, 6 scaleoffset, 32000 lzf, ... */
  id: number;
  name?: string;
  /** Filter is optional (flag bit 0): a chunk may skip it; the chunk's filter mask says so. */
  optional: boolean;
  /** Client data values, as stored. */
  clientData: number[];
}

/** Where a chunk's bytes are, as the chunk index says. */
export interface ChunkEntry {
  /** Chunk grid coordinates (dataset offset / chunk dims), one per dimension of the dataspace. */
  coords: number[];
  /** File address of the stored (filtered) bytes. */
  offset: number;
  /** Stored size in bytes. */
  size: number;
  /** Bit i set = filter i of the pipeline was NOT applied to this chunk. */
  filterMask: number;
}

export type Layout =
  | { kind: "compact"; data: Uint8Array }
  | { kind: "contiguous"; /** UNDEFINED_ADDRESS when never written */ address: number; size: number }
  | {
      kind: "chunked";
      /** Chunk dimensions, one per dataspace dimension (the element-size dim is dropped). */
      chunkShape: number[];
      index: ChunkIndexInfo;
      /** Bytes per element, as recorded in the layout message (the dropped last chunk dim). */
      elementSize?: number;
      /** Data layout message version (1–5); v5 (HDF5 2.0) changes filtered chunk size encoding. */
      layoutVersion?: number;
      /** v4+ flag bit 0: partial edge chunks are stored unfiltered. */
      dontFilterPartialEdgeChunks?: boolean;
    }
  | { kind: "virtual" };

/** Which index locates the chunks, with the fields its reader needs. */
export type ChunkIndexInfo =
  | { type: "btree-v1"; address: number }
  | { type: "single"; address: number; filteredSize?: number; filterMask?: number }
  | { type: "implicit"; address: number }
  | { type: "fixed-array"; address: number; pageBits: number }
  | {
      type: "extensible-array";
      address: number;
      maxBits: number;
      indexElements: number;
      minPointers: number;
      minElements: number;
      pageBits: number;
    }
  | { type: "btree-v2"; address: number; nodeSize: number; splitPercent: number; mergePercent: number };

/** An attribute with its value already decoded to JS. */
export interface Attribute {
  name: string;
  type: Datatype;
  /** Dataspace shape; [] for scalar, null for a null dataspace (no value). */
  shape: number[] | null;
  /**
   * Decoded value: numbers (bigint for 64-bit integers that do not fit a double), strings,
   * nested arrays for compound/array types, flattened in C order for multi-dimensional shapes.
   * Enums give their integer value, except h5py's bool enum (FALSE/TRUE) which gives booleans.
   * Object references give the referenced object header address (null when unset); region
   * references give `{ object: address, selection: raw serialized selection bytes }`.
   * Opaque and time values are raw bytes.
   */
  value: AttributeValue;
}

export type AttributeValue =
  | null
  | number
  | bigint
  | string
  | boolean
  | Uint8Array
  | AttributeValue[]
  | { [field: string]: AttributeValue };

export interface FillValue {
  /** Raw bytes of the fill value in the dataset's datatype, or undefined when not defined. */
  bytes?: Uint8Array;
  /** As stored: 1 early, 2 late, 3 incremental (0 = not recorded, old fill value message). */
  allocTime?: number;
  /** 0 on alloc, 1 never, 2 if set by user. */
  fillTime?: number;
}

interface NodeBase {
  /** Absolute path, "/" for the root group. */
  path: string;
  name: string;
  /** Object header address: identifies hard links to the same object. */
  address: number;
  /** In creation order when the object tracks it (netCDF-4 does), else in name order. */
  attributes: Attribute[];
}

export interface Group extends NodeBase {
  kind: "group";
  /** In creation order when the group tracks it, else in name order (as HDF5 lists them). */
  children: Node[];
  /**
   * Set when this hard link points back to an ancestor group (a cycle): the path of that ancestor.
   * Its children are then not repeated here.
   */
  cycleTo?: string;
}

export interface Dataset extends NodeBase {
  kind: "dataset";
  /** [] for scalar; null for a null dataspace. */
  shape: number[] | null;
  maxShape: (number | null)[] | null;
  type: Datatype;
  filters: Filter[];
  fill: FillValue;
  layout: Layout;
}

/** Soft and external links are reported, never followed across files. */
export interface Link {
  kind: "soft-link" | "external-link";
  path: string;
  name: string;
  target: string;
  /** For external links: the file name. */
  file?: string;
}

export type Node = Group | Dataset | Link;
