export { startServer, type ReductionServer } from "./server.js";
export { defaultConfig, loadConfigFile, resolveConfig, type LogEntry, type ServerConfig } from "./config.js";
export { parseRequest, OPERATIONS, type Operation, type ReductionRequest, type Dtype } from "./request.js";
export { runOperation, type OperationResult } from "./operations.js";
export { encodeResponse, decodeCbor } from "./cbor.js";
export { REQUEST_SCHEMA } from "./schema.js";
