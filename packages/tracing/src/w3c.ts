import {
  type Context,
  createTraceState,
  isSpanContextValid,
  type TextMapGetter,
  type TextMapPropagator,
  type TextMapSetter,
  trace,
} from '@opentelemetry/api';

const TRACEPARENT = 'traceparent';
const TRACESTATE = 'tracestate';
const TRACEPARENT_PATTERN = /^([\da-f]{2})-([\da-f]{32})-([\da-f]{16})-([\da-f]{2})(-.*)?$/;

/**
 * W3C Trace Context (`traceparent`, `tracestate`) for message headers. Built in rather than taken
 * from the global propagator so that tracing works without any SDK propagator setup (the global
 * default is a no-op); pass `propagator` to `instrumentTracing` to use another one.
 */
export const w3cTraceContext: TextMapPropagator = {
  inject(context: Context, carrier: unknown, setter: TextMapSetter): void {
    const spanContext = trace.getSpanContext(context);
    if (!spanContext || !isSpanContextValid(spanContext)) return;
    const flags = (spanContext.traceFlags & 0xff).toString(16).padStart(2, '0');
    setter.set(carrier, TRACEPARENT, `00-${spanContext.traceId}-${spanContext.spanId}-${flags}`);
    const state = spanContext.traceState?.serialize();
    if (state) setter.set(carrier, TRACESTATE, state);
  },
  extract(context: Context, carrier: unknown, getter: TextMapGetter): Context {
    const header = single(getter.get(carrier, TRACEPARENT));
    if (!header) return context;
    const match = TRACEPARENT_PATTERN.exec(header.trim());
    if (!match) return context;
    const [, version, traceId, spanId, flags, rest] = match;
    // Version ff is forbidden; version 00 has no trailing fields.
    if (version === 'ff' || (version === '00' && rest)) return context;
    const spanContext = {
      traceId: traceId as string,
      spanId: spanId as string,
      traceFlags: Number.parseInt(flags as string, 16) & 1,
      isRemote: true,
      ...(single(getter.get(carrier, TRACESTATE))
        ? { traceState: createTraceState(single(getter.get(carrier, TRACESTATE))) }
        : {}),
    };
    if (!isSpanContextValid(spanContext)) return context;
    return trace.setSpanContext(context, spanContext);
  },
  fields: () => [TRACEPARENT, TRACESTATE],
};

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
