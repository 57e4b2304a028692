import type { CodecRegistry } from './codec.js';
import { PlugmqError } from './errors.js';
import { createIdGenerator } from './ids.js';
import type { OutgoingEnvelope, Transport } from './transport.js';
import type { Capabilities, PublishOptions } from './types.js';
import { assertMessageType, validatePublishOptions } from './validation.js';

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

/** Validates one publish and turns it into the envelope every transport stores. */
export class EnvelopeBuilder {
  private readonly nextId = createIdGenerator();

  constructor(
    private readonly driver: string,
    private readonly capabilities: Capabilities,
    private readonly codecs: CodecRegistry,
    private readonly transport: () => Transport,
  ) {}

  build(
    type: string,
    body: unknown,
    options: PublishOptions | undefined,
    optionsField: string,
    typeField = 'type',
  ): OutgoingEnvelope {
    assertMessageType(type, typeField);
    if (options !== undefined) {
      validatePublishOptions(options, optionsField);
      if (options.delayMs && !this.capabilities.delay) {
        throw new PlugmqError(
          'UNSUPPORTED',
          `the ${this.driver} driver cannot honour ${optionsField}.delayMs`,
        );
      }
      if (options.priority !== undefined && !this.capabilities.priority) {
        throw new PlugmqError(
          'UNSUPPORTED',
          `the ${this.driver} driver cannot honour ${optionsField}.priority`,
        );
      }
    }
    const transport = this.transport();
    const inProcess = transport.inProcessBodies;
    const { contentType, bytes, value, text } = inProcess
      ? this.codecs.encodeInProcess(body, inProcess)
      : this.codecs.encode(body, transport.writesText === true);
    // One object shape for every envelope (absent fields undefined) keeps the hot path monomorphic.
    return {
      id: options?.id ?? this.nextId(),
      type,
      key: options?.key,
      timestamp: Date.now(),
      headers: options?.headers ? { ...options.headers } : NO_HEADERS,
      contentType,
      body: bytes,
      value,
      attempt: 1,
      priority: options?.priority,
      delayMs: options?.delayMs || undefined,
      mandatory: options?.mandatory || undefined,
      text,
    };
  }
}
