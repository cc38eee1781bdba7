/**
 * `--preset roformer-v2 | gau-alpha | gau-lm`, `strata eval --context`, `strata bench --suite gau`, and
 * `strata eval --attention-entropy`.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeSafetensors, type EntropyBucket } from '@strata/core';
import { afterAll, describe, expect, it } from 'vitest';
import type { BenchReport, BenchRow } from '../src/commands/bench.js';
import { jsonLines, strataRun } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'strata-gau-cli-'));
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
const tensorNames = (dir: string) => [
  ...decodeSafetensors(
    new Uint8Array(readFileSync(join(dir, 'checkpoint', 'model.safetensors'))),
  ).tensors.keys(),
];

describe('strata CLI: GAU and RoFormerV2 presets', () => {
  it('trains gau-alpha with MLM on user data: GAU layers, no biases, no norm weights; eval reports masked accuracy', async () => {
    const out = join(tmp, 'gau-alpha');
    const r = await strataRun([
      'train',
      '--preset',
      'gau-alpha',
      '--data',
      corpus,
      ...TINY,
      '--context',
      '32',
      '--model-opt',
      'gauKeyDim=16',
      '--steps',
      '4',
      '--out',
      out,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const cfg = JSON.parse(readFileSync(join(out, 'checkpoint', 'config.json'), 'utf8'));
    expect(cfg.family).toBe('encoder');
    expect(cfg.model).toMatchObject({
      block: 'gau',
      attentionNorm: 'softmax_plus',
      normAffine: false,
      bias: false,
    });
    expect(cfg.training.task.kind).toBe('mlm');
    const names = tensorNames(out);
    expect(names).toContain('blocks.1.gau.in.weight');
    expect(names.filter((n) => /norm|bias/.test(n))).toEqual([]);
    const e = await strataRun(['eval', '--checkpoint', out, '--batches', '2', '--batch-size', '2', '--json']);
    expect(e.code, e.stderr).toBe(0);
    const m = jsonLines(e.stdout)[0]!;
    expect(m.task).toBe('mlm');
    expect(m.accuracy).toBeGreaterThanOrEqual(0);
  });

  it('trains roformer-v2 on the default corpus', async () => {
    const out = join(tmp, 'roformer');
    const r = await strataRun([
      'train',
      '--preset',
      'roformer-v2',
      ...TINY,
      '--context',
      '32',
      '--steps',
      '3',
      '--out',
      out,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const cfg = JSON.parse(readFileSync(join(out, 'checkpoint', 'config.json'), 'utf8'));
    expect(cfg.model).toMatchObject({
      block: 'transformer',
      activation: 'relu',
      normAffine: false,
      embedNorm: true,
    });
    expect(cfg.model.norm.name).toBe('post-ln');
    expect(tensorNames(out).filter((n) => /norm|bias/.test(n))).toEqual([]);
  });

  it('gau-lm trains, evaluates at 2× and 4× its context (RoPE), and generates; a learned-position model refuses', async () => {
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
      '--norm',
      'pre-ln',
      '--steps',
      '3',
      '--out',
      out,
    ]);
    expect(r.code, r.stderr).toBe(0);
    for (const n of [16, 32, 64]) {
      const e = await strataRun([
        'eval',
        '--checkpoint',
        out,
        '--data',
        corpus,
        '--context',
        String(n),
        '--batches',
        '2',
        '--json',
      ]);
      expect(e.code, e.stderr).toBe(0);
      const m = jsonLines(e.stdout)[0]!;
      expect(m.contextLength).toBe(n);
      expect(Number.isFinite(m.loss)).toBe(true);
    }
    const g = await strataRun([
      'generate',
      '--checkpoint',
      out,
      '--prompt',
      'the ',
      '--max-tokens',
      '8',
      '--seed',
      '1',
    ]);
    expect(g.code, g.stderr).toBe(0);
    const learned = join(tmp, 'learned');
    const t = await strataRun([
      'train',
      '--data',
      corpus,
      ...TINY,
      '--positions',
      'learned',
      '--context',
      '16',
      '--steps',
      '1',
      '--out',
      learned,
    ]);
    expect(t.code, t.stderr).toBe(0);
    const bad = await strataRun(['eval', '--checkpoint', learned, '--context', '32']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/learned position table of 16 rows/);
  });

  it('refuses a preset with a conflicting --arch or --model, naming both', async () => {
    const a = await strataRun(['train', '--preset', 'gau-alpha', '--arch', 'decoder-only', '--steps', '1']);
    expect(a.code).not.toBe(0);
    expect(a.stderr).toMatch(/--preset gau-alpha is encoder-only; drop --arch decoder-only/);
    const b = await strataRun(['train', '--preset', 'gau-lm', '--model', 'ngpt', '--steps', '1']);
    expect(b.code).not.toBe(0);
    expect(b.stderr).toMatch(/--preset gau-lm builds the gpt family; drop --model ngpt/);
  });

  it('strata bench --suite reference,gau: GAU rows with twice the layers and their step-time ratio', async () => {
    const r = await strataRun([
      'bench',
      '--backends',
      'wasm',
      '--suite',
      'reference,gau',
      '--d-model',
      '32',
      '--layers',
      '1',
      '--heads',
      '2',
      '--context',
      '32',
      '--batch-size',
      '2',
      '--steps',
      '1',
      '--workers',
      '1',
      '--generate',
      '8',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const rep = jsonLines(r.stdout)[0] as unknown as BenchReport;
    expect(rep.rows.map((x) => x.config)).toEqual(['reference', 'gau']);
    const gau = rep.rows[1] as BenchRow;
    // 2 GAU layers at d 32 (e 64, s 32) with biases: Pre-LN LayerNorm (γ, β), in [32, 160] + bias, q/k scales and
    // offsets, proj [64, 32] + bias; the final LayerNorm; the tied 256×32 embedding.
    const layer = 2 * 32 + (32 * 160 + 160) + 4 * 32 + (64 * 32 + 32);
    expect(gau.params).toBe(256 * 32 + 2 * layer + 2 * 32);
    expect(rep.generation.map((g) => g.config)).toContain('gau');
  });
});

/** Mean of ln n over n = lo..hi (every position of a causal sequence counted once). */
const meanLn = (lo: number, hi: number) => {
  let s = 0;
  for (let n = lo; n <= hi; n++) s += Math.log(n);
  return s / (hi - lo + 1);
};

