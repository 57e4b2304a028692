import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { validatePostgresConfig } from '../src/options.js';

function refusal(config: Record<string, unknown>): { code?: string; message: string } {
  try {
    validatePostgresConfig({ driver: 'postgres', ...config });
  } catch (error) {
    return error as { code?: string; message: string };
  }
  throw new Error('accepted');
}

describe('postgres options', () => {
  it('applies the documented defaults', () => {
    const config = validatePostgresConfig({ driver: 'postgres' });
    expect(config).toMatchObject({
      url: 'postgres://127.0.0.1:5432/postgres',
      schema: 'plugmq',
      poolSize: 10,
      connectTimeoutMs: 5_000,
      leaseMs: 30_000,
      pollMs: 1_000,
      retentionMs: 0,
    });
    expect(config.prefetch).toBeUndefined();
  });

  it.each([
    [{ url: 'amqp://127.0.0.1' }, 'url'],
    [{ url: 'not a url' }, 'url'],
    [{ schema: 'Bad-Name' }, 'schema'],
    [{ poolSize: 0 }, 'poolSize'],
    [{ leaseMs: 50 }, 'leaseMs'],
    [{ pollMs: 1.5 }, 'pollMs'],
    [{ prefetch: '4' }, 'prefetch'],
    [{ maxMessageBytes: -1 }, 'maxMessageBytes'],
    [{ retentionMs: -1 }, 'retentionMs'],
    [{ retentionMs: 1.5 }, 'retentionMs'],
  ])('refuses %o with CONFIG_INVALID naming %s', (config, field) => {
    const error = refusal(config);
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toContain(field);
  });

  it('never shows the password: not in errors, not when the config is logged', () => {
    const error = refusal({ url: 'mysql://plugmq:s3cret-pw@db:5432/app' });
    expect(error.message).not.toContain('s3cret-pw');
    const config = validatePostgresConfig({
      driver: 'postgres',
      url: 'postgres://plugmq:s3cret-pw@db:5432/app',
    });
    expect(inspect(config)).not.toContain('s3cret-pw');
    expect(JSON.stringify(config)).not.toContain('s3cret-pw');
  });
});
