export * from "./fingerprint.js";
