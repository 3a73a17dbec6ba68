/** The links of a group, whichever way it stores them: symbol table, compact link messages, or dense. */
import { decodeLinkCreationOrderRecord, decodeLinkNameRecord, readBTree2Records } from "./btree2.js";
import { Cursor, UNDEFINED_ADDRESS } from "./io.js";
import { decodeLink, hasDenseStorage, type LinkMessage } from "./messages/link.js";
import type { ObjectInfo, ObjectReader } from "./objects.js";
import { readSymbolTableLinks } from "./symbol-table.js";

/** Links in the order HDF5 lists them: creation order when the group tracks it, else by name. */
export async function readGroupLinks(
  reader: ObjectReader,
  group: ObjectInfo,
  signal?: AbortSignal,
): Promise<LinkMessage[]> {
  const links: LinkMessage[] = [];
  if (group.symbolTable) links.push(...(await readSymbolTableLinks(reader.ctx, group.symbolTable, signal)));
  links.push(...group.links);
  if (group.linkInfo && hasDenseStorage(group.linkInfo)) links.push(...(await readDenseLinks(reader, group, signal)));
  // Link messages carry a creation order exactly when the group tracks it.
  const byCreation = links.every((l) => l.creationOrder !== undefined);
  return links.sort((a, b) =>
    byCreation ? a.creationOrder! - b.creationOrder! : compareNames(a.name, b.name),
  );
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function readDenseLinks(reader: ObjectReader, group: ObjectInfo, signal?: AbortSignal): Promise<LinkMessage[]> {
  const info = group.linkInfo!;
  const heap = await reader.fractalHeap(info.fractalHeapAddress);
  // The name index always exists; the creation-order index only with tracked creation order.
  let ids: Uint8Array[];
  if (info.nameIndexAddress !== UNDEFINED_ADDRESS) {
    ids = (await readBTree2Records(reader.ctx, info.nameIndexAddress, decodeLinkNameRecord, { signal })).map((r) => r.heapId);
  } else if (info.creationOrderIndexAddress !== undefined && info.creationOrderIndexAddress !== UNDEFINED_ADDRESS) {
    ids = (await readBTree2Records(reader.ctx, info.creationOrderIndexAddress, decodeLinkCreationOrderRecord, { signal })).map((r) => r.heapId);
  } else {
    return [];
  }
  return Promise.all(
    ids.map(async (id) => {
      const bytes = await heap.object(id, `dense link storage of the group at offset ${group.address}`);
      return decodeLink(new Cursor(bytes, heap.address, "link message (dense)", reader.ctx.sizes, reader.ctx.source.name));
    }),
  );
}
