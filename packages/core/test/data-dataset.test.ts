import { describe, expect, it } from 'vitest';
import { type Segment, TextDataset } from '../src/data/dataset.js';
import { ByteTokenizer, type Tokenizer } from '../src/data/tokenizer.js';
import { isStrataError } from '../src/errors.js';

/**
 * A test tokenizer whose token ids are the character positions: token i has id i. Every value in a batch
 * then says where in the data it came from.
 */
const positions: Tokenizer = {
  kind: 'positions',
  vocabSize: 1 << 30,
  encode: (text) => Int32Array.from({ length: text.length }, (_, i) => i),
  decode: (ids) => Array.from(ids, String).join(','),
  decoder: () => ({ push: () => '', flush: () => '' }),
  toJSON: () => ({ kind: 'positions' }),
};

const text = (n: number): string => 'abcdefghij'.repeat(Math.ceil(n / 10)).slice(0, n);

function dataError(fn: () => unknown): string {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(isStrataError(err), `expected a StrataError, got ${String(err)}`).toBe(true);
  expect((err as { code: string }).code).toBe('E_DATA');
  return (err as Error).message;
}

function inSegments(segs: readonly Segment[], from: number, to: number): boolean {
  return segs.some((s) => s.start <= from && to <= s.end);
}

describe('TextDataset split', () => {
  const N = 100_000;
  const make = (seed: number, valFraction = 0.1) =>
    new TextDataset({ text: text(N) }, positions, { seed, valFraction, chunkSize: 1000 });

  it('partitions the tokens into sorted, disjoint train and validation segments', () => {
    const ds = make(7);
    const all = [
      ...ds.train.map((s) => ({ ...s, v: false })),
      ...ds.val.map((s) => ({ ...s, v: true })),
    ].sort((a, b) => a.start - b.start);
    let pos = 0;
    for (const s of all) {
      expect(s.start).toBe(pos);
      expect(s.end).toBeGreaterThan(s.start);
      pos = s.end;
    }
    expect(pos).toBe(N);
    // adjacent segments alternate between splits (adjacent chunks of one split are merged)
    for (let i = 1; i < all.length; i++) expect(all[i]!.v).not.toBe(all[i - 1]!.v);
    const st = ds.stats();
    expect(st.totalTokens).toBe(N);
    expect(st.trainTokens + st.valTokens).toBe(N);
    expect(st.valTokens).toBe(10_000); // exactly 10 of 100 chunks
    expect(st.chunks).toBe(100);
    expect(st.chunkSize).toBe(1000);
    expect(st.documents).toBe(1);
    expect(st.seed).toBe(7);
  });

  it('is deterministic from the seed', () => {
    expect(make(7).val).toEqual(make(7).val);
    expect(make(7).train).toEqual(make(7).train);
    expect(make(8).val).not.toEqual(make(7).val);
  });

  it('follows valFraction and guarantees a validation chunk and a training chunk', () => {
    expect(make(1, 0.25).stats().valTokens).toBe(25_000);
    expect(make(1, 0.001).stats().valTokens).toBe(1000); // rounds to 0 chunks → at least 1
    expect(make(1, 0.999).stats().trainTokens).toBe(1000); // at least 1 training chunk
    const none = make(1, 0);
    expect(none.val).toEqual([]);
    expect(none.train).toEqual([{ start: 0, end: N }]);
    expect(none.valBatches(4, 16)).toEqual([]);
  });

  it('uses one contiguous validation block at the start or end for small data', () => {
    const starts = new Set<number>();
    for (let seed = 0; seed < 20; seed++) {
      const ds = new TextDataset(text(1000), positions, { seed });
      expect(ds.val).toHaveLength(1);
      expect(ds.train).toHaveLength(1);
      expect(ds.stats().valTokens).toBe(100);
      starts.add(ds.val[0]!.start);
    }
    expect([...starts].sort((a, b) => a - b)).toEqual([0, 900]);
  });

  it('joins documents with blank lines', () => {
    const ds = new TextDataset({ documents: ['ab', 'cd'] }, new ByteTokenizer(), { valFraction: 0 });
    expect(new TextDecoder().decode(ds.tokens)).toBe('ab\n\ncd');
    expect(ds.stats().documents).toBe(2);
    expect(ds.stats().vocabSize).toBe(256);
  });
});

