/** `strata eval --attention-entropy`: GAU attention entropy per bucket of visible keys, and its refusals. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EntropyBucket } from '@strata/core';
import { afterAll, describe, expect, it } from 'vitest';
import { jsonLines, strataRun } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'strata-attn-entropy-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const corpus = join(tmp, 'corpus.txt');
writeFileSync(
  corpus,
  'the quick brown fox jumps over the lazy dog. a stitch in time saves nine. '.repeat(120),
);
const TINY = [
  '--d-model',
  '32',
  '--layers',
  '2',
  '--batch-size',
  '4',
  '--eval-batches',
  '2',
  '--backend',
  'wasm',
];

/** Mean of ln n over n = lo..hi (every position of a causal sequence counted once). */
const meanLn = (lo: number, hi: number) => {
  let s = 0;
  for (let n = lo; n <= hi; n++) s += Math.log(n);
  return s / (hi - lo + 1);
};

describe('strata eval --attention-entropy', () => {
  it('a causal GAU LM: per-bucket rows at 2× its trained context, as a table and as JSON', async () => {
    const out = join(tmp, 'gau-lm');
    const r = await strataRun([
      'train',
      '--preset',
      'gau-lm',
      '--data',
      corpus,
      ...TINY,
      '--context',
      '16',
      '--model-opt',
      'gauKeyDim=8',
      '--model-opt',
      'softmaxPlusBase=16',
      '--steps',
      '3',
      '--out',
      out,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const base = [
      'eval',
      '--checkpoint',
      out,
      '--data',
      corpus,
      '--context',
      '32',
      '--batches',
      '2',
      '--batch-size',
      '4',
    ];
    const t = await strataRun([...base, '--attention-entropy', '--backend', 'wasm']);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toMatch(
      /attention entropy \(nats\) of 2 GAU layers, softmax_plus \(base 16\), context 32/,
    );
    expect(t.stdout).toMatch(/keys n\s+rows\s+ln n\s+mean H\s+layer 0\s+layer 1/);
    // 2 batches × 4 sequences: one query per sequence sees n = 1, two see n ∈ [2, 3], …, one sees n = 32.
    expect(t.stdout).toMatch(/^1\s+8\s+0\.000\s+0\.000\s+0\.000\s+0\.000$/m);
    expect(t.stdout).toMatch(new RegExp(`^16–31\\s+128\\s+${meanLn(16, 31).toFixed(3)}\\s`, 'm'));
    expect(t.stdout).toMatch(/^32\s+8\s+3\.466\s/m);
    expect(t.stdout).toMatch(/^slope dH\/d ln n\s+1\.000\s/m);

    const j = await strataRun([...base, '--attention-entropy', '--json', '--backend', 'wasm']);
    expect(j.code, j.stderr).toBe(0);
    const rep = jsonLines(j.stdout)[0]! as {
      contextLength: number;
      attentionNorm: string;
      softmaxPlusBase: number;
      layers: number;
      rows: number;
      buckets: EntropyBucket[];
      slope: { mean: number; layers: number[] };
    };
    expect(rep).toMatchObject({
      contextLength: 32,
      attentionNorm: 'softmax_plus',
      softmaxPlusBase: 16,
      layers: 2,
    });
    expect(rep.rows).toBe(2 * 4 * 32);
    expect(rep.buckets.map((b) => [b.nMin, b.nMax, b.rows])).toEqual([
      [1, 1, 8],
      [2, 3, 16],
      [4, 7, 32],
      [8, 15, 64],
      [16, 31, 128],
      [32, 32, 8],
    ]);
    for (const b of rep.buckets) {
      expect(b.meanLogN).toBeCloseTo(meanLn(b.nMin, b.nMax), 10);
      for (const h of b.layers) {
        expect(h).toBeGreaterThanOrEqual(0);
        expect(h).toBeLessThanOrEqual(Math.log(b.nMax) + 1e-5);
      }
      expect(b.meanEntropy).toBeCloseTo((b.layers[0]! + b.layers[1]!) / 2, 10);
    }
    expect(rep.buckets[0]!.meanEntropy).toBe(0);
    expect(rep.buckets.at(-1)!.meanEntropy).toBeGreaterThan(1);
    expect(rep.slope.layers).toHaveLength(2);
  });

  it('an encoder (gau-alpha, MLM): every real query sees the whole sequence', async () => {
    const out = join(tmp, 'gau-alpha');
    const r = await strataRun([
      'train',
      '--preset',
      'gau-alpha',
      '--data',
      corpus,
      ...TINY,
      '--context',
      '16',
      '--model-opt',
      'gauKeyDim=8',
      '--steps',
      '1',
      '--out',
      out,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const e = await strataRun([
      'eval',
      '--checkpoint',
      out,
      '--batches',
      '1',
      '--batch-size',
      '4',
      '--attention-entropy',
      '--json',
      '--backend',
      'wasm',
    ]);
    expect(e.code, e.stderr).toBe(0);
    const rep = jsonLines(e.stdout)[0]! as { layers: number; buckets: EntropyBucket[] };
    expect(rep.layers).toBe(2);
    expect(rep.buckets.map((b) => [b.nMin, b.nMax, b.rows])).toEqual([[16, 16, 4 * 16]]);
    expect(rep.buckets[0]!.meanEntropy).toBeLessThanOrEqual(Math.log(16) + 1e-5);
  });

  it('refuses a standard GPT checkpoint (its fused attention never materializes the weights) and nGPT', async () => {
    const out = join(tmp, 'gpt');
    const r = await strataRun([
      'train',
      '--data',
      corpus,
      ...TINY,
      '--context',
      '16',
      '--steps',
      '1',
      '--out',
      out,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const e = await strataRun(['eval', '--checkpoint', out, '--attention-entropy', '--backend', 'wasm']);
    expect(e.code).not.toBe(0);
    expect(e.stdout).toBe('');
    expect(e.stderr.trim().split('\n')).toHaveLength(1);
    expect(e.stderr).toMatch(
      /attention entropy needs GAU layers \(model\.block "gau"\): this model has standard Transformer blocks, whose attention runs as a fused kernel that never materializes the attention weights/,
    );
    const ngpt = join(tmp, 'ngpt');
    const n = await strataRun([
      'train',
      '--model',
      'ngpt',
      '--data',
      corpus,
      ...TINY,
      '--context',
      '16',
      '--steps',
      '1',
      '--out',
      ngpt,
    ]);
    expect(n.code, n.stderr).toBe(0);
    const f = await strataRun(['eval', '--checkpoint', ngpt, '--attention-entropy', '--backend', 'wasm']);
    expect(f.code).not.toBe(0);
    expect(f.stderr).toMatch(
      /--attention-entropy needs GAU layers \(model\.block "gau"\); the ngpt model family has none/,
    );
  });
});
