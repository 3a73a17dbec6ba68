/**
 * Uploads to GCS. Small objects go up as one `uploadType=multipart` request: the JSON part carries
 * the metadata a plain `uploadType=media` upload cannot (contentEncoding would fit in a query
 * parameter, but md5Hash would not), and GCS rejects the upload if the bytes do not match md5Hash.
 * Large objects use a resumable session: chunks of a multiple of 256 KiB, each PUT answered by
 * 308 Resume Incomplete and a `Range` header saying how much was persisted. A session outlives a
 * failed attempt: the retry asks the session where it stands and continues from there.
 */
import { createHash, randomBytes } from "node:crypto";
import { StoreError } from "../errors.js";
import type { BackendWriteOptions } from "./backend.js";
import { encodePart, headerValue, queryString, type GcsTransport, type Where } from "./gcs-http.js";

/** Google requires non-final resumable chunks to be multiples of this. */
export const CHUNK_QUANTUM = 256 * 1024;

export interface UploadTarget {
  bucket: string;
  /** Full object name (store prefix included). */
  name: string;
}

function md5Base64(data: Uint8Array): string {
  return createHash("md5").update(data).digest("base64");
}

function metadata(target: UploadTarget, data: Uint8Array, options: BackendWriteOptions): Record<string, string> {
  const meta: Record<string, string> = { name: target.name, md5Hash: md5Base64(data) };
  if (options.contentType) meta.contentType = options.contentType;
  if (options.contentEncoding) meta.contentEncoding = options.contentEncoding;
  return meta;
}

function uploadPath(target: UploadTarget, params: Record<string, string | undefined>): string {
  return `/upload/storage/v1/b/${encodePart(target.bucket)}/o${queryString(params)}`;
}

export async function multipartUpload(
  http: GcsTransport,
  target: UploadTarget,
  data: Uint8Array,
  options: BackendWriteOptions,
  where: Where,
): Promise<void> {
  const meta = JSON.stringify(metadata(target, data, options));
  let boundary = `activestore-${randomBytes(12).toString("hex")}`;
  while (Buffer.from(data.buffer, data.byteOffset, data.byteLength).includes(boundary)) {
    boundary = `activestore-${randomBytes(12).toString("hex")}`;
  }
  const body = Buffer.concat([
    Buffer.from(
      `--${boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n${meta}\r\n` +
        `--${boundary}\r\nContent-Type: ${options.contentType ?? "application/octet-stream"}\r\n\r\n`,
    ),
    data,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  const path = uploadPath(target, {
    uploadType: "multipart",
    ifGenerationMatch: options.ifNoneMatch === "*" ? "0" : undefined,
  });
  const res = await http.send(
    "POST",
    path,
    { headers: { "content-type": `multipart/related; boundary=${boundary}` }, body, signal: options.signal },
    where,
  );
  if (res.statusCode !== 200 && res.statusCode !== 201) throw await http.failure(res, where);
  await http.discard(res);
}

/**
 * Open sessions by the exact buffer being uploaded and the object name, so a retried write (same
 * buffer, same name) resumes instead of restarting. Weak: a finished or abandoned write's entry
 * goes away with its buffer.
 */
const openSessions = new WeakMap<Uint8Array, Map<string, string>>();
const sessions = {
  get(data: Uint8Array, name: string): string | undefined {
    return openSessions.get(data)?.get(name);
  },
  set(data: Uint8Array, name: string, uri: string): void {
    let byName = openSessions.get(data);
    if (!byName) openSessions.set(data, (byName = new Map()));
    byName.set(name, uri);
  },
  delete(data: Uint8Array, name: string): void {
    openSessions.get(data)?.delete(name);
  },
};

/** Bytes a session has persisted, from the `Range: bytes=0-N` of a 308 (none: nothing yet). */
function persistedFrom(range: string | undefined): number {
  const m = range && /^bytes=0-(\d+)$/.exec(range.trim());
  return m ? Number(m[1]) + 1 : 0;
}

export async function resumableUpload(
  http: GcsTransport,
  target: UploadTarget,
  data: Uint8Array,
  options: BackendWriteOptions,
  chunkSize: number,
  where: Where,
): Promise<void> {
  const total = data.length;
  const signal = options.signal;
  let offset = 0;
  const name = target.name;
  let session = sessions.get(data, name);
  if (session) {
    // A previous attempt failed mid-way: ask the session how much it kept.
    const res = await http.send(
      "PUT",
      session,
      { headers: { "content-range": `bytes */${total}`, "content-length": "0" }, signal },
      where,
    );
    if (res.statusCode === 200 || res.statusCode === 201) {
      sessions.delete(data, name);
      return http.discard(res);
    }
    if (res.statusCode === 308) {
      offset = persistedFrom(headerValue(res, "range"));
      await http.discard(res);
    } else if (res.statusCode === 404 || res.statusCode === 410) {
      await http.discard(res); // expired: start again below
      session = undefined;
    } else {
      throw await http.failure(res, where);
    }
  }

  if (!session) {
    const res = await http.send(
      "POST",
      uploadPath(target, {
        uploadType: "resumable",
        ifGenerationMatch: options.ifNoneMatch === "*" ? "0" : undefined,
      }),
      {
        headers: {
          "content-type": "application/json; charset=UTF-8",
          "x-upload-content-type": options.contentType ?? "application/octet-stream",
          "x-upload-content-length": String(total),
        },
        body: JSON.stringify(metadata(target, data, options)),
        signal,
      },
      where,
    );
    if (res.statusCode !== 200 && res.statusCode !== 201) throw await http.failure(res, where);
    const uri = headerValue(res, "location");
    await http.discard(res);
    if (!uri) throw new StoreError("resumable upload started without a Location header", { ...where, status: res.statusCode });
    session = uri;
    sessions.set(data, name, uri);
  }

  let stalled = 0;
  for (;;) {
    const end = Math.min(offset + chunkSize, total);
    // Everything persisted but not yet finalized: an empty PUT with the total completes it.
    const contentRange = offset < total ? `bytes ${offset}-${end - 1}/${total}` : `bytes */${total}`;
    const res = await http.send(
      "PUT",
      session,
      { headers: { "content-range": contentRange }, body: data.subarray(offset, end), signal },
      where,
    );
    if (res.statusCode === 200 || res.statusCode === 201) {
      sessions.delete(data, name);
      return http.discard(res);
    }
    if (res.statusCode === 404 || res.statusCode === 410) {
      sessions.delete(data, name);
      await http.discard(res);
      throw new StoreError("resumable upload session expired; the next attempt starts a new one", {
        ...where,
        status: res.statusCode,
        retryable: true,
      });
    }
    if (res.statusCode !== 308) {
      if (res.statusCode < 500 && res.statusCode !== 429 && res.statusCode !== 408) sessions.delete(data, name);
      throw await http.failure(res, where);
    }
    const persisted = persistedFrom(headerValue(res, "range"));
    await http.discard(res);
    // The server may keep less than we sent (or nothing); never spin on a session that takes nothing.
    stalled = persisted > offset ? 0 : stalled + 1;
    if (stalled >= 3) {
      throw new StoreError(`resumable upload made no progress at byte ${offset} of ${total}`, {
        ...where,
        status: 308,
        retryable: true,
      });
    }
    if (persisted > total) {
      sessions.delete(data, name);
      throw new StoreError(`server reports ${persisted} bytes persisted of a ${total}-byte upload`, where);
    }
    offset = persisted;
  }
}
