/**
 * The S3Client an S3Store talks through, configured to stay out of the ObjectStore's way: the
 * SDK's own retries off (the ObjectStore retries with full jitter), checksums only where an
 * operation requires them, a keep-alive agent sized to the store's concurrency, and Content-MD5 on
 * DeleteObjects (see below).
 *
 * This module is the only way into the SDK for s3.ts, which loads it (deps-lazy.ts) on a store's
 * first request: loading `@aws-sdk/client-s3` costs ~0.15 s of CPU and ~20 MiB, which processes
 * that open only local or HTTP stores should not pay. So the commands and the multipart upload
 * (which needs the SDK too) are re-exported from here.
 */
import { S3Client } from "@aws-sdk/client-s3";
import { createHash } from "node:crypto";
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";

export {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
export { md5Base64, multipartUpload } from "./s3-multipart.js";

export interface S3ClientSettings {
  region: string;
  endpoint?: string;
  forcePathStyle?: boolean;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  profile?: string;
  anonymous?: boolean;
  /** Sockets per agent: the store's concurrency. */
  maxSockets: number;
  /** Socket inactivity limit in ms (0 disables). */
  socketTimeoutMs: number;
}

export interface S3Connection {
  client: S3Client;
  close(): void;
}

export function createS3Client(settings: S3ClientSettings): S3Connection {
  const sockets = { keepAlive: true, maxSockets: settings.maxSockets };
  const http = new HttpAgent(sockets);
  const https = new HttpsAgent(sockets);
  const client = new S3Client({
    region: settings.region,
    endpoint: settings.endpoint,
    forcePathStyle: settings.forcePathStyle,
    // Anonymous: a signer that signs nothing, and placeholder credentials so no chain is consulted.
    credentials: settings.anonymous ? { accessKeyId: "", secretAccessKey: "" } : settings.credentials,
    signer: settings.anonymous ? { sign: async (request) => request } : undefined,
    profile: settings.profile,
    maxAttempts: 1,
    // A bucket in another region answers 301 with its region; re-send there instead of failing.
    followRegionRedirects: true,
    // The CRC defaults of newer SDKs break S3-compatible servers that predate them.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    requestHandler: {
      httpAgent: http,
      httpsAgent: https,
      // A backstop for calls the ObjectStore cannot abort (list pages): a silent socket fails.
      requestTimeout: settings.socketTimeoutMs || undefined,
    },
  });
  addDeleteObjectsMd5(client);
  return {
    client,
    close() {
      client.destroy();
      http.destroy();
      https.destroy();
    },
  };
}

/**
 * S3's API documents Content-MD5 as required on DeleteObjects, but the SDK now sends a CRC32
 * instead, which MinIO, Ceph and other S3-compatible servers refuse ("Missing required header for
 * this request: Content-Md5"). Every server accepts Content-MD5, so send that and drop the CRC.
 * Runs after the checksum middleware and before signing.
 */
function addDeleteObjectsMd5(client: S3Client): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const request = args.request as { headers?: Record<string, string>; body?: unknown } | undefined;
      if (context.commandName === "DeleteObjectsCommand" && request?.headers) {
        const body = request.body;
        if (typeof body === "string" || body instanceof Uint8Array) {
          for (const name of Object.keys(request.headers)) {
            const lower = name.toLowerCase();
            if (lower.startsWith("x-amz-checksum-") || lower === "x-amz-sdk-checksum-algorithm") {
              delete request.headers[name];
            }
          }
          request.headers["content-md5"] = createHash("md5").update(body).digest("base64");
        }
      }
      return next(args);
    },
    { step: "finalizeRequest", priority: "high", name: "activestoreDeleteObjectsContentMd5" },
  );
}
