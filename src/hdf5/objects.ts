/**
 * One file's object reader: object headers → the messages that matter (resolved when shared),
 * cached by address so hard links to the same object are read once.
 */
import { Hdf5FormatError, UnsupportedFeatureError } from "../errors.js";
import { readFractalHeap, type FractalHeap } from "./fractal-heap.js";
import { memo } from "./memo.js";
import { Cursor, FileContext, UNDEFINED_ADDRESS } from "./io.js";
import { decodeDataspace, type Dataspace } from "./messages/dataspace.js";
import { decodeDatatype } from "./messages/datatype.js";
import { decodeFillValue, decodeFillValueOld } from "./messages/fill.js";
import { decodeFilterPipeline } from "./messages/filters.js";
import { decodeLayout } from "./messages/layout.js";
import {
  decodeAttributeInfo,
  decodeLink,
  decodeLinkInfo,
  decodeSymbolTable,
  type LinkInfo,
  type LinkMessage,
  type SymbolTableMessage,
} from "./messages/link.js";
import {
  decodeShared,
  decodeSharedMessageTable,
  decodeSharedMessageTableMessage,
  sharedMessageFlag,
  type SharedMessage,
  type SharedMessageIndex,
} from "./messages/shared.js";
import type { Datatype, FillValue, Filter, Layout } from "./model.js";
import { MESSAGE_SHARED, MessageType, readObjectHeader, type ObjectHeader, type RawMessage } from "./object-header.js";

/** What an object header says, with shared messages already resolved. */
export interface ObjectInfo {
  address: number;
  header: ObjectHeader;
  kind: "group" | "dataset" | "datatype";
  /** Old-style group. */
  symbolTable?: SymbolTableMessage;
  /** New-style group: compact links are `links`, dense ones sit behind `linkInfo`. */
  linkInfo?: LinkInfo;
  links: LinkMessage[];
  attributeInfo?: LinkInfo;
  /** Attribute message bodies (compact storage), each resolved if shared. */
  attributeMessages: { bytes: Uint8Array; address: number; creationOrder?: number }[];
  space?: Dataspace;
  type?: Datatype;
  fill?: FillValue;
  filters: Filter[];
  layout?: Layout;
}

export class ObjectReader {
  private readonly objects = new Map<number, Promise<ObjectInfo>>();
  private readonly heaps = new Map<number, Promise<FractalHeap>>();
  private sharedIndexes: SharedMessageIndex[] = [];

  constructor(readonly ctx: FileContext) {}

  /** Reads the shared message table from the superblock extension, if the file has one. */
  async loadSharedMessageTable(extensionAddress: number | undefined): Promise<void> {
    if (extensionAddress === undefined || extensionAddress === UNDEFINED_ADDRESS) return;
    const header = await readObjectHeader(this.ctx, extensionAddress);
    const message = header.messages.find((m) => m.type === MessageType.sharedMessageTable);
    if (!message) return;
    const info = decodeSharedMessageTableMessage(this.cursor(message, "shared message table message"));
    const size = 4 + info.indexCount * (1 + 1 + 2 + 4 + 2 + 2 + 2 + 2 * this.ctx.sizes.offsetSize) + 4;
    const c = await this.ctx.cursor(info.tableAddress, size, "shared message table");
    this.sharedIndexes = decodeSharedMessageTable(c, info.indexCount);
  }

  cursor(message: { bytes: Uint8Array; address: number }, structure: string): Cursor {
    return new Cursor(message.bytes, message.address, structure, this.ctx.sizes, this.ctx.source.name);
  }

  fractalHeap(address: number): Promise<FractalHeap> {
    return memo(this.heaps, address, () => readFractalHeap(this.ctx, address));
  }

  object(address: number): Promise<ObjectInfo> {
    return memo(this.objects, address, () => this.readObject(address));
  }

  /** The body of a message of `type`, following a shared-message reference if there is one. */
  async resolve(message: RawMessage, depth = 0): Promise<{ bytes: Uint8Array; address: number }> {
    if (!(message.flags & MESSAGE_SHARED)) return message;
    const shared = decodeShared(this.cursor(message, "shared message"));
    return this.resolveShared(shared, message.type, message.address, depth);
  }

