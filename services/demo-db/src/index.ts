export { startDemoDb, demoDbPort, DEFAULT_DEMO_DB_PORT, type DemoDbOptions, type RunningDemoDb } from "./server.js";
export { seedIfEmpty, SEED, CUSTOMERS, ORDERS } from "./seed.js";
export { luhnValid } from "./fake.js";
export { rawDemoDbSettings } from "./config-file.js";
