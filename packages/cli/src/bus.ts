// The CLI's one way onto the bus: a single attempt (a command should fail fast, not
// hang reconnecting) and an error that says how to get NATS running.
import { connect, type NatsConnection } from "@nats-io/transport-node";

export async function connectCli(url: string): Promise<NatsConnection> {
  try {
    return await connect({ servers: url.split(","), name: "gatehouse-cli", timeout: 3000, maxReconnectAttempts: 0 });
  } catch (e) {
    throw new Error(`cannot connect to NATS at ${url}: ${(e as Error).message}; start the local stack with \`npm start\`, or set nats.url in the configuration (or NATS_URL)`);
  }
}