describe('TextDataset.trainBatch', () => {
  const ds = new TextDataset(text(50_000), positions, { seed: 3, chunkSize: 500 });
  const valMask = new Uint8Array(50_000);
  for (const s of ds.val) valMask.fill(1, s.start, s.end);

  it('has the right shape, and y is x shifted by one', () => {
    const b = ds.trainBatch(0, 8, 32);
    expect(b.x).toBeInstanceOf(Int32Array);
    expect(b.x).toHaveLength(8 * 32);
    expect(b.y).toHaveLength(8 * 32);
    expect(b.batchSize).toBe(8);
    expect(b.seqLen).toBe(32);
    const byte = new TextDataset(text(50_000), new ByteTokenizer(), { seed: 3, chunkSize: 500 }).trainBatch(
      0,
      8,
      32,
    );
    for (let r = 0; r < 8; r++) {
      for (let t = 0; t < 31; t++) {
        expect(b.y[r * 32 + t]).toBe(b.x[r * 32 + t + 1]);
        expect(byte.y[r * 32 + t]).toBe(byte.x[r * 32 + t + 1]);
      }
    }
  });

  it('never touches a validation token (windows stay inside training segments)', () => {
    const seqLen = 64;
    let rows = 0;
    let bad = 0;
    for (let step = 0; step < 300; step++) {
      const b = ds.trainBatch(step, 16, seqLen);
      const starts = ds.trainWindowStarts(step, 16, seqLen);
      for (let r = 0; r < 16; r++) {
        const x0 = b.x[r * seqLen]!;
        if (x0 !== starts[r] || !inSegments(ds.train, x0, x0 + seqLen + 1) || valMask[x0] !== 0) bad++;
        for (let t = 0; t < seqLen; t++) {
          // positions tokenizer: the values are the positions, consecutive within a row
          if (b.x[r * seqLen + t] !== x0 + t || b.y[r * seqLen + t] !== x0 + t + 1) bad++;
          if (valMask[x0 + t + 1] !== 0) bad++;
        }
        rows++;
      }
    }
    expect(rows).toBe(4800);
    expect(bad).toBe(0);
  });

  it('samples windows from all training segments, every start position included', () => {
    const hitSeg = new Set<number>();
    for (let step = 0; step < 200; step++) {
      for (const s of ds.trainWindowStarts(step, 8, 16))
        hitSeg.add(ds.train.findIndex((g) => g.start <= s && s < g.end));
    }
    expect(hitSeg.size).toBe(ds.train.length);
    const one = new TextDataset(text(200), positions, { valFraction: 0 });
    const starts = new Set<number>();
    for (let step = 0; step < 300; step++) for (const s of one.trainWindowStarts(step, 8, 16)) starts.add(s);
    expect(starts.size).toBe(200 - 16); // 0 … 183: the last window ends at the last token
    expect(Math.min(...starts)).toBe(0);
    expect(Math.max(...starts)).toBe(183);
  });

  it('is stateless and deterministic: same (seed, step) ⇒ same batch, in any call order', () => {
    const a5 = ds.trainBatch(5, 4, 32);
    ds.trainBatch(99, 4, 32);
    const other = new TextDataset(text(50_000), positions, { seed: 3, chunkSize: 500 });
    expect(other.trainBatch(5, 4, 32)).toEqual(a5);
    expect(ds.trainBatch(5, 4, 32)).toEqual(a5);
    expect(ds.trainBatch(6, 4, 32).x).not.toEqual(a5.x);
    const seed4 = new TextDataset(text(50_000), positions, { seed: 4, chunkSize: 500 });
    expect(seed4.trainBatch(5, 4, 32).x).not.toEqual(a5.x);
  });

  it('rejects invalid arguments', () => {
    expect(() => ds.trainBatch(-1, 4, 8)).toThrow(/step/);
    expect(() => ds.trainBatch(0, 0, 8)).toThrow(/batchSize/);
    expect(() => ds.trainBatch(0, 4, 1.5)).toThrow(/seqLen/);
  });
});

