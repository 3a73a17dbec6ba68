/** Filter pipeline message (0x000B), versions 1 and 2. */
import { Cursor } from "../io.js";
import type { Filter } from "../model.js";

const KNOWN_NAMES: Record<number, string> = {
  1: "deflate",
  2: "shuffle",
  3: "fletcher32",
  4: "szip",
  5: "nbit",
  6: "scaleoffset",
};

export function decodeFilterPipeline(c: Cursor): Filter[] {
  const version = c.u8();
  if (version !== 1 && version !== 2) throw c.error(`unknown filter pipeline message version ${version}`);
  const count = c.u8();
  if (count > 32) throw c.error(`filter pipeline of ${count} filters exceeds HDF5's maximum of 32`);
  if (version === 1) c.skip(6);
  const filters: Filter[] = [];
  for (let i = 0; i < count; i++) {
    const id = c.u16();
    // Version 2 omits the name field for the library's own filters (id < 256).
    const nameLength = version === 1 || id >= 256 ? c.u16() : 0;
    const flags = c.u16();
    const valueCount = c.u16();
    let name: string | undefined;
    if (nameLength > 0) {
      const raw = c.take(version === 1 ? Math.ceil(nameLength / 8) * 8 : nameLength);
      const end = raw.indexOf(0);
      name = new TextDecoder().decode(end === -1 ? raw : raw.subarray(0, end));
    }
    const clientData: number[] = [];
    for (let v = 0; v < valueCount; v++) clientData.push(c.u32());
    if (version === 1 && valueCount % 2 === 1) c.skip(4);
    filters.push({ id, name: name || KNOWN_NAMES[id], optional: (flags & 1) !== 0, clientData });
  }
  return filters;
}
