// The same service implementations over a real gRPC server (@grpc/grpc-js), for
// clients outside the bus such as the CLI.
import * as grpc from "@grpc/grpc-js";
import { RpcError, Status, type CallOptions, type ServiceClient, type ServiceDefinition, type ServiceImplementation } from "./rpc.js";
import { extractTraceparent, injectTraceparent, withRemoteParent } from "./tracing.js";

/** Adapt a promise-style implementation to grpc-js handlers. */
export function grpcHandlers<S extends ServiceDefinition>(def: S, impl: ServiceImplementation<S>): grpc.UntypedServiceImplementation {
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const key of Object.keys(def)) {
    const fn = impl[key] as (r: unknown, c: import("./rpc.js").CallContext) => Promise<unknown>;
    handlers[key] = ((call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      const deadline = call.getDeadline();
      const metadata: Record<string, string> = {};
      for (const [k, v] of Object.entries(call.metadata.getMap())) metadata[k] = String(v);
      const traceparent = extractTraceparent(metadata["traceparent"]);
      const ctx = {
        deadline: deadline instanceof Date ? deadline.getTime() : Number.isFinite(deadline) ? Number(deadline) : Infinity,
        traceparent,
        transport: "grpc" as const,
        metadata,
      };
      withRemoteParent(traceparent, () => fn.call(impl, call.request, ctx)).then(
        (res) => callback(null, res),
        (err: unknown) => {
          const e = err instanceof RpcError ? err : new RpcError(Status.INTERNAL, err instanceof Error ? err.message : String(err));
          callback({ code: e.code, details: e.message, metadata: new grpc.Metadata() } as grpc.ServiceError, null);
        },
      );
    }) as grpc.handleUnaryCall<unknown, unknown>;
  }
  return handlers;
}

export interface GrpcService {
  def: ServiceDefinition;
  impl: ServiceImplementation<any>;
}

/** Start a gRPC server with the given services; resolves with the bound port. */
export async function startGrpcServer(address: string, services: GrpcService[]): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  for (const s of services) server.addService(s.def as unknown as grpc.ServiceDefinition, grpcHandlers(s.def, s.impl));
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { server, port };
}

/** A typed client for `def` over gRPC, with the same shape as natsClient(). */
export function grpcClient<S extends ServiceDefinition>(address: string, def: S, opts: { timeoutMs?: number } = {}): ServiceClient<S> & { close(): void } {
  const Ctor = grpc.makeGenericClientConstructor(def as unknown as grpc.ServiceDefinition, "Gatehouse");
  const raw = new Ctor(address, grpc.credentials.createInsecure()) as unknown as Record<string, Function> & grpc.Client;
  const client: Record<string, unknown> = { close: () => raw.close() };
  for (const key of Object.keys(def)) {
    client[key] = (request: unknown, callOpts: CallOptions = {}) =>
      new Promise((resolve, reject) => {
        const md = new grpc.Metadata();
        const tp = injectTraceparent();
        if (tp) md.set("traceparent", tp);
        for (const [k, v] of Object.entries(callOpts.metadata ?? {})) md.set(k, v);
        const deadline = new Date(Date.now() + (callOpts.timeoutMs ?? opts.timeoutMs ?? 5000));
        raw[key]!.call(raw, request, md, { deadline }, (err: grpc.ServiceError | null, res: unknown) =>
          err ? reject(new RpcError(err.code, err.details || err.message)) : resolve(res),
        );
      });
  }
  return client as ServiceClient<S> & { close(): void };
}
