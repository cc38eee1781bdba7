/**
 * nGPT growth (growth.md §3.5, §3.0 rows 33–38): the isometric map keeps every unit-norm invariant; the
 * stored scales are rescaled so every effective scale is unchanged; new blocks with α = 0 (signed α) are exact.
 */
import { initBackend, type LanguageModel } from '@strata/core';
import { effectiveScales, registerNGPT, unitNormErrors } from '@strata/ngpt';
import { beforeAll, describe, expect, it } from 'vitest';
import { type GrowthSpec, growModel } from '../src/index.js';
import { gradients, randomBatch, ropeRepeatSupported, tinyNGPT } from './helpers.js';

beforeAll(async () => {
  await initBackend('cpu');
  registerNGPT();
});

async function maxUnitError(m: LanguageModel): Promise<number> {
  return Math.max(...(await unitNormErrors(m.params)).values());
}

/** Effective value × gain of each scale of `big`, and of the small entry it copies. */
async function effectiveByName(m: LanguageModel): Promise<Map<string, Float64Array>> {
  const out = new Map<string, Float64Array>();
  for (const s of await effectiveScales(m))
    out.set(
      s.name,
      s.values.map((v) => v * s.gain),
    );
  return out;
}

const EXACT: [string, GrowthSpec][] = [
  ['d_model ×2 (heads ×2)', { width: 2 }],
  ['d_model ×3', { width: 3 }],
  ['d_ff ×2', { ffn: 2 }],
  ['depth ×2 interleaved', { depth: 2 }],
  ['depth +1 at the bottom', { depth: { insertAt: [0] } }],
  ['width ×2 + depth ×2 + noise', { width: 2, depth: 2, noise: 0.05 }],
];

