/**
 * Negative controls (growth.md §6.3): each correction the rules make is necessary — leaving it out changes
 * the function by far more than round-off — while the full rule stays exact on the same model.
 */
import { initBackend, type LanguageModel } from '@strata/core';
import { registerNGPT } from '@strata/ngpt';
import { registerBuiltinNorms } from '@strata/norms';
import { beforeAll, describe, expect, it } from 'vitest';
import { type Ablations, type GrowOptions, type GrowthSpec, growModel } from '../src/index.js';
import { logits, maxAbsDiff, randomBatch, ropeRepeatSupported, tinyGPT, tinyNGPT } from './helpers.js';

beforeAll(async () => {
  await initBackend('cpu');
  registerBuiltinNorms();
  registerNGPT();
});

async function rel(small: LanguageModel, spec: GrowthSpec, options: GrowOptions = {}) {
  const r = await growModel(small, { ...spec, allowApprox: true }, options);
  r.model.dispose();
  return r.report;
}

const CONTROLS: [string, () => Promise<LanguageModel> | LanguageModel, GrowthSpec, Ablations, number][] = [
  // eps 1e-2 so the effect of the eps rule is visible (growth.md §3.0 row 3: 5e-4 at eps 1e-5)
  [
    'isometric width without eps ÷ k',
    () => tinyGPT({ norm: 'pre-ln', extra: { normEps: 1e-2 } }),
    { width: 2 },
    { epsFix: false },
    1e-3,
  ],
  [
    'RMSNorm isometric width without eps ÷ k',
    () => tinyGPT({ norm: 'post-ln', normKind: 'rmsnorm', extra: { normEps: 1e-2 } }),
    { width: 2 },
    { epsFix: false },
    1e-3,
  ],
  [
    'head dim ×2 without q,k × 2^(−1/4)',
    () => tinyGPT({ norm: 'pre-ln' }),
    { headDim: 8 },
    { qkFix: false },
    1e-2,
  ],
  [
    'Post-LN depth without moving the LN affine',
    () => tinyGPT({ norm: 'post-ln' }),
    { depth: { insertAt: [1] } },
    { postLnAffine: false },
    1e-2,
  ],
  [
    'DeepNorm depth with α recomputed and nothing absorbed',
    () => tinyGPT({ norm: 'deepnorm' }),
    { depth: 4 },
    { deepnormAlpha: false },
    1e-2,
  ],
  ['nGPT width without the s_ν fix', () => tinyNGPT(), { width: 2 }, { ngptScaleFix: false }, 1e-3],
];

describe('negative controls must differ; the full rule must not', () => {
  it.each(CONTROLS)('%s', async (_label, make, spec, ablate, minRel) => {
    const small = await make();
    const good = await rel(small, spec);
    const bad = await rel(small, spec, { ablate });
    expect(good.exactness).not.toBe('approx');
    expect(good.relDeltaLogits).toBeLessThan(1e-4);
    expect(bad.exactness).toBe('approx');
    expect(bad.relDeltaLogits).toBeGreaterThan(minRel);
    expect(bad.relDeltaLogits).toBeGreaterThan(100 * good.relDeltaLogits);
    small.dispose();
  });

  it('an ablated transform is refused without allowApprox', async () => {
    const small = await tinyGPT({ norm: 'pre-ln' });
    await expect(growModel(small, { width: 2 }, { ablate: { epsFix: false } })).rejects.toThrow(
      /cannot be exact.*eps/,
    );
    small.dispose();
  });

  it('head-dim growth with RoPE and the standard table is far from exact (growth.md §3.0 row 7)', async () => {
    const small = await tinyGPT({ norm: 'pre-ln', positions: 'rope' });
    if (ropeRepeatSupported('gpt')) {
      const good = await rel(small, { headDim: 8 });
      expect(good.exactness).toBe('exact');
      expect(good.relDeltaLogits).toBeLessThan(1e-5);
    } else await expect(growModel(small, { headDim: 8 })).rejects.toThrow(/RoPE/);
    const r = await rel(small, { headDim: 8 }, { ablate: { ropeRepeat: false } });
    expect(r.exactness).toBe('approx');
    expect(r.relDeltaLogits).toBeGreaterThan(1e-2);
    small.dispose();
  });
});

describe('DeepNorm: α kept and α absorbed give the same function (growth.md §6.7)', () => {
  it('keep pins α, absorb rescales the branches and eps; both match the small model', async () => {
    const small = await tinyGPT({ norm: 'deepnorm', tied: false });
    const probe = randomBatch(3).x;
    const keep = await growModel(small, { depth: 2 }, { deepnormAlpha: 'keep' });
    const absorb = await growModel(small, { depth: 2 }, { deepnormAlpha: 'absorb' });
    const cfgKeep = keep.model.config as unknown as { norm: { options: { alpha: number } }; normEps: number };
    const cfgAbs = absorb.model.config as unknown as {
      norm: { options: { alpha: number | null } };
      normEps: number;
    };
    expect(cfgKeep.norm.options.alpha).toBeCloseTo(4 ** 0.25, 12); // (2·2)^¼ of the small model
    expect(cfgAbs.norm.options.alpha).toBeNull(); // auto: (2·4)^¼
    expect(cfgAbs.normEps / cfgKeep.normEps).toBeCloseTo(Math.sqrt(2), 10); // (α′/α)² = √2
    const a = await logits(keep.model, probe);
    const b = await logits(absorb.model, probe);
    const s = await logits(small, probe);
    expect(maxAbsDiff(a, s)).toBeLessThan(1e-4);
    expect(maxAbsDiff(b, s)).toBeLessThan(1e-4);
    expect(maxAbsDiff(a, b)).toBeLessThan(1e-4);
    for (const m of [small, keep.model, absorb.model]) m.dispose();
  });
});
