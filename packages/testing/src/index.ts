export * from "./processes.js";
export * from "./nats.js";
