// W3C trace context across the bus, through @opentelemetry/api. With no SDK
// registered the API's tracer records nothing, so when no span is active we mint
// a span context ourselves: a traceparent still flows from listener to services
// and lands in logs, and a real SDK, once registered, takes over.
import { context, propagation, trace, TraceFlags, type Context } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { randomBytes } from "node:crypto";

propagation.setGlobalPropagator(new W3CTraceContextPropagator());

const TRACEPARENT = /^[\da-f]{2}-[\da-f]{32}-[\da-f]{16}-[\da-f]{2}$/;

export function extractTraceparent(value: string | undefined | null): string | undefined {
  return value && TRACEPARENT.test(value) ? value : undefined;
}

/** The traceparent for an outgoing call: the active span's, or a fresh one. */
export function injectTraceparent(ctx: Context = context.active()): string | undefined {
  const carrier: Record<string, string> = {};
  let span = trace.getSpanContext(ctx);
  if (!span || !trace.isSpanContextValid(span)) {
    span = { traceId: randomBytes(16).toString("hex"), spanId: randomBytes(8).toString("hex"), traceFlags: TraceFlags.SAMPLED };
    ctx = trace.setSpanContext(ctx, span);
  }
  propagation.inject(ctx, carrier);
  return carrier.traceparent;
}

/** Run `fn` with the remote caller's trace context active. */
export function withRemoteParent<T>(traceparent: string | undefined, fn: () => T): T {
  if (!traceparent) return fn();
  const ctx = propagation.extract(context.active(), { traceparent });
  return context.with(ctx, fn);
}

/** Start a new trace (one per session or command) and run `fn` inside it. */
export function withNewTrace<T>(fn: () => T): T {
  const span = { traceId: randomBytes(16).toString("hex"), spanId: randomBytes(8).toString("hex"), traceFlags: TraceFlags.SAMPLED };
  return context.with(trace.setSpanContext(context.active(), span), fn);
}

export function currentTraceId(): string | undefined {
  return trace.getSpanContext(context.active())?.traceId;
}
