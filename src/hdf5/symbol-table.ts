/**
 * Old-style groups: a v1 B-tree of group nodes leads to symbol table nodes ("SNOD"), whose entries
 * name their links through the group's local heap.
 */
import { readGroupBTree1 } from "./btree1.js";
import { FileContext } from "./io.js";
import { readLocalHeap, type LocalHeap } from "./local-heap.js";
import type { LinkMessage } from "./messages/link.js";
import type { SymbolTableMessage } from "./messages/link.js";
import { readSymbolTableEntry } from "./superblock.js";

export async function readSymbolTableLinks(
  ctx: FileContext,
  table: SymbolTableMessage,
  signal?: AbortSignal,
): Promise<LinkMessage[]> {
  const [heap, nodes] = await Promise.all([
    readLocalHeap(ctx, table.heapAddress),
    readGroupBTree1(ctx, table.btreeAddress, { signal }),
  ]);
  const entrySize = 2 * ctx.sizes.offsetSize + 24;
  // A corrupt tree may list a node twice; its names would repeat.
  const unique = [...new Set(nodes)];
  const perNode = await Promise.all(unique.map((address) => readNode(ctx, address, heap, entrySize)));
  return perNode.flat();
}

async function readNode(ctx: FileContext, address: number, heap: LocalHeap, entrySize: number): Promise<LinkMessage[]> {
  const head = await ctx.cursor(address, 8, "symbol table node");
  head.signature("SNOD");
  const version = head.u8();
  if (version !== 1) throw head.error(`unknown symbol table node version ${version}`, address);
  head.skip(1);
  const count = head.u16();
  const c = await ctx.cursor(address + 8, count * entrySize, "symbol table node");
  const links: LinkMessage[] = [];
  for (let i = 0; i < count; i++) {
    const entry = readSymbolTableEntry(c);
    const name = heap.string(entry.nameOffset);
    if (entry.softLinkOffset !== undefined) {
      links.push({ kind: "soft", name, target: heap.string(entry.softLinkOffset) });
    } else {
      links.push({ kind: "hard", name, address: entry.objectAddress });
    }
  }
  return links;
}
