// The SSH listener: an ssh2 server with the gateway's persistent host key; each
// client connection becomes an SshConnection.
import { Server } from "./ssh2.js";
import type { GatewayContext, RunningListener } from "@gatehouse/plugin-sdk";
import type { ListenerConfig } from "@gatehouse/runtime";
import { SshConnection } from "./connection.js";
import { KeyIndex } from "./keys.js";
import { loadOrCreateHostKey, parseOptions } from "./options.js";
import { FAST_CIPHERS } from "./upstream.js";
import { UpstreamPool } from "./pool.js";
import { PROTOCOL } from "./audit.js";

export async function startSshListener(ctx: GatewayContext, config: ListenerConfig): Promise<RunningListener> {
  const opts = parseOptions(config, ctx.dataDir);
  const hostKey = loadOrCreateHostKey(opts.hostKeyFile);
  const keys = new KeyIndex(opts.authorizedKeys);
  const conns = new Set<SshConnection>();
  const pool = new UpstreamPool(opts.warmUpstreamMs);
  const server = new Server(
    {
      hostKeys: [hostKey],
      ident: "Gatehouse",
      // AES runs in Node's native crypto; ssh2's chacha20-poly1305 would be JavaScript.
      algorithms: { cipher: [...FAST_CIPHERS] as never },
    },
    (client, info) => {
      const c = new SshConnection(ctx, opts, keys, client, info, pool);
      conns.add(c);
      c.onEnd = () => conns.delete(c);
    },
  );
  server.on("error", (e: Error) => ctx.log.error({ err: e.message }, "ssh listener error"));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const addr = server.address() as { port: number };
  ctx.log.info({ host: opts.host, port: addr.port, hostKey: opts.hostKeyFile }, "ssh listener ready");
  return {
    protocol: PROTOCOL,
    host: opts.host,
    port: addr.port,
    async stop() {
      pool.stop();
      await new Promise<void>((r) => {
        server.close(() => r());
        for (const c of [...conns]) c.shutdown();
      });
    },
  };
}
