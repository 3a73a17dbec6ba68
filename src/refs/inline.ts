/**
 * Inline reference values. kerchunk stores small chunks in the JSON itself: as text when the bytes
 * are plain ASCII (readable and compact), otherwise base64 behind a `base64:` prefix.
 */
import { ReferenceSetError } from "../errors.js";

const BASE64_PREFIX = "base64:";

/** Encodes bytes as an inline reference value. */
export function inlineValue(bytes: Uint8Array): string {
  if (isPlainAscii(bytes)) {
    const text = String.fromCharCode(...bytes);
    // Text starting with the prefix would be mistaken for base64 on the way back.
    if (!text.startsWith(BASE64_PREFIX)) return text;
  }
  return BASE64_PREFIX + Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/** Decodes an inline reference value to the bytes it stands for. */
export function decodeInline(value: string, key?: string): Uint8Array {
  if (value.startsWith(BASE64_PREFIX)) {
    const body = value.slice(BASE64_PREFIX.length);
    // Buffer.from silently skips invalid characters; a corrupt reference must not become garbage.
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body) || body.length % 4 === 1) {
      throw new ReferenceSetError("invalid base64 inline value", key);
    }
    return new Uint8Array(Buffer.from(body, "base64"));
  }
  return new TextEncoder().encode(value);
}

/** Printable ASCII plus tab/newline/carriage return, and short enough to spread into fromCharCode. */
function isPlainAscii(bytes: Uint8Array): boolean {
  if (bytes.length > 65536) return false;
  for (const b of bytes) {
    if (b > 126 || (b < 32 && b !== 9 && b !== 10 && b !== 13)) return false;
  }
  return true;
}

/** Encodes strings in numcodecs' VLenUTF8 layout: u32 count, then (u32 length, UTF-8 bytes) each. */
export function encodeVlenUtf8(values: string[]): Uint8Array {
  const encoder = new TextEncoder();
  const parts = values.map((v) => encoder.encode(v));
  const total = 4 + parts.reduce((n, p) => n + 4 + p.length, 0);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  view.setUint32(0, values.length, true);
  let pos = 4;
  for (const p of parts) {
    view.setUint32(pos, p.length, true);
    out.set(p, pos + 4);
    pos += 4 + p.length;
  }
  return out;
}
