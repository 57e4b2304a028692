import { describe, expect, it } from 'vitest';
import { describeConnectFailure, moreTelling } from '../src/kit.js';

const target = { host: '127.0.0.1', port: 6379 };

function nodeError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

describe('describeConnectFailure', () => {
  it('names a refused port, an unknown host, a refused login and a TLS failure in the words a user acts on', () => {
    expect(
      describeConnectFailure(nodeError('connect ECONNREFUSED 127.0.0.1:6379', 'ECONNREFUSED'), target),
    ).toEqual({
      kind: 'refused',
      reason: 'connection refused at 127.0.0.1:6379',
      fatal: false,
    });
    const dns = describeConnectFailure(nodeError('getaddrinfo ENOTFOUND x.invalid', 'ENOTFOUND'), {
      host: 'x.invalid',
      port: 1,
    });
    expect(dns.kind).toBe('host-not-found');
    expect(dns.reason).toBe('host not found: x.invalid (ENOTFOUND)');
    const login = describeConnectFailure(new Error('WRONGPASS invalid username-password pair'), target);
    expect(login).toMatchObject({ kind: 'auth', fatal: true });
    expect(login.reason).toMatch(/^authentication refused by 127\.0\.0\.1:6379/);
    const tls = describeConnectFailure(
      nodeError('ssl3_get_record:wrong version number', 'ERR_SSL_WRONG_VERSION_NUMBER'),
      target,
    );
    expect(tls).toMatchObject({ kind: 'tls', fatal: true });
    expect(tls.reason).toMatch(/^TLS handshake failed with 127\.0\.0\.1:6379/);
  });

  it('looks through causes: kafkajs originalError, AggregateError members, a SASL error type', () => {
    const wrapped = Object.assign(new Error('retries exceeded'), {
      originalError: nodeError('connect ECONNREFUSED', 'ECONNREFUSED'),
    });
    expect(describeConnectFailure(wrapped, target).kind).toBe('refused');
    const aggregate = new AggregateError(
      [nodeError('connect ECONNREFUSED ::1:6379', 'ECONNREFUSED')],
      'failed',
    );
    expect(describeConnectFailure(aggregate, target).kind).toBe('refused');
    const sasl = Object.assign(new Error('Request is not valid given the current SASL state'), {
      type: 'ILLEGAL_SASL_STATE',
    });
    expect(describeConnectFailure(sasl, target).kind).toBe('auth');
  });

  it('masks credentials in what the client said', () => {
    const failure = describeConnectFailure(new Error('cannot reach amqp://guest:s3cret@host:5672'), target);
    expect(failure.reason).not.toContain('s3cret');
  });
});

describe('moreTelling', () => {
  it('keeps an earlier specific failure over a later timeout, else takes the later one', () => {
    const refused = describeConnectFailure(nodeError('refused', 'ECONNREFUSED'), target);
    const timeout = describeConnectFailure(nodeError('connect ETIMEDOUT', 'ETIMEDOUT'), target);
    expect(timeout.kind).toBe('timeout');
    expect(moreTelling(refused, timeout)).toBe(refused);
    expect(moreTelling(timeout, refused)).toBe(refused);
    expect(moreTelling(undefined, timeout)).toBe(timeout);
  });
});
