/**
 * HDF5 scale-offset filter (id 6), decode only; our id `hdf5_scaleoffset` with
 * `{ parameters: <the 20 client data values>, dtype?: <numpy dtype, informational> }`.
 *
 * Client data (H5Zscaleoffset.c): 0 scale type (0 float D-scale, 1 float E-scale, 2 integer),
 * 1 scale factor (decimal digits for D-scale, minimum bits for integers; 0 = automatic), 2 elements in
 * a chunk, 3 class (0 integer, 1 float), 4 element size, 5 sign (0 unsigned, 1 two's complement),
 * 6 byte order (0 LE, 1 BE), 7 fill value defined, 8.. the fill value as little-endian 32-bit words.
 *
 * A stored chunk is a 21-byte header (u32 LE minbits, u8 length of minval, minval LE in the next
 * bytes) and then every value's low `minbits` bits, packed most significant bit first. Decoding is
 *   integer: v == 2^minbits - 1 and fill defined ? fill : v + minval   (wrapping at the type width)
 *   float:   v == 2^minbits - 1 and fill defined ? fill : v / 10^D + min (min = minval's bits as the
 *            float type; arithmetic in the float's own precision, as the C code does).
 * minbits == full width means the values are stored as they are (in little-endian order);
 * an integer scale factor of full width means the filter did nothing at all.
 */
import { CodecError } from "../errors.js";
import { BitReader, writeUint } from "./bits.js";
import { type BytesCodec, type ChunkMeta, checkSize, decodedLimit, intArrayOption } from "./types.js";

const ID = "hdf5_scaleoffset";
const HEADER = 21;

interface Params {
  scaleType: number;
  scaleFactor: number;
  count: number;
  float: boolean;
  size: number;
  signed: boolean;
  littleEndian: boolean;
  fill?: Uint8Array;
}

function parse(p: number[]): Params {
  if (p.length < 8) throw new CodecError(`needs at least 8 client data values, got ${p.length}`, ID);
  const float = p[3] === 1;
  if (p[3] !== 0 && p[3] !== 1) throw new CodecError(`unknown datatype class ${p[3]}`, ID);
  const size = p[4];
  if (float ? size !== 4 && size !== 8 : ![1, 2, 4, 8].includes(size)) {
    throw new CodecError(`unsupported ${float ? "float" : "integer"} size ${size}`, ID);
  }
  const scaleType = p[0];
  if (float && scaleType === 1) throw new CodecError("E-scaling is not implemented by HDF5 either", ID);
  if (float ? scaleType !== 0 : scaleType !== 2) throw new CodecError(`scale type ${scaleType} does not fit the datatype`, ID);
  let fill: Uint8Array | undefined;
  if (p[7] === 1) {
    const words = Math.ceil(size / 4);
    if (p.length < 8 + words) throw new CodecError("fill value is defined but missing from client data", ID);
    fill = new Uint8Array(words * 4);
    const view = new DataView(fill.buffer);
    for (let i = 0; i < words; i++) view.setUint32(i * 4, p[8 + i], true);
    fill = fill.subarray(0, size);
  }
  return {
    scaleType,
    scaleFactor: p[1] | 0, // stored unsigned, read back as C int
    count: p[2],
    float,
    size,
    signed: p[5] === 1,
    littleEndian: p[6] === 0,
    fill,
  };
}

export class ScaleOffsetCodec implements BytesCodec {
  static readonly kind = "bytes_to_bytes";
  readonly kind = "bytes_to_bytes" as const;
  private readonly params: Params;

  constructor(parameters: number[], limit: number) {
    this.params = parse(parameters);
    checkSize(ID, "decoded chunk size", this.params.count * this.params.size, limit);
  }

  static fromConfig(config: unknown, meta?: ChunkMeta): ScaleOffsetCodec {
    return new ScaleOffsetCodec(intArrayOption(ID, config, "parameters"), decodedLimit(meta));
  }

  encode(): Uint8Array {
    throw new CodecError("encoding is not implemented (decode only)", ID);
  }

