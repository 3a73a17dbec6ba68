/**
 * Entry point of the HDF5 reader: `openHdf5(source)` reads the superblock through a block cache,
 * and the returned `Hdf5File` walks the object tree lazily — only metadata bytes are ever read.
 *
 *   const file = await openHdf5(byteSourceFromStore(store, "tas.nc"));
 *   const tas = await file.get("/tas");            // Dataset: shape, type, filters, fill, layout, attributes
 *   const chunks = await file.chunks(tas as Dataset); // where each chunk's bytes are
 *
 * Group children come in creation order when the group tracks it, else in name order.
 */
import { Hdf5FormatError } from "../errors.js";
import { readAttributes } from "./attributes.js";
import { readChunkIndex } from "./chunk-index/index.js";
import { readGroupLinks } from "./groups.js";
import { CachedSource, FileContext, type ByteSource } from "./io.js";
import type { LinkMessage } from "./messages/link.js";
import type { ChunkEntry, Dataset, Group, Node } from "./model.js";
import { ObjectReader, type ObjectInfo } from "./objects.js";
import { readSuperblock } from "./superblock.js";

export interface OpenOptions {
  /** Block cache: bytes per block (default 64 KiB). */
  blockSize?: number;
  /** Block cache: blocks fetched past a miss in the same request (default 3). */
  readAhead?: number;
  /** Block cache: blocks kept (default 256). */
  maxBlocks?: number;
  signal?: AbortSignal;
}

/** Guards against hard-link graphs that fan out exponentially (a DAG reused at every level). */
const MAX_NODES = 1_000_000;
/** Soft links followed while resolving one path. */
const MAX_SOFT_LINKS = 32;

export async function openHdf5(source: ByteSource, options: OpenOptions = {}): Promise<Hdf5File> {
  options.signal?.throwIfAborted();
  const cached = new CachedSource(source, options);
  const superblock = await readSuperblock(cached);
  const { offsetSize, lengthSize } = superblock;
  const ctx = new FileContext(cached, { offsetSize, lengthSize }, superblock.base);
  const reader = new ObjectReader(ctx);
  await reader.loadSharedMessageTable(superblock.extensionAddress);
  return new Hdf5File(ctx, reader, superblock.version, superblock.rootAddress, options.signal);
}

export class Hdf5File {
  /** @internal use openHdf5() */
  constructor(
    readonly context: FileContext,
    private readonly reader: ObjectReader,
    readonly superblockVersion: number,
    /** Object header address of the root group. */
    readonly rootAddress: number,
    private readonly signal?: AbortSignal,
  ) {}

  /** The whole tree, attributes decoded. A hard link back to an ancestor is marked `cycleTo`. */
  async root(): Promise<Group> {
    const info = await this.reader.object(this.rootAddress);
    if (info.kind !== "group") throw this.error("root object is not a group", this.rootAddress);
    const node = await this.build(info, "/", "", new Map(), { count: 0 });
    return node as Group;
  }

  /** The node at an absolute path ("/a/b"), or undefined when no such link exists. */
  async get(path: string): Promise<Node | undefined> {
    return this.resolve(path, 0);
  }

  private async resolve(path: string, softLinksFollowed: number): Promise<Node | undefined> {
    const parts = path.split("/").filter((p) => p !== "" && p !== ".");
    let info = await this.reader.object(this.rootAddress);
    const ancestors = new Map<number, string>();
    let current = "/";
    for (let i = 0; i < parts.length; i++) {
      if (info.kind !== "group") return undefined;
      ancestors.set(info.address, current);
      const link = (await readGroupLinks(this.reader, info, this.signal)).find((l) => l.name === parts[i]);
      if (!link) return undefined;
      const childPath = join(current, link.name);
      if (i === parts.length - 1) {
        if (link.kind !== "hard") return linkNode(link, childPath);
        const target = await this.reader.object(link.address);
        if (target.kind === "datatype") return undefined;
        return this.build(target, childPath, link.name, ancestors, { count: 0 });
      }
      if (link.kind === "external") return undefined;
      if (link.kind === "soft") {
        if (softLinksFollowed >= MAX_SOFT_LINKS) {
          throw this.error(`more than ${MAX_SOFT_LINKS} soft links followed resolving "${path}" (a soft link loop?)`, info.address);
        }
        const rest = parts.slice(i + 1).join("/");
        const base = link.target.startsWith("/") ? link.target : join(current, link.target);
        return this.resolve(`${base}/${rest}`, softLinksFollowed + 1);
      }
      info = await this.reader.object(link.address);
      current = childPath;
    }
    return this.build(info, current, current === "/" ? "" : parts[parts.length - 1], new Map(), { count: 0 });
  }

  /** Every stored chunk of a chunked dataset (delegates to the chunk index readers). */
  chunks(dataset: Dataset): Promise<ChunkEntry[]> {
    return readChunkIndex(this.context, dataset, { signal: this.signal });
  }

  private async build(
    info: ObjectInfo,
    path: string,
    name: string,
    ancestors: Map<number, string>,
    budget: { count: number },
  ): Promise<Group | Dataset> {
    this.signal?.throwIfAborted();
    if (++budget.count > MAX_NODES) throw this.error(`more than ${MAX_NODES} objects reachable`, info.address);
    const attributes = await readAttributes(this.reader, info, this.signal);
    if (info.kind === "dataset") {
      return {
        kind: "dataset",
        path,
        name,
        address: info.address,
        attributes,
        shape: info.space!.shape,
        maxShape: info.space!.maxShape,
        type: info.type!,
        filters: info.filters,
        fill: info.fill ?? {},
        layout: info.layout!,
      };
    }
    const group: Group = { kind: "group", path, name, address: info.address, attributes, children: [] };
    const ancestor = ancestors.get(info.address);
    if (ancestor !== undefined) {
      group.cycleTo = ancestor;
      return group;
    }
    const inner = new Map(ancestors).set(info.address, path);
    const links = await readGroupLinks(this.reader, info, this.signal);
    const children = await Promise.all(
      links.map(async (link): Promise<Node | undefined> => {
        const childPath = join(path, link.name);
        if (link.kind !== "hard") return linkNode(link, childPath);
        const child = await this.reader.object(link.address);
        if (child.kind === "datatype") return undefined; // committed datatypes are types, not data
        return this.build(child, childPath, link.name, inner, budget);
      }),
    );
    group.children = children.filter((c): c is Node => c !== undefined);
    return group;
  }

  private error(message: string, at: number): Hdf5FormatError {
    return new Hdf5FormatError(message, at, "object tree", { source: this.context.source.name });
  }
}

function join(parent: string, name: string): string {
  return parent === "/" ? `/${name}` : `${parent}/${name}`;
}

function linkNode(link: Exclude<LinkMessage, { kind: "hard" }>, path: string): Node {
  if (link.kind === "soft") return { kind: "soft-link", path, name: link.name, target: link.target };
  return { kind: "external-link", path, name: link.name, target: link.target, file: link.file };
}
