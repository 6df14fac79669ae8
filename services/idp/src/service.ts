// startDevIdp: the embedded OpenID provider of the local stack.
import { createServer } from "node:http";
import { once } from "node:events";
import type { GatehouseConfig, Logger } from "@gatehouse/runtime";
import { DevAccounts } from "./accounts.js";
import { handleInteraction } from "./login.js";
import { createProvider } from "./provider.js";
import { loadOrCreateState } from "./state.js";

export interface DevIdp {
  issuer: string;
  /** Where it listens (host:port). */
  address: string;
  stop(): Promise<void>;
}

export async function startDevIdp(config: GatehouseConfig, opts: { log?: Logger } = {}): Promise<DevIdp> {
  const issuerUrl = new URL(config.idp.issuer);
  if (issuerUrl.protocol !== "https:" && !["127.0.0.1", "localhost", "[::1]"].includes(issuerUrl.hostname)) {
    throw new Error(`idp.issuer ${config.idp.issuer}: the dev IdP only serves http on loopback (127.0.0.1/localhost)`);
  }
  const state = await loadOrCreateState(config.dataDir);
  const accounts = new DevAccounts();
  const provider = createProvider(config, state, accounts);
  provider.on("server_error", (_ctx, err: Error) => opts.log?.error({ err: err.message }, "identity provider error"));
  const callback = provider.callback();
  const server = createServer((req, res) => {
    handleInteraction(provider, accounts, req, res)
      .then((handled) => {
        if (!handled) callback(req, res);
      })
      .catch((e: Error) => {
        opts.log?.error({ err: e.message }, "login page error");
        if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
        res.end("internal error\n");
      });
  });
  server.listen(config.idp.port, config.idp.host);
  try {
    await Promise.race([once(server, "listening"), once(server, "error").then(([e]) => Promise.reject(e))]);
  } catch (e) {
    throw new Error(`dev identity provider cannot listen on ${config.idp.host}:${config.idp.port}: ${(e as Error).message}`);
  }
  const { port } = server.address() as { port: number };
  return {
    issuer: provider.issuer,
    address: `${config.idp.host}:${port}`,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
