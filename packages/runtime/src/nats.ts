import { connect, type NatsConnection } from "@nats-io/transport-node";

export const DEFAULT_NATS_URL = "nats://127.0.0.1:4222";

/** Connect to the bus, retrying forever on disconnects (services outlive a NATS restart). */
export async function connectBus(name: string, url = process.env.NATS_URL ?? DEFAULT_NATS_URL): Promise<NatsConnection> {
  return connect({
    servers: url.split(","),
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    waitOnFirstConnect: true,
    timeout: 5000,
  });
}
