import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ByteTokenizer,
  createTokenizer,
  listTokenizerKinds,
  tokenizerFromJSON,
} from '../src/data/tokenizer.js';
import { isStrataError } from '../src/errors.js';

const tok = new ByteTokenizer();

describe('ByteTokenizer', () => {
  it('has a 256-token vocabulary and encodes UTF-8 bytes', () => {
    expect(tok.kind).toBe('byte');
    expect(tok.vocabSize).toBe(256);
    expect(Array.from(tok.encode('Hé'))).toEqual([72, 0xc3, 0xa9]);
    expect(tok.encode('')).toHaveLength(0);
  });

  it('round-trips ASCII, accents, CJK, emoji (incl. ZWJ sequences and modifiers) and control characters', () => {
    for (const s of [
      'Hello, world!\n\ttabs',
      'naïve café — “quotes” ½',
      '日本語のテキスト',
      '👍🏽 👩‍👩‍👧‍👦 🇫🇷 😀',
      'e\u0301 combining',
      '\u0000\u0001\u007f',
      '\ufeffBOM kept',
    ]) {
      const ids = tok.encode(s);
      expect(tok.decode(ids)).toBe(s);
      expect(tok.decode(Array.from(ids))).toBe(s);
      expect(tok.decode(Int32Array.from(ids))).toBe(s);
    }
  });

  it('round-trips any string without lone surrogates (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => {
        const ids = tok.encode(s);
        return ids.every((id) => id >= 0 && id < 256) && tok.decode(ids) === s;
      }),
      { numRuns: 300 },
    );
  });

  it('decodes incomplete or invalid UTF-8 to replacement characters without throwing', () => {
    const emoji = tok.encode('😀'); // 4 bytes
    expect(tok.decode(emoji.subarray(0, 3))).toBe('\ufffd');
    expect(tok.decode([...tok.encode('ab'), ...emoji.subarray(0, 2)])).toBe('ab\ufffd');
    expect(tok.decode([0xff, 0x41])).toBe('\ufffdA');
    expect(tok.decode([0xc0, 0xaf])).toMatch(/^\ufffd+$/);
    expect(tok.decode([300, -1, 1.5, 65])).toBe('\ufffd\ufffd\ufffdA');
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 64 }),
        (ids) => typeof tok.decode(ids) === 'string',
      ),
    );
  });

  it('stream decoder emits only complete characters', () => {
    const text = 'a😀b日é';
    const ids = tok.encode(text);
    const dec = tok.decoder();
    const pieces: string[] = [];
    for (const id of ids) pieces.push(dec.push(id));
    pieces.push(dec.flush());
    expect(pieces.join('')).toBe(text);
    // 'a', then 3 empty pushes while the emoji is incomplete, then the emoji
    expect(pieces.slice(0, 5)).toEqual(['a', '', '', '', '😀']);
    for (const p of pieces) expect(p).not.toContain('\ufffd');

    const dec2 = tok.decoder();
    expect(dec2.push(ids.subarray(0, 3))).toBe('a');
    expect(dec2.flush()).toBe('\ufffd'); // the held partial emoji
    expect(dec2.push([0x41])).toBe('A'); // usable again after flush
  });

  it('stream decoding equals whole decoding for any split (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 50 }), fc.array(fc.nat(60)), (s, cuts) => {
        const ids = tok.encode(s);
        const points = [...new Set(cuts.map((c) => Math.min(c, ids.length)))].sort((a, b) => a - b);
        const dec = tok.decoder();
        let out = '';
        let prev = 0;
        for (const p of [...points, ids.length]) {
          out += dec.push(ids.subarray(prev, p));
          prev = p;
        }
        out += dec.flush();
        return out === s;
      }),
      { numRuns: 200 },
    );
  });
});

describe('tokenizerFromJSON', () => {
  it('round-trips through JSON', () => {
    const json = JSON.parse(JSON.stringify(tok.toJSON()));
    expect(json).toEqual({ kind: 'byte' });
    const t2 = tokenizerFromJSON(json);
    expect(t2).toBeInstanceOf(ByteTokenizer);
    expect(createTokenizer('byte').kind).toBe('byte');
    expect(createTokenizer().kind).toBe('byte');
    expect(listTokenizerKinds()).toContain('byte');
  });

  it('rejects unknown kinds, listing the valid ones', () => {
    for (const bad of [{ kind: 'bpe' }, {}, null, 'byte', [1], { kind: 3 }]) {
      let err: unknown;
      try {
        tokenizerFromJSON(bad);
      } catch (e) {
        err = e;
      }
      expect(isStrataError(err)).toBe(true);
      expect((err as { code: string }).code).toBe('E_CONFIG');
    }
    expect(() => tokenizerFromJSON({ kind: 'bpe' })).toThrow(
      /unknown tokenizer kind "bpe"; valid kinds: "byte"/,
    );
    expect(() => createTokenizer('wordpiece')).toThrow(/"byte"/);
  });
});
