import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { maybeNodeBuiltin, nodeBuiltin } from '../src/util/node-builtin.js';
import { createPortableSha256, createSha256 } from '../src/util/sha256.js';

// FIPS 180-2, appendix B (SHA-256 examples).
const VECTORS: [string, string][] = [
  ['abc', 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
  ['', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
  [
    'abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq',
    '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
  ],
];

describe('sha256', () => {
  it.each([
    ['native (Node)', createSha256],
    ['portable (browser)', createPortableSha256],
  ])('%s matches the FIPS 180-2 vectors', (_name, make) => {
    for (const [text, hex] of VECTORS) expect(make().update(text).hex()).toBe(hex);
    // One million "a", fed in uneven pieces (FIPS 180-2 B.3).
    const h = make();
    for (let done = 0, k = 1; done < 1_000_000; k = (k * 7) % 997) {
      const n = Math.min(k + 1, 1_000_000 - done);
      h.update('a'.repeat(n));
      done += n;
    }
    expect(h.hex()).toBe('cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0');
  });

  it('the two paths agree on bytes and on non-ASCII text', () => {
    const bytes = new Uint8Array(100_003);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24;
    const text = 'naïve — 日本語 🚀';
    const a = createPortableSha256().update(text).update(bytes).hex();
    expect(createSha256().update(text).update(bytes).hex()).toBe(a);
    expect(createHash('sha256').update(text).update(bytes).digest('hex')).toBe(a);
  });
});

describe('nodeBuiltin', () => {
  it('returns Node built-ins in Node', () => {
    expect(typeof nodeBuiltin('node:fs', 'reading').readFileSync).toBe('function');
    expect(maybeNodeBuiltin('node:path')?.join('a', 'b')).toBe('a/b');
  });

  it('outside Node (no process.getBuiltinModule) says which operation needs Node', () => {
    const proc = globalThis.process as { getBuiltinModule?: unknown };
    const saved = proc.getBuiltinModule;
    proc.getBuiltinModule = undefined;
    try {
      expect(maybeNodeBuiltin('node:fs')).toBeUndefined();
      expect(() => nodeBuiltin('node:fs', 'reading the tokenizer file t.json')).toThrow(
        /reading the tokenizer file t\.json needs Node\.js \(node:fs\)/,
      );
    } finally {
      proc.getBuiltinModule = saved;
    }
  });
});
