/** A new idempotency key for one confirmation: 128 random bits in hex. crypto.getRandomValues
 *  works on plain HTTP too, where crypto.randomUUID does not. */
export function newRequestKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
}
