// A test protocol plugin (not a real protocol): one text line per request over TCP.
//   AUTH <name> <token>   -> "OK <subject>" | "ERR auth <check>: <message>"
//   <sql text>            -> "ALLOW|DENY|REQUIRE_APPROVAL <policy|cache>" | "ERR <dependency>: <message>"
// It exercises the GatewayContext the way a real plugin does: authenticate,
// decide, record before "executing", one error per request, session kept open.
import { createServer, type Socket } from "node:net";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { AuditEvent, Command, Connection, Effect, type Identity } from "@gatehouse/proto";
import { AuthError, DependencyError, EventIds, type GatewayContext, type ProtocolPlugin, type RunningListener } from "@gatehouse/plugin-sdk";
import type { ListenerConfig } from "@gatehouse/runtime";

async function session(ctx: GatewayContext, socket: Socket): Promise<void> {
  const ids = new EventIds(ctx.newSessionId());
  let identity: Identity | undefined;
  let seq = 0;
  const connection = Connection.fromPartial({ name: "orders", protocol: "line", tags: ctx.connection("orders")?.tags ?? {} });
  for await (const line of createInterface({ input: socket })) {
    try {
      if (!identity) {
        const [verb, name, token] = line.split(" ");
        if (verb !== "AUTH" || !name || !token) throw new AuthError("format", "expected AUTH <name> <token>");
        identity = await ctx.authenticate(token, name);
        socket.write(`OK ${identity.subject}\n`);
        continue;
      }
      seq += 1;
      const command = Command.fromPartial({ id: ids.next(), sessionId: ids.sessionId, connection: "orders", protocol: "line", text: line, seq });
      const { decision, decidedBy } = await ctx.decide(identity, connection, command);
      await ctx.record(AuditEvent.fromPartial({ id: command.id, sessionId: ids.sessionId, connection: "orders", protocol: "line", identity, listenerId: ctx.listenerId, timeUnixMicros: Date.now() * 1000, body: { $case: "command", command: { command, decision, decidedBy } } }));
      socket.write(`${Effect[decision.effect].replace("EFFECT_", "")} ${decidedBy}\n`);
    } catch (e) {
      if (e instanceof AuthError) socket.write(`ERR auth ${e.check}: ${e.message}\n`);
      else if (e instanceof DependencyError) socket.write(`ERR ${e.dependency}: ${e.message}\n`);
      else socket.write(`ERR internal: ${(e as Error).message}\n`);
    }
  }
}

const plugin: ProtocolPlugin = {
  protocol: "line",
  async start(ctx: GatewayContext, config: ListenerConfig): Promise<RunningListener> {
    const sockets = new Set<Socket>();
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => socket.destroy());
      session(ctx, socket).catch(() => socket.destroy());
    });
    server.listen(config.port, config.host);
    await once(server, "listening");
    const { port } = server.address() as { port: number };
    return {
      protocol: "line",
      host: config.host,
      port,
      async stop() {
        for (const s of sockets) s.end();
        await new Promise<void>((r) => server.close(() => r()));
      },
    };
  },
};
export default plugin;
