export * from "./fingerprint.js";
export * from "./classify.js";
export * from "./kinds.js";
