import {
  context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { driver as memoryDriver } from '@plugmq/adapter-memory';
import { createQueueManager, type Message, type QueueManager, registerDriver } from '@plugmq/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { instrumentTracing, w3cTraceContext } from '../src/index.js';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const tracer = provider.getTracer('test');
const contextManager = new AsyncLocalStorageContextManager();
const toClose: QueueManager[] = [];

beforeAll(() => {
  registerDriver(memoryDriver);
  // context.with() needs a context manager to carry the active span across awaits.
  context.setGlobalContextManager(contextManager.enable());
});
afterAll(() => {
  context.disable();
});
afterEach(async () => {
  await Promise.all(toClose.splice(0).map((m) => m.close()));
  exporter.reset();
});

async function until(check: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const spanId = (span: ReadableSpan) => span.spanContext().spanId;
const parentId = (span: ReadableSpan) => span.parentSpanContext?.spanId;

describe('@plugmq/tracing', () => {
  it("links producer and consumer: the publish span (under the caller's trace) is the parent of the process span", async () => {
    const queue = await createQueueManager({ driver: 'memory' });
    toClose.push(queue);
    instrumentTracing(queue, { tracer });
    const seen: Message[] = [];
    let activeInHandler: string | undefined;
    await queue.consume(
      'trace.orders',
      (message) => {
        activeInHandler = trace.getActiveSpan()?.spanContext().spanId;
        seen.push(message);
      },
      { group: 'billing' },
    );
    const root = tracer.startSpan('http request');
    await context.with(trace.setSpan(context.active(), root), () => queue.publish('trace.orders', { n: 1 }));
    root.end();
    await until(() => exporter.getFinishedSpans().length === 3);

    const spans = exporter.getFinishedSpans();
    const publish = spans.find((s) => s.name === 'publish trace.orders');
    const process = spans.find((s) => s.name === 'process trace.orders');
    expect(publish?.kind).toBe(SpanKind.PRODUCER);
    expect(process?.kind).toBe(SpanKind.CONSUMER);
    if (!publish || !process) throw new Error('spans missing');
    const traceId = root.spanContext().traceId;
    expect(publish.spanContext().traceId).toBe(traceId);
    expect(parentId(publish)).toBe(root.spanContext().spanId);
    expect(process.spanContext().traceId).toBe(traceId);
    expect(parentId(process)).toBe(spanId(publish));
    expect(activeInHandler).toBe(spanId(process));
    expect(seen[0]?.headers.traceparent).toBe(`00-${traceId}-${spanId(publish)}-01`);
    expect(process.attributes).toMatchObject({
      'messaging.system': 'memory',
      'messaging.destination.name': 'trace.orders',
      'messaging.consumer.group.name': 'billing',
      'messaging.message.id': seen[0]?.id,
    });
  });

  it('a failing handler marks its span as an error, one span per attempt', async () => {
    const queue = await createQueueManager({ driver: 'memory' });
    toClose.push(queue);
    instrumentTracing(queue, { tracer });
    await queue.consume(
      'trace.fail',
      () => {
        throw new Error('declined');
      },
      { group: 'g', retry: { maxAttempts: 2, initialDelayMs: 1 } },
    );
    await queue.publish('trace.fail', {});
    await until(
      () => exporter.getFinishedSpans().filter((s) => s.name === 'process trace.fail').length === 2,
    );
    const processes = exporter.getFinishedSpans().filter((s) => s.name === 'process trace.fail');
    expect(processes.map((s) => s.status.code)).toEqual([SpanStatusCode.ERROR, SpanStatusCode.ERROR]);
    expect(processes.map((s) => s.attributes['messaging.plugmq.attempt'])).toEqual([1, 2]);
    const publish = exporter.getFinishedSpans().find((s) => s.name === 'publish trace.fail');
    expect(processes.every((s) => parentId(s) === publish?.spanContext().spanId)).toBe(true);
  });

  it('the W3C propagator round-trips traceparent/tracestate and ignores malformed headers', () => {
    const span = tracer.startSpan('x');
    const headers: Record<string, string> = {};
    w3cTraceContext.inject(trace.setSpan(ROOT_CONTEXT, span), headers, defaultTextMapSetter);
    expect(headers.traceparent).toMatch(/^00-[\da-f]{32}-[\da-f]{16}-01$/);
    const extracted = trace.getSpanContext(
      w3cTraceContext.extract(ROOT_CONTEXT, { ...headers, tracestate: 'a=1' }, defaultTextMapGetter),
    );
    const { traceId, spanId: sid, traceFlags } = span.spanContext();
    expect(extracted).toMatchObject({ traceId, spanId: sid, traceFlags, isRemote: true });
    expect(extracted?.traceState?.get('a')).toBe('1');
    for (const bad of [
      'garbage',
      `ff-${'1'.repeat(32)}-${'2'.repeat(16)}-01`,
      `00-${'0'.repeat(32)}-${'2'.repeat(16)}-01`,
    ]) {
      const context = w3cTraceContext.extract(ROOT_CONTEXT, { traceparent: bad }, defaultTextMapGetter);
      expect(trace.getSpanContext(context)).toBeUndefined();
    }
    span.end();
  });
});
