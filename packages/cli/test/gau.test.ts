/** `--preset roformer-v2 | gau-alpha | gau-lm`, `strata eval --context`, and `strata bench --suite gau`. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeSafetensors } from '@strata/core';
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