describe('TextDataset.valBatches', () => {
  const ds = new TextDataset(text(50_000), positions, { seed: 11, chunkSize: 500 });

  it('covers validation segments with non-overlapping windows, deterministically', () => {
    const seqLen = 50;
    const batches = ds.valBatches(4, seqLen);
    expect(batches).toEqual(ds.valBatches(4, seqLen));
    const expectedWindows = ds.val.reduce((a, s) => a + Math.floor((s.end - s.start - 1) / seqLen), 0);
    expect(batches.length).toBe(Math.floor(expectedWindows / 4));
    const targets = new Set<number>();
    const inputs = new Set<number>();
    let bad = 0;
    for (const b of batches) {
      expect(b.batchSize).toBe(4);
      expect(b.x).toHaveLength(4 * seqLen);
      for (let r = 0; r < 4; r++) {
        const x0 = b.x[r * seqLen]!;
        if (!inSegments(ds.val, x0, x0 + seqLen + 1)) bad++;
        for (let t = 0; t < seqLen; t++) {
          if (b.x[r * seqLen + t] !== x0 + t || b.y[r * seqLen + t] !== x0 + t + 1) bad++;
          if (inputs.has(x0 + t) || targets.has(x0 + t + 1)) bad++;
          inputs.add(x0 + t);
          targets.add(x0 + t + 1);
        }
      }
    }
    expect(bad).toBe(0);
    expect(targets.size).toBe(batches.length * 4 * seqLen);
  });

  it('limits to maxBatches with windows spread evenly over the whole split', () => {
    const batches = ds.valBatches(2, 20, 3);
    expect(batches).toHaveLength(3);
    const firsts = batches.flatMap((b) => [b.x[0]!, b.x[20]!]);
    const all = ds.valWindowStarts(1, 20);
    expect(all).toHaveLength(ds.val.reduce((a, s) => a + Math.floor((s.end - s.start - 1) / 20), 0));
    expect(firsts).toEqual([0, 1, 2, 3, 4, 5].map((i) => all[Math.floor((i * all.length) / 6)]));
    expect(ds.valWindowStarts(2, 20, 3)).toEqual(firsts);
    expect(firsts[5]!).toBeGreaterThan(all[Math.floor(all.length * 0.8)]!);
  });

  it('fills one batch cyclically when there are fewer windows than the batch size', () => {
    const small = new TextDataset(text(1000), positions, { seed: 0 }); // 100 validation tokens
    const [b, ...rest] = small.valBatches(8, 40);
    expect(rest).toEqual([]);
    expect(b!.batchSize).toBe(8);
    const v0 = small.val[0]!.start;
    const firsts = Array.from({ length: 8 }, (_, r) => b!.x[r * 40]);
    expect(firsts).toEqual([v0, v0 + 40, v0, v0 + 40, v0, v0 + 40, v0, v0 + 40]);
  });
});

describe('TextDataset errors and fingerprint', () => {
  it('names the numbers when the data is too small for the context length', () => {
    const ds = new TextDataset(text(1000), new ByteTokenizer(), { seed: 0 }); // 900 train, 100 val
    ds.requireSeqLen(99);
    const msg = dataError(() => ds.requireSeqLen(128));
    expect(msg).toMatch(/validation/);
    expect(msg).toContain('129');
    expect(msg).toContain('100 tokens');
    expect(msg).toContain('1290 tokens');
    const msg2 = dataError(() => ds.trainBatch(0, 4, 1000));
    expect(msg2).toMatch(/training/);
    expect(msg2).toContain('1001');
    expect(msg2).toContain('900');
    dataError(() => ds.valBatches(4, 200));
  });

  it('suggests a larger chunk size when validation chunks are shorter than the context', () => {
    const ds = new TextDataset(text(20_000), new ByteTokenizer(), { seed: 0, chunkSize: 100 });
    const msg = dataError(() => ds.valBatches(2, 400));
    expect(msg).toContain('401');
    expect(msg).toMatch(/chunkSize of at least 401/);
  });

  it('rejects empty data and bad options', () => {
    expect(dataError(() => new TextDataset('', new ByteTokenizer()))).toMatch(/empty/);
    expect(dataError(() => new TextDataset({ documents: [] }, new ByteTokenizer()))).toMatch(/empty/);
    expect(() => new TextDataset('abc', new ByteTokenizer(), { valFraction: 1 })).toThrow(/valFraction/);
    expect(() => new TextDataset('abc', new ByteTokenizer(), { valFraction: -0.1 })).toThrow(/valFraction/);
    expect(() => new TextDataset('abc', new ByteTokenizer(), { seed: 0.5 })).toThrow(/seed/);
    expect(() => new TextDataset('abc', new ByteTokenizer(), { chunkSize: 1 })).toThrow(/chunkSize/);
  });

  it('fingerprints the tokens, not the split', () => {
    const a = new TextDataset(text(5000), new ByteTokenizer(), { seed: 1 });
    const b = new TextDataset(text(5000), new ByteTokenizer(), { seed: 2, valFraction: 0.2 });
    const c = new TextDataset(`${text(4999)}x`, new ByteTokenizer(), { seed: 1 });
    expect(a.datasetFingerprint()).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(b.datasetFingerprint()).toBe(a.datasetFingerprint());
    expect(c.datasetFingerprint()).not.toBe(a.datasetFingerprint());
  });
});
