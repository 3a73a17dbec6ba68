/**
 * Object headers, version 1 and version 2 ("OHDR"), with their continuation blocks ("OCHK" in v2).
 * The result is the flat list of raw messages; decoding a message is the job of messages/*.
 */
import { Hdf5FormatError } from "../errors.js";
import { Cursor, FileContext, UNDEFINED_ADDRESS, verifyChecksum } from "./io.js";

export const MessageType = {
  nil: 0x0,
  dataspace: 0x1,
  linkInfo: 0x2,
  datatype: 0x3,
  fillValueOld: 0x4,
  fillValue: 0x5,
  link: 0x6,
  externalFiles: 0x7,
  layout: 0x8,
  bogus: 0x9,
  groupInfo: 0xa,
  filterPipeline: 0xb,
  attribute: 0xc,
  comment: 0xd,
  modificationTimeOld: 0xe,
  sharedMessageTable: 0xf,
  continuation: 0x10,
  symbolTable: 0x11,
  modificationTime: 0x12,
  btreeK: 0x13,
  driverInfo: 0x14,
  attributeInfo: 0x15,
  referenceCount: 0x16,
} as const;

/** Message flag bit 1: the body is a shared-message reference, not the message itself. */
export const MESSAGE_SHARED = 0x02;

export interface RawMessage {
  type: number;
  flags: number;
  /** The message body (for shared messages: the shared-message encoding). */
  bytes: Uint8Array;
  /** File address of `bytes[0]`, for error messages. */
  address: number;
  creationOrder?: number;
}

export interface ObjectHeader {
  address: number;
  version: 1 | 2;
  messages: RawMessage[];
  /** v2 flag bit 4: attribute storage phase change values. */
  maxCompactAttributes?: number;
  minDenseAttributes?: number;
  /** v2 flag bit 2: attribute messages carry a creation order, so that is their listing order. */
  attributeOrderTracked: boolean;
}

/** Upper bound on continuation blocks: far more than any real header, small enough to stop a loop. */
const MAX_CHUNKS = 100_000;

/** A cursor over one message body, so message decoders report real file offsets. */
export function messageCursor(ctx: FileContext, message: RawMessage, structure: string): Cursor {
  return new Cursor(message.bytes, message.address, structure, ctx.sizes, ctx.source.name);
}

export async function readObjectHeader(ctx: FileContext, address: number): Promise<ObjectHeader> {
  if (address === UNDEFINED_ADDRESS) {
    throw new Hdf5FormatError("undefined object header address", address, "object header", {
      source: ctx.source.name,
    });
  }
  const first = await ctx.cursorUpTo(address, 16, "object header");
  if (first.remaining >= 4 && String.fromCharCode(...first.bytes.subarray(0, 4)) === "OHDR") {
    return readV2(ctx, address);
  }
  return readV1(ctx, address);
}

async function readV1(ctx: FileContext, address: number): Promise<ObjectHeader> {
  const c = await ctx.cursor(address, 16, "object header");
  const version = c.u8();
  if (version !== 1) throw c.error(`unknown object header version ${version}`, address);
  c.skip(1);
  c.u16(); // message count: we trust the chunks instead (gaps hold NIL messages)
  c.u32(); // reference count
  const size = c.u32();
  const messages: RawMessage[] = [];
  const pending: [number, number][] = [[address + 16, size]];
  const seen = new Set<number>();
  while (pending.length > 0) {
    const [at, length] = pending.shift()!;
    enterChunk(ctx, seen, at, address);
    const chunk = await ctx.cursor(at, length, "object header");
    while (chunk.remaining >= 8) {
      const type = chunk.u16();
      const msgSize = chunk.u16();
      const flags = chunk.u8();
      chunk.skip(3);
      if (msgSize > chunk.remaining) {
        throw chunk.error(`message of type ${type} claims ${msgSize} bytes, ${chunk.remaining} left`);
      }
      const msgAddress = chunk.address;
      const bytes = chunk.take(msgSize).slice(); // own copy: a view would pin the cache block
      collect(ctx, messages, pending, { type, flags, bytes, address: msgAddress });
    }
  }
  return { address, version: 1, messages, attributeOrderTracked: false };
}

