// Generated contracts (ts-proto, `npm run proto`), re-exported from one place.
export * from "./gen/gatehouse/v1/identity.js";
export * from "./gen/gatehouse/v1/command.js";
export * from "./gen/gatehouse/v1/policy.js";
export * from "./gen/gatehouse/v1/audit.js";
export * from "./gen/gatehouse/v1/approval.js";
export * from "./gen/gatehouse/v1/masking.js";
