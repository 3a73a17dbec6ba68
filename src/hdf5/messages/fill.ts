/** Fill value messages: old (0x0004) and new (0x0005) versions 1–3. */
import { Cursor } from "../io.js";
import type { FillValue } from "../model.js";

/** Old fill value message: just the raw value. */
export function decodeFillValueOld(c: Cursor): FillValue {
  const size = c.u32();
  return size > 0 ? { bytes: c.take(size).slice() } : {};
}

export function decodeFillValue(c: Cursor): FillValue {
  const version = c.u8();
  if (version === 1 || version === 2) {
    const allocTime = c.u8();
    const fillTime = c.u8();
    const defined = c.u8();
    // Version 1 always stores the size; version 2 only when a value is defined.
    if (version === 1 || defined) {
      if (c.remaining < 4) return { allocTime, fillTime };
      const size = c.u32();
      if (size > 0) return { bytes: c.take(size).slice(), allocTime, fillTime };
    }
    return { allocTime, fillTime };
  }
  if (version === 3) {
    const flags = c.u8();
    const allocTime = flags & 0x03;
    const fillTime = (flags >> 2) & 0x03;
    if (flags & 0x20) {
      const size = c.u32();
      if (size > 0) return { bytes: c.take(size).slice(), allocTime, fillTime };
    }
    return { allocTime, fillTime };
  }
  throw c.error(`unknown fill value message version ${version}`);
}
