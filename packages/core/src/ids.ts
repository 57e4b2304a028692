import { randomBytes } from 'node:crypto';

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
  let counter = Number.parseInt(hex.slice(19, 20), 16) * 2 ** 40;
  return () => {
    counter = counter >= 2 ** 48 - 1 ? 0 : counter + 1;
    return prefix + counter.toString(16).padStart(12, '0');
  };
}
