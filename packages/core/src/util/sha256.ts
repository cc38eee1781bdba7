/**
 * SHA-256 for fingerprints (data sets, tokenizers): Node's native `crypto` where there is one, and the audited
 * pure-JavaScript `@noble/hashes` in a browser (WebCrypto's digest is asynchronous only, and the fingerprints are
 * computed in synchronous code). Both give the same digest; the tests check them against FIPS 180-2's vectors.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { maybeNodeBuiltin } from './node-builtin.js';

/** An incremental SHA-256. */
export interface Sha256 {
  /** Adds bytes, or a string as its UTF-8 bytes; returns the hasher. */
  update(data: string | Uint8Array): Sha256;
  /** The digest as 64 lowercase hex digits (the hasher cannot be updated after). */
  hex(): string;
}

const encoder = new TextEncoder();

/** A pure-JavaScript SHA-256 (`@noble/hashes`), the browser path of {@link createSha256}. */
export function createPortableSha256(): Sha256 {
  const h = sha256.create();
  const self: Sha256 = {
    update(data) {
      h.update(typeof data === 'string' ? encoder.encode(data) : data);
      return self;
    },
    hex() {
      return Array.from(h.digest(), (b) => b.toString(16).padStart(2, '0')).join('');
    },
  };
  return self;
}

/** A SHA-256 hasher: Node's native one in Node, {@link createPortableSha256} elsewhere. */
export function createSha256(): Sha256 {
  const crypto = maybeNodeBuiltin('node:crypto');
  if (crypto === undefined) return createPortableSha256();
  const h = crypto.createHash('sha256');
  const self: Sha256 = {
    update(data) {
      h.update(data);
      return self;
    },
    hex() {
      return h.digest('hex');
    },
  };
  return self;
}
