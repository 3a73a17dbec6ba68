// seek-bzip ships no types; this is the slice of its API the bz2 codec uses.
declare module "seek-bzip" {
  interface ByteInput {
    readByte(): number;
    read(buffer: Uint8Array, offset: number, length: number): number;
    seek(pos: number): void;
    eof(): boolean;
  }
  interface ByteOutput {
    writeByte(byte: number): void;
    getBuffer(): Uint8Array;
  }
  const Bunzip: {
    decode(input: ByteInput | Uint8Array, output?: ByteOutput | number, multistream?: boolean): Uint8Array;
  };
  export default Bunzip;
}
