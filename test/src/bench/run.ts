// Entry point of `npm run bench`: runs each benchmark suite in turn.
await import("./pgbench.js");
