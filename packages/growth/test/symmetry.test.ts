/**
 * Symmetry breaking (growth.md §6.5): without noise a unit and its copy get identical gradients forever; with
 * paired zero-sum noise the function is unchanged but the copies' gradients differ, and after a few steps so
 * do their weights.
 */
import { initBackend, type LanguageModel } from '@strata/core';
import { registerNGPT, unitNormErrors } from '@strata/ngpt';
import { registerBuiltinNorms } from '@strata/norms';
import { beforeAll, describe, expect, it } from 'vitest';
import { growModel } from '../src/index.js';
import { adamStep, gradients, randomBatch, tinyGPT, tinyNGPT, zeroState } from './helpers.js';

beforeAll(async () => {
  await initBackend('cpu');
  registerBuiltinNorms();
  registerNGPT();
});

/** max |A[:, a] − A[:, b]| and max |A| for a row-major [R, C] matrix. */
function colDiff(A: ArrayLike<number>, C: number, a: number, b: number): { diff: number; scale: number } {
  let diff = 0;
  let scale = 0;
  for (let r = 0; r < A.length / C; r++) {
    diff = Math.max(diff, Math.abs(A[r * C + a]! - A[r * C + b]!));
    scale = Math.max(scale, Math.abs(A[r * C + a]!));
  }
  return { diff, scale };
}

const FAMILIES: [string, () => Promise<LanguageModel> | LanguageModel][] = [
  ['GPT (pre-ln)', () => tinyGPT({ norm: 'pre-ln' })],
  ['GPT (post-ln, swiglu)', () => tinyGPT({ norm: 'post-ln', activation: 'swiglu' })],
  ['nGPT', () => tinyNGPT()],
];

describe.each(FAMILIES)('%s, d_model ×2 (d_ff 12 → 24)', (_label, make) => {
  it('copies get identical gradients without noise and different ones with it', async () => {
    const small = await make();
    const plain = await growModel(small, { width: 2 });
    const noisy = await growModel(small, { width: 2, noise: 0.05, seed: 3 });
    expect(noisy.report.relDeltaLogits).toBeLessThan(1e-5); // still the same function
    const batch = randomBatch(11);
    const gp = await gradients(plain.model, batch);
    const gn = await gradients(noisy.model, batch);
    // FFN unit 0 and its copy, unit 12: their input weights (columns of W_fc) — growth.md §3.0 row 32
    const fcPlain = colDiff(gp.get('blocks.0.mlp.fc.weight')!, 24, 0, 12);
    const fcNoisy = colDiff(gn.get('blocks.0.mlp.fc.weight')!, 24, 0, 12);
    expect(fcPlain.diff).toBeLessThanOrEqual(1e-6 * fcPlain.scale);
    expect(fcNoisy.diff).toBeGreaterThan(1e-3 * fcNoisy.scale);
    // residual coordinate 0 and its copy 8: what writes them (columns of W_o) — the reader noise reaches them
    const woPlain = colDiff(gp.get('blocks.0.attn.proj.weight')!, 16, 0, 8);
    const woNoisy = colDiff(gn.get('blocks.0.attn.proj.weight')!, 16, 0, 8);
    expect(woPlain.diff).toBeLessThanOrEqual(1e-6 * woPlain.scale);
    expect(woNoisy.diff).toBeGreaterThan(1e-3 * woNoisy.scale);
    // after a few Adam steps the copies' weights differ by more than round-off; without noise they do not
    for (const m of [plain.model, noisy.model]) {
      const st = zeroState(m);
      for (let s = 0; s < 3; s++) await adamStep(m, st, randomBatch(20 + s), { lr: 0.01 });
    }
    const wp = (await plain.model.params.read()).get('blocks.0.mlp.fc.weight')!;
    const wn = (await noisy.model.params.read()).get('blocks.0.mlp.fc.weight')!;
    expect(colDiff(wp, 24, 0, 12).diff).toBeLessThan(1e-6);
    expect(colDiff(wn, 24, 0, 12).diff).toBeGreaterThan(1e-3);
    if (small.family === 'ngpt') {
      expect(Math.max(...(await unitNormErrors(noisy.model.params)).values())).toBeLessThan(1e-6);
    }
    for (const m of [small, plain.model, noisy.model]) m.dispose();
  });
});

describe('noise inside new blocks (issue 13 gap 3)', () => {
  it('breaks the FFN copies of a new block, whose output projection the depth rule zeroed', async () => {
    const small = await tinyGPT({ norm: 'pre-ln' });
    const spec = { ffn: 2, depth: { layers: 3, placement: 'top' as const } };
    const plain = await growModel(small, spec);
    const noisy = await growModel(small, { ...spec, noise: 0.05, seed: 3 });
    expect(noisy.report.exactness).toBe('exact');
    expect(noisy.report.relDeltaLogits).toBeLessThan(1e-5);
    // the new block (2) starts with W_2 = 0 in the plain growth and with ±n rows (zero-sum per copy pair)
    const w2 = (await noisy.model.params.read()).get('blocks.2.mlp.proj.weight')!;
    expect(Math.max(...Array.from(w2, Math.abs))).toBeGreaterThan(0);
    for (let j = 0; j < 12; j++)
      for (let c = 0; c < 8; c++) expect(Math.abs(w2[j * 8 + c]! + w2[(j + 12) * 8 + c]!)).toBeLessThan(1e-6);
    for (const m of [plain.model, noisy.model]) {
      const st = zeroState(m);
      for (let s = 0; s < 4; s++) await adamStep(m, st, randomBatch(30 + s), { lr: 0.01 });
    }
    // unit 0 and its copy 12 of the new block: input weights (columns of W_fc) and output rows of W_2
    const wp = await plain.model.params.read();
    const wn = await noisy.model.params.read();
    expect(colDiff(wp.get('blocks.2.mlp.fc.weight')!, 24, 0, 12).diff).toBeLessThan(1e-6);
    expect(colDiff(wn.get('blocks.2.mlp.fc.weight')!, 24, 0, 12).diff).toBeGreaterThan(1e-4);
    for (const m of [small, plain.model, noisy.model]) m.dispose();
  });
});
