/** s3rver for S3 tests: the same launcher the demo uses (src/cli/embedded-s3.ts). */
export { S3RVER_CREDENTIALS, startS3rver, type S3rverHandle } from "../../src/cli/embedded-s3.js";
