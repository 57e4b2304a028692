import {
  context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapPropagator,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';
import type { QueueManager } from '@plugmq/core';
import { w3cTraceContext } from './w3c.js';

export interface TracingOptions {
  /** The tracer to use; default: `tracerProvider` (or the global provider)'s `@plugmq/tracing`. */
  readonly tracer?: Tracer;
  readonly tracerProvider?: TracerProvider;
  /** How context travels in headers (default: W3C `traceparent`/`tracestate`). */
  readonly propagator?: TextMapPropagator;
}

/**
 * Adds OpenTelemetry spans to `queue`: a PRODUCER span `publish <type>` around every publish
 * (child of the active span) whose context is written into the message headers, and a CONSUMER span
 * `process <type>` around every handler of subscriptions started afterwards, whose parent is the
 * producer's span read back from the headers. Attribute names follow the messaging semantic
 * conventions. Returns a function that removes the instrumentation (for later consumes).
 */
export function instrumentTracing(queue: QueueManager, options: TracingOptions = {}): () => void {
  const tracer = options.tracer ?? (options.tracerProvider ?? trace).getTracer('@plugmq/tracing');
  const propagator = options.propagator ?? w3cTraceContext;
  const system = queue.driver;
  return queue.use({
    publish(message) {
      const span = tracer.startSpan(`publish ${message.type}`, {
        kind: SpanKind.PRODUCER,
        attributes: {
          'messaging.system': system,
          'messaging.operation.type': 'send',
          'messaging.operation.name': 'publish',
          'messaging.destination.name': message.type,
          'messaging.message.id': message.id,
          ...(message.key === undefined ? {} : { 'messaging.plugmq.key': message.key }),
        },
      });
      propagator.inject(trace.setSpan(context.active(), span), message.headers, defaultTextMapSetter);
      return (error) => {
        if (error !== undefined) fail(span, error);
        span.end();
      };
    },
    handle: (next, scope) => (message, handlerContext) => {
      const parent = propagator.extract(ROOT_CONTEXT, message.headers, defaultTextMapGetter);
      const span = tracer.startSpan(
        `process ${message.type}`,
        {
          kind: SpanKind.CONSUMER,
          attributes: {
            'messaging.system': scope.driver,
            'messaging.operation.type': 'process',
            'messaging.operation.name': 'process',
            'messaging.destination.name': message.type,
            'messaging.consumer.group.name': scope.group,
            'messaging.message.id': message.id,
            'messaging.plugmq.attempt': message.attempt,
          },
        },
        parent,
      );
      return context.with(trace.setSpan(parent, span), async () => {
        try {
          await next(message, handlerContext);
        } catch (error) {
          fail(span, error);
          throw error;
        } finally {
          span.end();
        }
      });
    },
  });
}

function fail(span: Span, error: unknown): void {
  if (error instanceof Error) span.recordException(error);
  span.setStatus({
    code: SpanStatusCode.ERROR,
    message: error instanceof Error ? error.message : String(error),
  });
}
