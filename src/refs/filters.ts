/**
 * HDF5 filter pipeline → zarr v2 `filters` (in pipeline order, with `compressor: null`, as kerchunk
 * writes them). The only place that knows HDF5 filter ids. Ids are the ones Python readers know
 * (numcodecs, imagecodecs) where such a codec exists; `hdf5_*` ids are ours where none does. The
 * table of ids and who defines each format is in src/codecs/index.ts.
 */
import type { CodecConfig } from "../codecs/types.js";
import { UnsupportedFeatureError } from "../errors.js";
import type { Datatype, Filter } from "../hdf5/model.js";

export const HDF5_FILTER = {
  deflate: 1,
  shuffle: 2,
  fletcher32: 3,
  szip: 4,
  nbit: 5,
  scaleoffset: 6,
  bzip2: 307,
  lzf: 32000,
  blosc: 32001,
  lz4: 32004,
  bitshuffle: 32008,
  zstd: 32015,
} as const;

/** Blosc's compressor codes (blosc.h BLOSC_*_FORMAT order), as the HDF5 blosc filter stores them. */
const BLOSC_CNAMES = ["blosclz", "lz4", "lz4hc", "snappy", "zlib", "zstd"];

/**
 * Map a dataset's filter pipeline to zarr v2 codec configurations, first-applied first.
 * `dataset` names the dataset in errors. Throws UnsupportedFeatureError for a filter we cannot map;
 * never drops one.
 */
export function filtersToCodecs(
  filters: Filter[],
  type: Datatype,
  chunkShape: number[],
  dataset = "dataset",
): CodecConfig[] {
  return filters.map((filter) => filterToCodec(filter, type, chunkShape, dataset));
}

function filterToCodec(filter: Filter, type: Datatype, chunkShape: number[], dataset: string): CodecConfig {
  const cd = filter.clientData;
  const label = `HDF5 filter ${filter.id}${filter.name ? ` (${filter.name})` : ""}`;
  const unsupported = (advice: string): never => {
    throw new UnsupportedFeatureError(label, dataset, advice);
  };
  const elements = chunkShape.reduce((a, b) => a * b, 1);
  switch (filter.id) {
    case HDF5_FILTER.deflate:
      return { id: "zlib", level: cd[0] ?? 6 };
    case HDF5_FILTER.shuffle:
      return { id: "shuffle", elementsize: cd[0] ?? typeSize(type) ?? unsupported("shuffle without an element size") };
    case HDF5_FILTER.fletcher32:
      return { id: "fletcher32" };
    case HDF5_FILTER.szip:
      // Mapped (not refused) so references stay complete; decoding refuses with a clear CodecError.
      return { id: "szip", mask: cd[0], pixels_per_block: cd[1], bits_per_pixel: cd[2], pixels_per_scanline: cd[3] };
    case HDF5_FILTER.nbit: {
      // Flag 1: HDF5 found nothing to pack (full-precision type) and stored the bytes untouched.
      if (cd[1] !== undefined && cd[1] !== 0) return { id: "hdf5_nbit", parameters: [...cd] };
      const dtype = numpyDtype(type) ?? unsupported("nbit is decoded for integer and float datasets only");
      if (cd[2] !== elements) {
        unsupported(`client data is for ${cd[2]} elements per chunk, the chunk has ${elements}`);
      }
      return { id: "hdf5_nbit", dtype, parameters: [...cd] };
    }
    case HDF5_FILTER.scaleoffset: {
      const dtype = numpyDtype(type) ?? unsupported("scaleoffset applies to integer and float datasets only");
      if (cd[2] !== elements) unsupported(`client data is for ${cd[2]} elements per chunk, the chunk has ${elements}`);
      return { id: "hdf5_scaleoffset", dtype, parameters: [...cd] };
    }
    case HDF5_FILTER.lzf:
      return { id: "imagecodecs_lzf", header: false };
    case HDF5_FILTER.blosc:
      return {
        id: "blosc",
        cname: BLOSC_CNAMES[cd[6] ?? 0] ?? unsupported(`unknown blosc compressor code ${cd[6]}`),
        clevel: cd[4] ?? 5,
        shuffle: cd[5] ?? 1,
        blocksize: 0,
      };
    case HDF5_FILTER.lz4:
      return cd[0] ? { id: "imagecodecs_lz4h5", blocksize: cd[0] } : { id: "imagecodecs_lz4h5" };
    case HDF5_FILTER.bzip2:
      return { id: "bz2", level: cd[0] ?? 9 };
    case HDF5_FILTER.zstd:
      return { id: "zstd", level: cd[0] ?? 3 };
    case HDF5_FILTER.bitshuffle: {
      const itemsize = cd[2] ?? typeSize(type) ?? unsupported("bitshuffle without an element size");
      const blocksize = cd[3] ?? 0;
      const compression = cd[4] ?? 0;
      if (compression === 0) return { id: "imagecodecs_bitshuffle", itemsize, blocksize };
      if (compression === 2) return { id: "hdf5_bitshuffle", itemsize, blocksize, compression: "lz4" };
      return unsupported(`bitshuffle compression mode ${compression} (only none and LZ4 are supported)`);
    }
    default:
      return unsupported(
        "no codec is known for this filter; rewrite the data with a standard filter (h5repack -f GZIP=4)",
      );
  }
}

/** Bytes per element, when fixed. */
function typeSize(type: Datatype): number | undefined {
  switch (type.class) {
    case "vlen-string":
    case "vlen-sequence":
      return undefined;
    case "enum":
      return typeSize(type.base);
    case "array": {
      const base = typeSize(type.base);
      return base === undefined ? undefined : base * type.dims.reduce((a, b) => a * b, 1);
    }
    default:
      return type.size;
  }
}

/** numpy dtype string of an integer or float type (what nbit/scaleoffset need to know). */
function numpyDtype(type: Datatype): string | undefined {
  if (type.class !== "integer" && type.class !== "float") return undefined;
  const kind = type.class === "float" ? "f" : type.signed ? "i" : "u";
  const order = type.size === 1 ? "|" : type.littleEndian ? "<" : ">";
  return `${order}${kind}${type.size}`;
}
