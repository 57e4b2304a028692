import { PlugmqError } from '@plugmq/core';
import { describe, expect, it } from 'vitest';
import { capabilities, capabilitiesFor, driver, groupQueueArguments } from '../src/index.js';

// Option validation and what the options change, without a broker.

function invalid(config: Record<string, unknown>): PlugmqError {
  try {
    driver.validate({ driver: 'rabbitmq', ...config });
  } catch (error) {
    expect(error).toBeInstanceOf(PlugmqError);
    return error as PlugmqError;
  }
  throw new Error(`accepted ${JSON.stringify(config)}`);
}

describe('queueType', () => {
  it("defaults to 'classic' and accepts 'quorum'", () => {
    expect(driver.validate({ driver: 'rabbitmq' }).queueType).toBe('classic');
    expect(driver.validate({ driver: 'rabbitmq', queueType: 'quorum' }).queueType).toBe('quorum');
  });

  it.each([
    ['stream'],
    ['Quorum'],
    [''],
    [3],
    [null],
  ])('refuses %j with CONFIG_INVALID naming queueType', (value) => {
    const error = invalid({ queueType: value });
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toMatch(/queueType must be one of 'classic', 'quorum'/);
  });

  it('quorum managers have no priority; the other capabilities stay', () => {
    expect(capabilitiesFor({ queueType: 'classic' })).toEqual(capabilities);
    expect(capabilitiesFor({ queueType: 'quorum' })).toEqual({ ...capabilities, priority: false });
    expect(driver.capabilities.priority).toBe(true);
  });

  it('retentionMs turns on newGroupReceivesOldMessages, on either queue type', () => {
    expect(capabilitiesFor({ queueType: 'classic', retentionMs: 0 })).toEqual(capabilities);
    expect(capabilitiesFor({ queueType: 'classic', retentionMs: 60_000 })).toEqual({
      ...capabilities,
      newGroupReceivesOldMessages: true,
    });
    expect(capabilitiesFor({ queueType: 'quorum', retentionMs: 60_000 })).toMatchObject({
      priority: false,
      newGroupReceivesOldMessages: true,
    });
  });

  it('quorum group queues carry x-queue-type and no x-max-priority; maxLength applies to both', () => {
    expect(groupQueueArguments(undefined, 'quorum')).toEqual({ 'x-queue-type': 'quorum' });
    expect(groupQueueArguments(100, 'quorum')).toEqual({
      'x-queue-type': 'quorum',
      'x-max-length': 100,
      'x-overflow': 'reject-publish',
    });
    expect(groupQueueArguments()).toEqual({ 'x-max-priority': 10 });
  });
});

describe('other options', () => {
  it.each([
    ['maxLength', 0],
    ['prefetch', 1.5],
    ['connectTimeoutMs', -1],
    ['exchange', 'amq.topic'],
    ['urls', []],
    ['retentionMs', -1],
    ['retentionMs', 2.5],
  ])('%s = %j is CONFIG_INVALID naming the field', (field, value) => {
    const error = invalid({ [field]: value });
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toContain(field);
  });
});
