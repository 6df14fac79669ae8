export * from "./rpc.js";
export * from "./grpc.js";
export * from "./tracing.js";
export * from "./log.js";
export * from "./nats.js";
export * from "./config.js";
export * from "./service.js";
