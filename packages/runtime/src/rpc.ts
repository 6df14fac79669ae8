// Serve and call ts-proto gRPC service definitions over NATS request/reply.
//
// Subject: gatehouse.rpc.<package>.<Service>.<Method>, body: the protobuf message.
// Request headers carry the deadline (absolute, ms since epoch) and W3C traceparent;
// an error reply carries Grpc-Status and Grpc-Message and an empty body. Servers
// subscribe in a queue group so any number of copies share the load.
import { headers as natsHeaders, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { Status } from "@grpc/grpc-js/build/src/constants.js";
import { extractTraceparent, injectTraceparent, withRemoteParent } from "./tracing.js";

export { Status };

export interface UnaryMethodDefinition<Req, Res> {
  readonly path: string;
  readonly requestStream: false;
  readonly responseStream: false;
  requestSerialize(value: Req): Buffer;
  requestDeserialize(value: Buffer): Req;
  responseSerialize(value: Res): Buffer;
  responseDeserialize(value: Buffer): Res;
}

// Any ts-proto `outputServices=grpc-js` service object.
export type ServiceDefinition = { readonly [method: string]: UnaryMethodDefinition<any, any> };

export type RequestOf<M> = M extends UnaryMethodDefinition<infer Req, any> ? Req : never;
export type ResponseOf<M> = M extends UnaryMethodDefinition<any, infer Res> ? Res : never;

export interface CallContext {
  /** Absolute deadline in ms since epoch (Infinity when the caller set none). */
  deadline: number;
  traceparent?: string;
  /** Transport that delivered the call. */
  transport: "nats" | "grpc";
  /** Caller-supplied metadata (e.g. authorization for the gRPC transport). */
  metadata: Record<string, string>;
}

/** One implementation object, used by both transports. */
export type ServiceImplementation<S extends ServiceDefinition> = {
  [K in keyof S]: (request: RequestOf<S[K]>, ctx: CallContext) => Promise<ResponseOf<S[K]>>;
};

export interface CallOptions {
  /** Relative timeout in ms; defaults to the client's. */
  timeoutMs?: number;
  metadata?: Record<string, string>;
}

export type ServiceClient<S extends ServiceDefinition> = {
  [K in keyof S]: (request: RequestOf<S[K]>, opts?: CallOptions) => Promise<ResponseOf<S[K]>>;
};

/** An error with a gRPC status code; what both transports send back on failure. */
export class RpcError extends Error {
  constructor(
    readonly code: Status,
    message: string,
  ) {
    super(message);
    this.name = "RpcError";
  }
  get codeName(): string {
    return Status[this.code] ?? String(this.code);
  }
}

const DEADLINE_HEADER = "Gatehouse-Deadline";
const STATUS_HEADER = "Grpc-Status";
const MESSAGE_HEADER = "Grpc-Message";
const METADATA_PREFIX = "Gatehouse-Md-";

/** "/gatehouse.v1.PolicyService/Decide" -> "gatehouse.rpc.gatehouse.v1.PolicyService.Decide" */
export function subjectForPath(path: string): string {
  const m = /^\/([\w.]+)\/(\w+)$/.exec(path);
  if (!m) throw new Error(`not a gRPC method path: ${path}`);
  return `gatehouse.rpc.${m[1]}.${m[2]}`;
}

/** "gatehouse.v1.PolicyService" for a service definition. */
export function serviceName(def: ServiceDefinition): string {
  const first = Object.values(def)[0];
  if (!first) throw new Error("empty service definition");
  return first.path.split("/")[1]!;
}

function toRpcError(err: unknown): RpcError {
  if (err instanceof RpcError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new RpcError(Status.INTERNAL, message);
}

export interface NatsServeOptions {
  /** Queue group; defaults to the service name so copies share requests. */
  queue?: string;
  onError?: (method: string, err: unknown) => void;
}

/** Serve `impl` on NATS. Returns the subscription (drain it to stop). */
export function serveOnNats<S extends ServiceDefinition>(
  nc: NatsConnection,
  def: S,
  impl: ServiceImplementation<S>,
  opts: NatsServeOptions = {},
): Subscription {
  const name = serviceName(def);
  const bySubjectMethod = new Map<string, { key: keyof S; def: UnaryMethodDefinition<any, any> }>();
  for (const [key, m] of Object.entries(def)) {
    bySubjectMethod.set(m.path.split("/")[2]!, { key, def: m });
  }
  const prefix = `gatehouse.rpc.${name}.`;
  return nc.subscribe(`${prefix}*`, {
    queue: opts.queue ?? name,
    callback: (err, msg) => {
      if (err) {
        opts.onError?.("subscription", err);
        return;
      }
      void handleNatsCall(msg, prefix, bySubjectMethod, impl, opts);
    },
  });
}

async function handleNatsCall<S extends ServiceDefinition>(
  msg: Msg,
  prefix: string,
  methods: Map<string, { key: keyof S; def: UnaryMethodDefinition<any, any> }>,
  impl: ServiceImplementation<S>,
  opts: NatsServeOptions,
): Promise<void> {
  const methodName = msg.subject.slice(prefix.length);
  const entry = methods.get(methodName);
  const reply = (body: Uint8Array | undefined, hdrs?: MsgHdrs) => {
    if (!msg.reply) return;
    try {
      msg.respond(body, hdrs ? { headers: hdrs } : undefined);
    } catch (e) {
      opts.onError?.(methodName, e);
    }
  };
  const replyError = (e: RpcError) => {
    const h = natsHeaders();
    h.set(STATUS_HEADER, String(e.code));
    // Header values must stay on one line.
    h.set(MESSAGE_HEADER, e.message.replace(/[\r\n]+/g, " ").slice(0, 2000));
    reply(undefined, h);
  };
  if (!entry) {
    replyError(new RpcError(Status.UNIMPLEMENTED, `unknown method ${msg.subject}`));
    return;
  }
  const deadlineRaw = msg.headers?.get(DEADLINE_HEADER);
  const deadline = deadlineRaw ? Number(deadlineRaw) : Infinity;
  if (Date.now() > deadline) {
    replyError(new RpcError(Status.DEADLINE_EXCEEDED, "deadline passed before the call was handled"));
    return;
  }
  const metadata: Record<string, string> = {};
  if (msg.headers) {
    for (const [k, v] of msg.headers) {
      if (k.startsWith(METADATA_PREFIX) && v[0] !== undefined) metadata[k.slice(METADATA_PREFIX.length).toLowerCase()] = v[0];
    }
  }
  const traceparent = extractTraceparent(msg.headers?.get("traceparent"));
  let request: unknown;
  try {
    request = entry.def.requestDeserialize(Buffer.from(msg.data));
  } catch (e) {
    replyError(new RpcError(Status.INVALID_ARGUMENT, `malformed request: ${(e as Error).message}`));
    return;
  }
  try {
    const fn = impl[entry.key] as (r: unknown, c: CallContext) => Promise<unknown>;
    const res = await withRemoteParent(traceparent, () =>
      fn.call(impl, request, { deadline, traceparent, transport: "nats", metadata }),
    );
    reply(entry.def.responseSerialize(res));
  } catch (e) {
    opts.onError?.(methodName, e);
    replyError(toRpcError(e));
  }
}

export interface NatsClientOptions {
  /** Default per-call timeout in ms. */
  timeoutMs?: number;
}

/** A typed client for `def` whose calls go over NATS request/reply. */
export function natsClient<S extends ServiceDefinition>(
  nc: NatsConnection,
  def: S,
  opts: NatsClientOptions = {},
): ServiceClient<S> {
  const name = serviceName(def);
  const client: Record<string, unknown> = {};
  for (const [key, m] of Object.entries(def)) {
    const subject = subjectForPath(m.path);
    client[key] = async (request: unknown, callOpts: CallOptions = {}) => {
      const timeout = callOpts.timeoutMs ?? opts.timeoutMs ?? 5000;
      const h = natsHeaders();
      h.set(DEADLINE_HEADER, String(Date.now() + timeout));
      const tp = injectTraceparent();
      if (tp) h.set("traceparent", tp);
      for (const [k, v] of Object.entries(callOpts.metadata ?? {})) h.set(METADATA_PREFIX + k, v);
      let res: Msg;
      try {
        res = await nc.request(subject, m.requestSerialize(request), { timeout, headers: h });
      } catch (e) {
        throw natsRequestError(e, name, timeout);
      }
      const status = res.headers?.get(STATUS_HEADER);
      if (status) {
        throw new RpcError(Number(status) as Status, res.headers?.get(MESSAGE_HEADER) || `${name} failed`);
      }
      // A 503 status from the server means nobody is subscribed.
      if (res.headers?.hasError && res.headers.code === 503) {
        throw new RpcError(Status.UNAVAILABLE, `${name} is not running (no responders on ${subject})`);
      }
      return m.responseDeserialize(Buffer.from(res.data));
    };
  }
  return client as ServiceClient<S>;
}

function natsRequestError(e: unknown, service: string, timeout: number): RpcError {
  const err = e as Error & { isNoResponders?: () => boolean; cause?: unknown };
  const causeName = (err.cause as Error | undefined)?.name;
  if (err.name === "TimeoutError" || causeName === "TimeoutError") {
    return new RpcError(Status.DEADLINE_EXCEEDED, `${service} did not answer within ${timeout} ms`);
  }
  if (typeof err.isNoResponders === "function" && err.isNoResponders()) {
    return new RpcError(Status.UNAVAILABLE, `${service} is not running (no responders)`);
  }
  if (causeName === "NoRespondersError") {
    return new RpcError(Status.UNAVAILABLE, `${service} is not running (no responders)`);
  }
  return new RpcError(Status.UNAVAILABLE, `${service} unreachable: ${err.message}`);
}
