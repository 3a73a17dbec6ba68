/**
 * Global heap collections ("GCOL"): where variable-length data (vlen strings and sequences,
 * region references) lives. Collections are read whole once and cached per file context.
 */
import { Hdf5FormatError } from "../errors.js";
import { Cursor, FileContext } from "./io.js";
import { memo } from "./memo.js";

/** An ID stored in a vlen element or region reference: collection address + object index. */
export interface GlobalHeapId {
  collection: number;
  index: number;
}

type Collection = Map<number, Uint8Array>;

const collections = new WeakMap<FileContext, Map<number, Promise<Collection>>>();

async function readCollection(ctx: FileContext, address: number): Promise<Collection> {
  const head = await ctx.cursor(address, 8 + ctx.sizes.lengthSize, "global heap collection");
  head.signature("GCOL");
  const version = head.u8();
  if (version !== 1) throw head.error(`unknown global heap version ${version}`, address);
  head.skip(3);
  const size = head.length();
  if (size < head.pos) throw head.error(`collection size ${size} smaller than its header`, address);
  const read = await ctx.cursor(address, size, "global heap collection");
  // Collections stay cached; copy them so they do not pin the block cache's buffers.
  const c = new Cursor(read.bytes.slice(), address, read.structure, read.sizes, read.sourceName);
  // The collection header, each object header and each object's data are padded to 8 bytes.
  const align8 = (n: number) => Math.ceil(n / 8) * 8;
  c.seek(Math.min(align8(head.pos), c.bytes.length));
  const objects: Collection = new Map();
  const objectHeader = 8 + ctx.sizes.lengthSize;
  while (c.remaining >= objectHeader) {
    const index = c.u16();
    if (index === 0) break; // free space: the rest of the collection
    c.skip(6); // reference count, reserved
    const length = c.length();
    c.skip(Math.min(align8(objectHeader) - objectHeader, c.remaining)); // object header is padded too
    if (length > c.remaining) throw c.error(`object ${index} claims ${length} bytes, ${c.remaining} left`);
    objects.set(index, c.take(length));
    c.skip(Math.min(align8(length) - length, c.remaining));
  }
  return objects;
}

/** The bytes of one global heap object. */
export async function readGlobalHeapObject(ctx: FileContext, id: GlobalHeapId): Promise<Uint8Array> {
  let cache = collections.get(ctx);
  if (!cache) collections.set(ctx, (cache = new Map()));
  const collection = memo(cache, id.collection, () => readCollection(ctx, id.collection));
  const bytes = (await collection).get(id.index);
  if (bytes === undefined) {
    throw new Hdf5FormatError(`no object ${id.index} in global heap collection`, id.collection, "global heap collection", {
      source: ctx.source.name,
    });
  }
  return bytes;
}
