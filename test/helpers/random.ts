import { createHash } from 'node:crypto';
import type { RandomBytes } from '../../src/stem/keys.js';

/** Deterministic randomness (SHA-256 counter stream) so runs are reproducible. */
export function seededRandom(seed: string): RandomBytes & { readonly issued: Buffer[] } {
  let counter = 0;
  const issued: Buffer[] = [];
  const random = ((size: number) => {
    const chunks: Buffer[] = [];
    let length = 0;
    while (length < size) {
      const block = createHash('sha256').update(`${seed}:${counter++}`).digest();
      chunks.push(block);
      length += block.length;
    }
    const bytes = Buffer.concat(chunks).subarray(0, size);
    issued.push(bytes);
    return bytes;
  }) as RandomBytes & { issued: Buffer[] };
  Object.defineProperty(random, 'issued', { value: issued });
  return random;
}
