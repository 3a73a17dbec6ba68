/** Local heap ("HEAP"): the names of an old-style (symbol table) group's links. */
import { Cursor, FileContext } from "./io.js";

export class LocalHeap {
  constructor(private readonly data: Cursor) {}

  /** The NUL-terminated string at `offset` in the heap's data segment. */
  string(offset: number): string {
    if (offset >= this.data.bytes.length) {
      throw this.data.error(`name offset ${offset} beyond the ${this.data.bytes.length}-byte data segment`);
    }
    this.data.seek(offset);
    const end = this.data.bytes.indexOf(0, offset);
    if (end === -1) throw this.data.error(`unterminated name at heap offset ${offset}`);
    return this.data.cstring();
  }
}

export async function readLocalHeap(ctx: FileContext, address: number): Promise<LocalHeap> {
  const c = await ctx.cursor(address, 8 + 2 * ctx.sizes.lengthSize + ctx.sizes.offsetSize, "local heap");
  c.signature("HEAP");
  const version = c.u8();
  if (version !== 0) throw c.error(`unknown local heap version ${version}`, address);
  c.skip(3);
  const size = c.length();
  c.length(); // free list head
  const dataAddress = c.offset();
  return new LocalHeap(await ctx.cursor(dataAddress, size, "local heap data segment"));
}