  decode(src: Uint8Array): Uint8Array {
    const { size, count, float, scaleFactor, littleEndian } = this.params;
    const width = size * 8;
    if (!float) {
      const fixed = Math.max(scaleFactor, 0);
      if (fixed > width) throw new CodecError(`minimum bits ${fixed} exceed the ${width}-bit type`, ID);
      if (fixed === width) return src; // the filter stored the data untouched
    }
    if (src.length < HEADER) throw new CodecError(`${src.length} bytes is too short for the ${HEADER}-byte header`, ID);
    const minbits = src[0] | (src[1] << 8) | (src[2] << 16) | (src[3] * 2 ** 24);
    if (minbits > width) throw new CodecError(`minbits ${minbits} exceed the ${width}-bit type (corrupt header)`, ID);
    const minvalSize = Math.min(src[4], 8);
    let minval = 0n;
    for (let i = minvalSize - 1; i >= 0; i--) minval = (minval << 8n) | BigInt(src[5 + i]);

    const out = new Uint8Array(count * size);
    if (minbits === width) {
      if (src.length < HEADER + out.length) throw new CodecError(`truncated: ${src.length - HEADER} of ${out.length} bytes`, ID);
      out.set(src.subarray(HEADER, HEADER + out.length));
      if (!littleEndian) swapEach(out, size);
      return out;
    }
    const reader = new BitReader(src.subarray(HEADER), ID);
    reader.require(count, minbits);
    if (float) this.decodeFloat(reader, minbits, minval, out);
    else this.decodeInteger(reader, minbits, minval, out);
    return out;
  }

  private decodeInteger(reader: BitReader, minbits: number, minval: bigint, out: Uint8Array): void {
    const { size, count, fill, littleEndian } = this.params;
    if (size <= 4) {
      // Plain numbers: minbits < 32 here, and the sum is taken modulo 2^(8 size) as in C.
      const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
      const small = 2 ** minbits - 1;
      const min = Number(minval & 0xffffffffn);
      const modulo = 2 ** (size * 8);
      const fillBytes = fill && (littleEndian ? fill : fill.slice().reverse());
      for (let i = 0; i < count; i++) {
        const v = reader.read(minbits);
        if (fillBytes && v === small) out.set(fillBytes, i * size);
        else {
          const x = (v + min) % modulo;
          if (size === 4) view.setUint32(i * 4, x, littleEndian);
          else if (size === 2) view.setUint16(i * 2, x, littleEndian);
          else out[i] = x;
        }
      }
      return;
    }
    const mask = (1n << BigInt(minbits)) - 1n;
    const wrap = (1n << BigInt(size * 8)) - 1n;
    for (let i = 0; i < count; i++) {
      const v = minbits === 0 ? 0n : reader.readBig(minbits);
      if (fill && v === mask) {
        for (let b = 0; b < size; b++) out[i * size + b] = fill[littleEndian ? b : size - 1 - b];
      } else {
        writeUint(out, i * size, size, (v + minval) & wrap, littleEndian);
      }
    }
  }

  private decodeFloat(reader: BitReader, minbits: number, minval: bigint, out: Uint8Array): void {
    const { size, count, fill, littleEndian, scaleFactor } = this.params;
    const minBytes = new DataView(new ArrayBuffer(8));
    minBytes.setBigUint64(0, minval, true);
    const fillView = fill ? new DataView(fill.buffer, fill.byteOffset, fill.byteLength) : undefined;
    const mask = minbits === 0 ? 0 : 2 ** minbits - 1;
    if (size === 4) {
      const min = minBytes.getFloat32(0, true);
      const scale = Math.fround(10 ** scaleFactor);
      const fillValue = fillView?.getFloat32(0, true);
      // Values land in a Float32Array (native order), swapped afterwards for a big-endian dataset.
      const values = new Float32Array(out.buffer, out.byteOffset, count);
      const hasFill = fillValue !== undefined;
      for (let i = 0; i < count; i++) {
        const v = reader.read(minbits);
        values[i] = hasFill && v === mask ? (fillValue as number) : Math.fround(Math.fround(v) / scale) + min;
      }
      if (littleEndian !== LITTLE_ENDIAN_HOST) swapEach(out, 4);
    } else {
      const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
      const min = minBytes.getFloat64(0, true);
      const scale = 10 ** scaleFactor;
      const fillValue = fillView?.getFloat64(0, true);
      const bigMask = (1n << BigInt(minbits)) - 1n;
      for (let i = 0; i < count; i++) {
        const v = minbits === 0 ? 0n : reader.readBig(minbits);
        const x = fillValue !== undefined && v === bigMask ? fillValue : Number(v) / scale + min;
        view.setFloat64(i * 8, x, littleEndian);
      }
    }
  }
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function swapEach(b: Uint8Array, size: number): void {
  for (let i = 0; i < b.length; i += size) b.subarray(i, i + size).reverse();
}