async function readV2(ctx: FileContext, address: number): Promise<ObjectHeader> {
  // Prefix: signature, version, flags, optional times and phase change, chunk-0 size (≤ 8 bytes).
  const c = await ctx.cursorUpTo(address, 4 + 2 + 16 + 4 + 8, "object header");
  c.signature("OHDR");
  const version = c.u8();
  if (version !== 2) throw c.error(`unknown object header version ${version}`, address);
  const flags = c.u8();
  if (flags & 0x20) c.skip(16); // access, modification, change, birth times
  let maxCompactAttributes: number | undefined;
  let minDenseAttributes: number | undefined;
  if (flags & 0x10) {
    maxCompactAttributes = c.u16();
    minDenseAttributes = c.u16();
  }
  const sizeWidth = 1 << (flags & 0x03);
  const chunkSize = c.uint(sizeWidth);
  const prefix = c.pos;
  const messages: RawMessage[] = [];
  const seen = new Set<number>();
  enterChunk(ctx, seen, address, address);
  const chunk0 = await ctx.cursor(address, prefix + chunkSize + 4, "object header");
  verifyChecksum(chunk0, 0, prefix + chunkSize);
  const pending: [number, number][] = [];
  readV2Messages(ctx, chunk0.seek(prefix), prefix + chunkSize, flags, messages, pending);
  while (pending.length > 0) {
    const [at, length] = pending.shift()!;
    enterChunk(ctx, seen, at, address);
    if (length < 8) throw new Hdf5FormatError(`continuation block of ${length} bytes`, at, "object header continuation", { source: ctx.source.name });
    const block = await ctx.cursor(at, length, "object header continuation");
    block.signature("OCHK");
    verifyChecksum(block, 0, length - 4);
    readV2Messages(ctx, block, length - 4, flags, messages, pending);
  }
  return {
    address,
    version: 2,
    messages,
    maxCompactAttributes,
    minDenseAttributes,
    attributeOrderTracked: (flags & 0x04) !== 0,
  };
}

function readV2Messages(
  ctx: FileContext,
  c: Cursor,
  end: number,
  headerFlags: number,
  messages: RawMessage[],
  pending: [number, number][],
): void {
  const headerSize = headerFlags & 0x04 ? 6 : 4;
  // Space shorter than a message header at the end of a chunk is a gap, not a message.
  while (end - c.pos >= headerSize) {
    const type = c.u8();
    const size = c.u16();
    const flags = c.u8();
    const creationOrder = headerFlags & 0x04 ? c.u16() : undefined;
    if (size > end - c.pos) {
      throw c.error(`message of type ${type} claims ${size} bytes, ${end - c.pos} left in chunk`);
    }
    const address = c.address;
    // Own copy: parsed headers are cached, and a view would pin the whole cache block.
    collect(ctx, messages, pending, { type, flags, bytes: c.take(size).slice(), address, creationOrder });
  }
}

function collect(
  ctx: FileContext,
  messages: RawMessage[],
  pending: [number, number][],
  message: RawMessage,
): void {
  if (message.type === MessageType.continuation) {
    const c = messageCursor(ctx, message, "continuation message");
    const at = c.offset();
    const length = c.length();
    pending.push([at, length]);
    return;
  }
  if (message.type !== MessageType.nil) messages.push(message);
}

function enterChunk(ctx: FileContext, seen: Set<number>, at: number, header: number): void {
  if (seen.has(at)) {
    throw new Hdf5FormatError(`continuation cycle back to ${at}`, header, "object header", {
      source: ctx.source.name,
    });
  }
  if (seen.size >= MAX_CHUNKS) {
    throw new Hdf5FormatError(`more than ${MAX_CHUNKS} continuation blocks`, header, "object header", {
      source: ctx.source.name,
    });
  }
  seen.add(at);
}
