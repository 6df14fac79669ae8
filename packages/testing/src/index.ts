export * from "./processes.js";
export * from "./nats.js";
export * from "./random.js";
