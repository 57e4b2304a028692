import { describe, expect, it } from 'vitest';
import { createIdGenerator } from '../src/ids.js';

describe('message ids', () => {
  it('are UUID-shaped (version 4 layout) and unique within a generator', () => {
    const next = createIdGenerator();
    const ids = Array.from({ length: 100_000 }, next);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids.slice(0, 100))
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('differ between generators (processes, managers)', () => {
    const a = createIdGenerator();
    const b = createIdGenerator();
    expect(a()).not.toBe(b());
    expect(a().slice(0, 23)).not.toBe(b().slice(0, 23));
  });
});
