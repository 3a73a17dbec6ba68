/**
 * HDF5 N-bit filter (id 5), decode only; our id `hdf5_nbit` with
 * `{ parameters: <client data>, dtype: <numpy dtype of the dataset, e.g. "<i4"> }` (no dtype when
 * client data 1 says HDF5 stored the chunk untouched).
 *
 * Client data (H5Znbit.c) for an integer or float dataset: 0 number of values, 1 "no compression
 * needed" flag, 2 elements in a chunk, 3 class (1 atomic), 4 size, 5 byte order (0 LE, 1 BE),
 * 6 precision (bits), 7 offset (bits). The stored chunk is every element's `precision` significant
 * bits, most significant first, packed with no alignment.
 *
 * The filter's own output would be the file type's bytes: the field at its bit offset, padding zero.
 * zarr cannot describe such a type, so for integers we also do what HDF5's type conversion does on
 * read: shift the field down and sign-extend it to the full width, which is what h5py returns.
 * Floats get the filter output as is (field restored at its offset); that equals the value when the
 * reduced float still has IEEE field positions. Compound and array datatypes (class 2/3) are
 * refused with a CodecError.
 */
import { CodecError } from "../errors.js";
import { BitReader, writeUint } from "./bits.js";
import { type BytesCodec, type ChunkMeta, checkSize, decodedLimit, intArrayOption, stringOption } from "./types.js";

const ID = "hdf5_nbit";

export class NbitCodec implements BytesCodec {
  static readonly kind = "bytes_to_bytes";
  readonly kind = "bytes_to_bytes" as const;
  private readonly passThrough: boolean;
  private readonly count: number = 0;
  private readonly size: number = 0;
  private readonly littleEndian: boolean = true;
  private readonly precision: number = 0;
  private readonly offset: number = 0;
  private readonly kindOfValue: "signed" | "unsigned" | "float";

  constructor(p: number[], dtype: string | undefined, limit: number) {
    if (p.length < 3 || p[0] !== p.length) {
      throw new CodecError(`client data says ${p[0]} values but has ${p.length}`, ID);
    }
    this.passThrough = p[1] !== 0;
    this.kindOfValue = "unsigned";
    if (this.passThrough) return; // HDF5 stored the chunk untouched: any datatype
    if (p.length < 5) throw new CodecError(`needs at least 5 client data values, got ${p.length}`, ID);
    const m = dtype === undefined ? null : /^([<>|=])([iuf])(\d+)$/.exec(dtype);
    if (!m) throw new CodecError(`dtype "${dtype}" is not an integer or float numpy dtype`, ID);
    this.kindOfValue = m[2] === "i" ? "signed" : m[2] === "u" ? "unsigned" : "float";
    if (p[3] !== 1) throw new CodecError(`datatype class ${p[3]} (array/compound) is not supported`, ID);
    if (p.length < 8) throw new CodecError(`atomic datatype needs 8 client data values, got ${p.length}`, ID);
    [this.count, this.size, this.littleEndian, this.precision, this.offset] = [p[2], p[4], p[5] === 0, p[6], p[7]];
    if (this.size !== Number(m[3])) throw new CodecError(`client data size ${this.size} does not match dtype ${dtype}`, ID);
    if (this.precision < 1 || this.precision + this.offset > this.size * 8) {
      throw new CodecError(`precision ${this.precision} at offset ${this.offset} does not fit ${this.size} bytes`, ID);
    }
    checkSize(ID, "decoded chunk size", this.count * this.size, limit);
  }

  static fromConfig(config: unknown, meta?: ChunkMeta): NbitCodec {
    const parameters = intArrayOption(ID, config, "parameters");
    const dtype = parameters[1] ? undefined : stringOption(ID, config, "dtype");
    return new NbitCodec(parameters, dtype, decodedLimit(meta));
  }

  encode(bytes: Uint8Array): Uint8Array {
    if (this.passThrough) return bytes;
    throw new CodecError("encoding is not implemented (decode only)", ID);
  }

  decode(src: Uint8Array): Uint8Array {
    if (this.passThrough) return src;
    const { count, size, precision, offset, littleEndian } = this;
    const out = new Uint8Array(count * size);
    const reader = new BitReader(src, ID);
    reader.require(count, precision);
    if (size <= 4) {
      this.decodeSmall(reader, out);
      return out;
    }
    const width = BigInt(size * 8);
    const full = (1n << width) - 1n;
    const signBit = 1n << BigInt(precision - 1);
    for (let i = 0; i < count; i++) {
      let v = reader.readBig(precision);
      if (this.kindOfValue === "float") v <<= BigInt(offset);
      else if (this.kindOfValue === "signed" && v & signBit) v = (v - (signBit << 1n)) & full;
      writeUint(out, i * size, size, v, littleEndian);
    }
    return out;
  }

  /** Up to 32-bit types with plain numbers (bigint per element is several times slower). */
  private decodeSmall(reader: BitReader, out: Uint8Array): void {
    const { count, size, precision, offset, littleEndian } = this;
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    const half = 2 ** (precision - 1);
    const shift = 2 ** offset;
    const modulo = 2 ** (size * 8);
    for (let i = 0; i < count; i++) {
      let v = reader.read(precision);
      if (this.kindOfValue === "float") v *= shift;
      else if (this.kindOfValue === "signed" && v >= half) v = v - 2 * half + modulo; // two's complement
      if (size === 4) view.setUint32(i * 4, v, littleEndian);
      else if (size === 2) view.setUint16(i * 2, v, littleEndian);
      else out[i] = v;
    }
  }
}
