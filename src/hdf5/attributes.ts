/** A object's attributes, compact (in its header) or dense (fractal heap + v2 B-tree), decoded to JS. */
import { decodeAttributeNameRecord, readBTree2Records } from "./btree2.js";
import { decodeValue } from "./datatype-values.js";
import { Cursor, UNDEFINED_ADDRESS } from "./io.js";
import { decodeAttribute } from "./messages/attribute.js";
import { decodeDataspace } from "./messages/dataspace.js";
import { decodeDatatype } from "./messages/datatype.js";
import { hasDenseStorage } from "./messages/link.js";
import type { Attribute } from "./model.js";
import { MessageType } from "./object-header.js";
import type { ObjectInfo, ObjectReader } from "./objects.js";

export async function readAttributes(
  reader: ObjectReader,
  object: ObjectInfo,
  signal?: AbortSignal,
): Promise<Attribute[]> {
  const bodies: { bytes: Uint8Array; address: number; creationOrder?: number }[] = object.attributeMessages.slice();
  const info = object.attributeInfo;
  if (info && hasDenseStorage(info) && info.nameIndexAddress !== UNDEFINED_ADDRESS) {
    const heap = await reader.fractalHeap(info.fractalHeapAddress);
    const records = await readBTree2Records(reader.ctx, info.nameIndexAddress, decodeAttributeNameRecord, { signal });
    // Requested together: on a remote store, heap blocks not yet cached arrive in parallel.
    const dense = await Promise.all(
      records.map(async (record) => {
        const bytes = await heap.object(record.heapId, `dense attribute storage of the object at offset ${object.address}`);
        const body = await reader.resolve({ type: MessageType.attribute, flags: record.flags, bytes, address: heap.address });
        return { ...body, creationOrder: record.creationOrder };
      }),
    );
    bodies.push(...dense);
  }
  signal?.throwIfAborted();
  const attributes = await Promise.all(bodies.map(async (body) => ({ order: body.creationOrder, attribute: await decodeOne(reader, body) })));
  // HDF5's own listing order: creation order where the object tracks it, else name order.
  const byCreation = object.header.attributeOrderTracked && attributes.every((a) => a.order !== undefined);
  attributes.sort((a, b) =>
    byCreation ? a.order! - b.order! : compareBytes(a.attribute.name, b.attribute.name),
  );
  return attributes.map((a) => a.attribute);
}

/** strcmp order (HDF5 compares names as bytes); UTF-16 code unit order differs above U+FFFF only. */
function compareBytes(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function decodeOne(reader: ObjectReader, body: { bytes: Uint8Array; address: number }): Promise<Attribute> {
  const raw = decodeAttribute(reader.cursor(body, "attribute message"));
  const cursorOf = (b: { bytes: Uint8Array; address: number }, s: string) =>
    new Cursor(b.bytes, b.address, s, reader.ctx.sizes, reader.ctx.source.name);
  const type =
    "shared" in raw.type
      ? decodeDatatype(cursorOf(await reader.resolveShared(raw.type.shared, MessageType.datatype, body.address), "attribute datatype"))
      : raw.type;
  const space =
    "shared" in raw.space
      ? decodeDataspace(cursorOf(await reader.resolveShared(raw.space.shared, MessageType.dataspace, body.address), "attribute dataspace"))
      : raw.space;
  const value = await decodeValue(reader.ctx, type, space.shape, raw.data, {
    address: raw.dataAddress,
    structure: `value of attribute "${raw.name}"`,
  });
  return { name: raw.name, type, shape: space.shape, value };
}
