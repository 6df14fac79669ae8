// The shared test support (packages/testing), re-exported for the end-to-end suites.
export { freePort, repoRoot, startProcess, startNats, type Proc, type TestNats } from "@gatehouse/testing";
