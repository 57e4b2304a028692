import { JSON_CONTENT_TYPE, type OutgoingEnvelope } from '@plugmq/core/driver';
import { describe, expect, it } from 'vitest';
import { envelopeFromFields, envelopeToFields, plainEntryId } from '../src/wire.js';

const asBuffers = (fields: (string | Buffer)[]) => fields.map((field) => Buffer.from(field));

const envelope: OutgoingEnvelope = {
  id: 'order:42:abc', // ids may hold the separator
  type: 'orders.created',
  key: undefined,
  timestamp: 1_764_000_000_123,
  headers: { tenant: 'acme' },
  contentType: JSON_CONTENT_TYPE,
  body: new Uint8Array(0), // the Redis transport writes `text` (writesText)
  attempt: 1,
  priority: undefined,
  text: '{"n":1}',
};

describe('stream entry fields', () => {
  it('id and timestamp travel in one field, and come back apart', () => {
    const fields = envelopeToFields(envelope);
    expect(fields).toEqual([
      'x-plugmq-id',
      '1764000000123:order:42:abc',
      'tenant',
      'acme',
      'x-plugmq-body',
      '{"n":1}',
    ]);
    const back = envelopeFromFields(asBuffers(fields), { type: envelope.type, id: '1-0' });
    expect(back).toMatchObject({
      id: 'order:42:abc',
      timestamp: 1_764_000_000_123,
      headers: { tenant: 'acme' },
      contentType: JSON_CONTENT_TYPE,
      attempt: 1,
    });
    expect(back.body.toString()).toBe('{"n":1}');
  });

  it('reads entries with separate x-plugmq-id and x-plugmq-timestamp fields', () => {
    const back = envelopeFromFields(
      asBuffers(['x-plugmq-id', 'legacy-1', 'x-plugmq-timestamp', '1700000000000', 'x-plugmq-body', '{}']),
      { type: 't', id: '5-0' },
    );
    expect(back.id).toBe('legacy-1');
    expect(back.timestamp).toBe(1_700_000_000_000);
  });

  it('an id that does not start with digits and a colon is taken whole', () => {
    const back = envelopeFromFields(asBuffers(['x-plugmq-id', 'a:b', 'x-plugmq-body', '{}']), {
      type: 't',
      id: '1700000000000-0',
    });
    expect(back.id).toBe('a:b');
    // no timestamp field: the entry's own time
    expect(back.timestamp).toBe(1_700_000_000_000);
  });

  it("the publisher's plain-entry shortcut writes what envelopeToFields writes", () => {
    const plain = { ...envelope, id: 'p-1', headers: {} };
    const id = plainEntryId(plain);
    expect(id).toBeDefined();
    expect(['x-plugmq-id', id, 'x-plugmq-body', plain.text]).toEqual(envelopeToFields(plain));
    // anything beyond id, timestamp and JSON text takes the general path
    expect(plainEntryId(envelope)).toBeUndefined(); // a header
    expect(plainEntryId({ ...plain, key: 'k' })).toBeUndefined();
    expect(plainEntryId({ ...plain, attempt: 2 })).toBeUndefined();
  });
});
