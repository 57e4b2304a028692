import { randomBytes } from 'node:crypto';

/** '000'…'fff': the counter is written three hex digits at a time (no number formatting per id). */
const HEX3: readonly string[] = Array.from({ length: 4096 }, (_, i) => i.toString(16).padStart(3, '0'));

/**
 * Message ids in UUID layout: 74 random bits chosen once per generator, then a counter. Unique
 * across processes (the random part) and within one (the counter), at a fraction of the cost of
 * a fresh random UUID per message. Ids are identifiers, not secrets.
 */
export function createIdGenerator(): () => string {
  const hex = randomBytes(10).toString('hex');
  // xxxxxxxx-xxxx-4xxx-yxxx-cccccccccccc: version 4 and RFC 4122 variant bits, counter last.
  const variant = ((Number.parseInt(hex[15] ?? '0', 16) & 0x3) | 0x8).toString(16);
  const prefix = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(12, 15)}-${variant}${hex.slice(16, 19)}-`;
  // The 48-bit counter (wrapping to 0 after 2^48 - 1) as two 24-bit halves: formatting a counter
  // above 2^32 with toString(16) + padStart cost more than the rest of building an envelope.
  let high = Number.parseInt(hex.slice(19, 20), 16) * 2 ** 16;
  let low = 0;
  let head = prefix + HEX3[high >>> 12] + HEX3[high & 0xfff];
  return () => {
    if (++low === 0x1000000) {
      low = 0;
      high = high === 0xffffff ? 0 : high + 1;
      head = prefix + HEX3[high >>> 12] + HEX3[high & 0xfff];
    }
    return head + HEX3[low >>> 12] + HEX3[low & 0xfff];
  };
}