describe('nGPT growth', () => {
  it.each(EXACT)('%s is exact and keeps every matrix unit-norm', async (_l, spec) => {
    const small = tinyNGPT();
    const r = await growModel(small, spec);
    expect(r.report.exactness).toBe('exact');
    expect(r.report.relDeltaLogits).toBeLessThan(1e-5);
    expect(await maxUnitError(r.model)).toBeLessThan(1e-6);
    small.dispose();
    r.model.dispose();
  });

  it('effective scales are unchanged while the stored ones follow the new d_model constants', async () => {
    const small = tinyNGPT();
    const r = await growModel(small, { width: 2 });
    const cs = small.config as Record<string, number>;
    const cb = r.model.config as Record<string, number>;
    expect(cb.alphaScale).toBeCloseTo(1 / Math.sqrt(16), 12);
    expect(cb.nuGain).toBeCloseTo(4, 12);
    expect(cb.attnScale).toBeCloseTo(cs.attnScale!, 12); // head dim kept
    const es = await effectiveByName(small);
    const eb = await effectiveByName(r.model);
    for (const [name, big] of eb) {
      const sm = es.get(name)!;
      // residual (α) and attention/FFN (s_qk, s_u, s_ν) vectors are tiled copies; s_z is per vocabulary entry
      for (let i = 0; i < big.length; i++) expect(big[i]).toBeCloseTo(sm[i % sm.length]!, 5);
    }
    // stored α and s_ν are divided by √2 (growth.md §3.5), s_u is not (its forward has no √d factor here)
    const ps = await small.params.read();
    const pb = await r.model.params.read();
    expect(pb.get('blocks.0.attn.alpha_A')![0]).toBeCloseTo(
      ps.get('blocks.0.attn.alpha_A')![0]! / Math.SQRT2,
      6,
    );
    expect(pb.get('blocks.0.mlp.s_nu')![0]).toBeCloseTo(ps.get('blocks.0.mlp.s_nu')![0]! / Math.SQRT2, 6);
    expect(pb.get('blocks.0.mlp.s_u')![0]).toBeCloseTo(ps.get('blocks.0.mlp.s_u')![0]!, 6);
    small.dispose();
    r.model.dispose();
  });

  it('a model with |α| grows in depth by switching to signed α, exactly, and the new α = 0 learns', async () => {
    const small = tinyNGPT({ alphaAbs: true });
    const r = await growModel(small, { depth: { insertAt: [1] } });
    expect((r.model.config as unknown as { alphaAbs: boolean }).alphaAbs).toBe(false);
    expect(r.report.relDeltaLogits).toBeLessThan(1e-5);
    expect(r.report.transforms[0]!.notes.join(' ')).toMatch(/signed/);
    const g = await gradients(r.model, randomBatch(2));
    const ga = g.get('blocks.1.attn.alpha_A')!;
    expect(Math.max(...Array.from(ga, Math.abs))).toBeGreaterThan(0);
    // the branch weights of the new block get no gradient until α moves (α = 0 multiplies them)
    expect(Math.max(...Array.from(g.get('blocks.1.mlp.fc.weight')!, Math.abs))).toBe(0);
    small.dispose();
    r.model.dispose();
  });

  // issue 13 gap 2: non-integer FFN (and head) growth used to be refused; the copied W_oM/W_o rows are now
  // split into unit rows w/c + p_i that sum to w
  it.each([
    ['d_ff ×1.5 (12→18)', { ffn: 1.5 }],
    ['d_ff 12→17', { dFF: 17 }],
    ['d_ff ×2.5 (copies 3 and 2) + noise', { ffn: 2.5, noise: 0.05 }],
    ['heads 2→3 with head dim 4→8 (d_model ×3)', { heads: 3, headDim: 8 }],
    // d_model 8 → 12: the isometric map with unequal copy counts (÷√c_i), heads 2 → 3, d_ff 12 → 18
    ['--width 1.5', { width: 1.5 }],
    ['d_model 8→12 with heads 3 (the FFN follows: 12→18)', { dModel: 12, heads: 3 }],
    ['--width 1.5 + depth + noise', { width: 1.5, depth: 2, noise: 0.05 }],
  ] as [string, GrowthSpec][])(
    '%s is exact, keeps every row unit-norm and the copies distinct',
    async (_l, spec) => {
      const small = tinyNGPT();
      const r = await growModel(small, spec);
      expect(r.report.exactness).toBe('exact');
      expect(r.report.relDeltaLogits).toBeLessThan(1e-5);
      expect(await maxUnitError(r.model)).toBeLessThan(1e-6);
      const proj = (await r.model.params.read()).get('blocks.0.mlp.proj.weight')!;
      const big = r.model.config as unknown as { dModel: number; dFF: number };
      if (big.dFF % 12 !== 0) {
        // the copies of unit 0 (rows 0, 12, 24 … of W_oM) are split: distinct rows that sum to the small row
        const d = big.dModel;
        const row = (m: Float32Array, j: number) => Array.from(m.subarray(j * d, (j + 1) * d));
        const copies = [0, 12, 24].filter((j) => j < big.dFF).map((j) => row(proj, j));
        const [a, b] = copies as [number[], number[]];
        expect(Math.max(...a.map((x, i) => Math.abs(x - b[i]!)))).toBeGreaterThan(0.1);
        const w = row((await small.params.read()).get('blocks.0.mlp.proj.weight')!, 0);
        const sum = w.map((_, i) => copies.reduce((acc, c) => acc + c[i]!, 0));
        if (!spec.noise && big.dModel === 8)
          expect(Math.max(...sum.map((x, i) => Math.abs(x - w[i]!)))).toBeLessThan(1e-5);
      }
      small.dispose();
      r.model.dispose();
    },
  );

  it('the tile map is refused for nGPT (outputs are re-normalized, rows must stay unit)', async () => {
    const small = tinyNGPT();
    await expect(growModel(small, { width: 2, map: 'tile' })).rejects.toThrow(/tile/);
    small.dispose();
  });

  it('head dim ×2: exact with the repeated RoPE table and s_qk × 2^(−1/4) (row 35), refused without it', async () => {
    const small = tinyNGPT();
    if (!ropeRepeatSupported('ngpt')) {
      await expect(growModel(small, { headDim: 8 })).rejects.toThrow(/ropeRepeat/);
      small.dispose();
      return;
    }
    const r = await growModel(small, { headDim: 8 });
    expect(r.report.relDeltaLogits).toBeLessThan(1e-5);
    expect(await maxUnitError(r.model)).toBeLessThan(1e-6);
    const es = await effectiveByName(small);
    const eb = await effectiveByName(r.model);
    const a = es.get('blocks.0.attn.s_qk')![0]!;
    const b = eb.get('blocks.0.attn.s_qk')![0]!;
    expect(b / a).toBeCloseTo(2 ** -0.25, 5);
    small.dispose();
    r.model.dispose();
  });

  // issue 13 gap 1: head dim 6 → 12 and 8 → 24 were refused because ropeRepeat was checked against the small
  // head dim (3 pairs are not divisible by 2); the grown head's pairs are the small ones repeated
  it.each([
    [12, 2, 12],
    [16, 2, 24],
  ])('head dim %i/%i → %i with RoPE is exact (layouts differ)', async (dModel, nHeads, headDim) => {
    const small = tinyNGPT({ dModel, nHeads });
    const r = await growModel(small, { headDim });
    expect(r.report.exactness).toBe('exact');
    expect(r.report.relDeltaLogits).toBeLessThan(1e-5);
    expect((r.model.config as unknown as { ropeRepeat: number }).ropeRepeat).toBe(
      (headDim * nHeads) / dModel,
    );
    expect(await maxUnitError(r.model)).toBeLessThan(1e-6);
    small.dispose();
    r.model.dispose();
  });
});
