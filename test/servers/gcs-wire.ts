/** Wire-format helpers for the in-test GCS server: hashes, Range and multipart parsing, errors. */
import { createHash } from "node:crypto";
import type { IncomingMessage } from "node:http";

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[i] = c >>> 0;
  }
  return table;
})();

export function crc32c(data: Uint8Array): string {
  let c = 0xffffffff;
  for (const byte of data) c = CRC32C_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  const out = Buffer.alloc(4);
  out.writeUInt32BE((c ^ 0xffffffff) >>> 0);
  return out.toString("base64");
}

export const md5 = (data: Uint8Array) => createHash("md5").update(data).digest("base64");

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly reason = "invalid",
  ) {
    super(message);
  }
}

export function checkMd5(expected: unknown, data: Uint8Array): void {
  if (typeof expected !== "string") return;
  const actual = md5(data);
  if (expected !== actual) {
    throw new HttpError(400, `Provided MD5 hash "${expected}" doesn't match calculated MD5 hash "${actual}".`, "invalid");
  }
}

export function parseRange(header: string | undefined, size: number): { start: number; end: number } | "unsatisfiable" | undefined {
  const m = header && /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return undefined; // absent, multi-range or malformed: whole object
  if (m[1] === "") {
    const n = Number(m[2]);
    if (n === 0 || size === 0) return "unsatisfiable";
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size) return "unsatisfiable";
  if (end < start) return undefined;
  return { start, end };
}

export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/** `multipart/related`: a JSON metadata part, then the media part. */
export function parseMultipart(
  contentType: string | undefined,
  body: Buffer,
): { metadata: Record<string, unknown>; media: Buffer; mediaType: string } {
  const boundary = /boundary="?([^";]+)"?/i.exec(contentType ?? "")?.[1];
  if (!contentType?.startsWith("multipart/related") || !boundary) {
    throw new HttpError(400, "Multipart upload needs Content-Type multipart/related with a boundary.", "invalid");
  }
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: Buffer[] = [];
  let at = body.indexOf(delimiter);
  while (at >= 0) {
    const start = at + delimiter.length;
    if (body.subarray(start, start + 2).toString() === "--") break;
    const next = body.indexOf(delimiter, start);
    if (next < 0) break;
    // Each part sits between "\r\n" after the delimiter and "\r\n" before the next one.
    parts.push(body.subarray(start + 2, next - 2));
    at = next;
  }
  if (parts.length !== 2) throw new HttpError(400, `Multipart body must have 2 parts, got ${parts.length}.`, "invalid");
  const split = (part: Buffer) => {
    const cut = part.indexOf("\r\n\r\n");
    if (cut < 0) throw new HttpError(400, "Malformed multipart part.", "invalid");
    return { head: part.subarray(0, cut).toString("latin1"), content: part.subarray(cut + 4) };
  };
  const meta = split(parts[0]);
  const media = split(parts[1]);
  return {
    metadata: JSON.parse(meta.content.toString("utf8")) as Record<string, unknown>,
    media: Buffer.from(media.content),
    mediaType: /content-type:\s*([^\r\n]+)/i.exec(media.head)?.[1]?.trim() ?? "application/octet-stream",
  };
}