describe('strata eval --attention-entropy', () => {
  /** Trains a tiny model with `flags` (space-separated) into `tmp/name` on the corpus; returns its directory. */
  const trainTiny = async (name: string, flags: string) => {
    const out = join(tmp, name);
    const args = ['train', '--data', corpus, ...TINY, '--context', '16', ...flags.split(' '), '--out', out];
    const r = await strataRun(args);
    expect(r.code, r.stderr).toBe(0);
    return out;
  };

  it('a causal GAU LM: per-bucket rows at 2× its trained context, as a table and as JSON', async () => {
    const out = await trainTiny(
      'entropy-lm',
      '--preset gau-lm --model-opt gauKeyDim=8 --model-opt softmaxPlusBase=16 --steps 3',
    );
    const flags = '--context 32 --batches 2 --batch-size 4 --attention-entropy --backend wasm'.split(' ');
    const base = ['eval', '--checkpoint', out, '--data', corpus, ...flags];
    const t = await strataRun(base);
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

    const j = await strataRun([...base, '--json']);
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
    const out = await trainTiny('entropy-encoder', '--preset gau-alpha --model-opt gauKeyDim=8 --steps 1');
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
    const out = await trainTiny('entropy-gpt', '--steps 1');
    const e = await strataRun(['eval', '--checkpoint', out, '--attention-entropy', '--backend', 'wasm']);
    expect(e.code).not.toBe(0);
    expect(e.stdout).toBe('');
    expect(e.stderr.trim().split('\n')).toHaveLength(1);
    expect(e.stderr).toMatch(
      /attention entropy needs GAU layers \(model\.block "gau"\): this model has standard Transformer blocks, whose attention runs as a fused kernel that never materializes the attention weights/,
    );
    const ngpt = await trainTiny('entropy-ngpt', '--model ngpt --steps 1');
    const f = await strataRun(['eval', '--checkpoint', ngpt, '--attention-entropy', '--backend', 'wasm']);
    expect(f.code).not.toBe(0);
    expect(f.stderr).toMatch(
      /--attention-entropy needs GAU layers \(model\.block "gau"\); the ngpt model family has none/,
    );
  });
});
