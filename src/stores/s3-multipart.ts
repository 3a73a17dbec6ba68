/**
 * Multipart upload for large objects: parts go up in parallel, each with its own Content-MD5 so S3
 * verifies every part, and a failed upload is aborted so no orphaned parts keep costing storage.
 * The whole upload is one attempt for the retry policy (the Backend contract: no retries here).
 * Reached only through s3-client.ts, so the SDK it imports loads with the client, on first use.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand,
  type CompletedPart,
  type S3Client,
} from "@aws-sdk/client-s3";
import { createHash } from "node:crypto";
import pLimit from "p-limit";

/** S3's limits: parts of at least 5 MiB (except the last) and at most 10 000 of them. */
export const MIN_PART_SIZE = 5 * 1024 * 1024;
export const MAX_PARTS = 10_000;

export interface MultipartParams {
  bucket: string;
  key: string;
  data: Uint8Array;
  partSize: number;
  /** Parts in flight at once. */
  concurrency: number;
  contentEncoding?: string;
  contentType?: string;
  ifNoneMatch?: "*";
  signal?: AbortSignal;
}

export function md5Base64(data: Uint8Array): string {
  return createHash("md5").update(data).digest("base64");
}

/** The part size actually used: at least S3's minimum, and large enough to stay under 10 000 parts. */
export function effectivePartSize(size: number, requested: number): number {
  return Math.max(requested, MIN_PART_SIZE, Math.ceil(size / MAX_PARTS));
}

export async function multipartUpload(client: S3Client, params: MultipartParams): Promise<void> {
  const { bucket, key, data, signal } = params;
  const partSize = effectivePartSize(data.length, params.partSize);
  const created = await client.send(
    new CreateMultipartUploadCommand({
      Bucket: bucket,
      Key: key,
      ContentEncoding: params.contentEncoding,
      ContentType: params.contentType,
    }),
    { abortSignal: signal },
  );
  const uploadId = created.UploadId;
  if (!uploadId) throw new Error("CreateMultipartUpload returned no UploadId");
  // The first failed part stops the others: the whole upload is retried anyway.
  const stop = new AbortController();
  const partSignal = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
  try {
    const limit = pLimit(Math.max(1, params.concurrency));
    const count = Math.max(1, Math.ceil(data.length / partSize));
    const parts: CompletedPart[] = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        limit(async () => {
          partSignal.throwIfAborted();
          const body = data.subarray(i * partSize, Math.min((i + 1) * partSize, data.length));
          const result = await client.send(
            new UploadPartCommand({
              Bucket: bucket,
              Key: key,
              UploadId: uploadId,
              PartNumber: i + 1,
              Body: body,
              ContentLength: body.length,
              ContentMD5: md5Base64(body),
            }),
            { abortSignal: partSignal },
          ).catch((error: unknown) => {
            stop.abort(error);
            throw error;
          });
          return { PartNumber: i + 1, ETag: result.ETag };
        }),
      ),
    );
    await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId: uploadId,
        MultipartUpload: { Parts: parts },
        IfNoneMatch: params.ifNoneMatch,
      }),
      { abortSignal: signal },
    );
  } catch (error) {
    // Best effort: the upload failed anyway, and the caller's signal may already be aborted.
    await client
      .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }))
      .catch(() => undefined);
    throw error;
  }
}