  async resolveShared(
    shared: SharedMessage,
    type: number,
    at: number,
    depth = 0,
  ): Promise<{ bytes: Uint8Array; address: number }> {
    if (depth > 8) {
      throw new Hdf5FormatError("shared message chain too long", at, "shared message", { source: this.ctx.source.name });
    }
    if (shared.where === "header") {
      const header = await readObjectHeader(this.ctx, shared.address);
      const target = header.messages.find((m) => m.type === type);
      if (!target) {
        throw new Hdf5FormatError(`shared message of type ${type} not found in object header ${shared.address}`, at, "shared message", {
          source: this.ctx.source.name,
        });
      }
      return this.resolve(target, depth + 1);
    }
    const bit = sharedMessageFlag(type);
    const index = this.sharedIndexes.find((i) => i.messageTypes & bit);
    if (!index) {
      throw new Hdf5FormatError(`message of type ${type} is in the shared message heap, but the file has no such index`, at, "shared message", {
        source: this.ctx.source.name,
      });
    }
    const heap = await this.fractalHeap(index.fractalHeapAddress);
    const bytes = await heap.object(shared.heapId, `shared message at offset ${at}`);
    return { bytes, address: at };
  }

  private async readObject(address: number): Promise<ObjectInfo> {
    const header = await readObjectHeader(this.ctx, address);
    const info: ObjectInfo = { address, header, kind: "group", links: [], attributeMessages: [], filters: [] };
    let oldFill: FillValue | undefined;
    for (const message of header.messages) {
      switch (message.type) {
        case MessageType.attribute:
          // Attributes are resolved lazily (attributes.ts): a shared attribute is still just bytes.
          info.attributeMessages.push({ ...(await this.resolve(message)), creationOrder: message.creationOrder });
          continue;
        case MessageType.dataspace:
          info.space = decodeDataspace(this.cursor(await this.resolve(message), "dataspace message"));
          continue;
        case MessageType.datatype:
          info.type = decodeDatatype(this.cursor(await this.resolve(message), "datatype message"));
          continue;
        case MessageType.fillValueOld:
          oldFill = decodeFillValueOld(this.cursor(await this.resolve(message), "fill value message"));
          continue;
        case MessageType.fillValue:
          info.fill = decodeFillValue(this.cursor(await this.resolve(message), "fill value message"));
          continue;
        case MessageType.filterPipeline:
          info.filters = decodeFilterPipeline(this.cursor(await this.resolve(message), "filter pipeline message"));
          continue;
        case MessageType.layout:
          info.layout = decodeLayout(this.cursor(message, "data layout message"));
          continue;
        case MessageType.link:
          info.links.push(decodeLink(this.cursor(message, "link message")));
          continue;
        case MessageType.linkInfo:
          info.linkInfo = decodeLinkInfo(this.cursor(message, "link info message"));
          continue;
        case MessageType.attributeInfo:
          info.attributeInfo = decodeAttributeInfo(this.cursor(message, "attribute info message"));
          continue;
        case MessageType.symbolTable:
          info.symbolTable = decodeSymbolTable(this.cursor(message, "symbol table message"));
          continue;
        case MessageType.externalFiles:
          throw new UnsupportedFeatureError(
            "external data storage",
            `object header at offset ${address} (${this.ctx.source.name})`,
            "the dataset's raw data lives in other files",
          );
      }
    }
    // The new fill value message wins; the old one only supplies bytes when the new one has none.
    if (!info.fill) info.fill = oldFill ?? {};
    else if (!info.fill.bytes && oldFill?.bytes) info.fill = { ...info.fill, bytes: oldFill.bytes };
    if (info.layout) {
      info.kind = "dataset";
      if (!info.space || !info.type) {
        throw new Hdf5FormatError("dataset without dataspace or datatype message", address, "object header", {
          source: this.ctx.source.name,
        });
      }
    } else if (info.space) {
      // Only datasets have a dataspace; one without a layout cannot be read, so say so.
      throw new Hdf5FormatError("object with a dataspace but no data layout message", address, "object header", {
        source: this.ctx.source.name,
      });
    } else if (info.type && !info.symbolTable && !info.linkInfo && info.links.length === 0) {
      info.kind = "datatype";
    }
    return info;
  }
}
