/** The growth API: size resolution, placement, map choices, plugin strategies, chained growth. */
import { defineNorm, initBackend, isStrataError, opt, registerNorm } from '@strata/core';
import { registerBuiltinNorms } from '@strata/norms';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  getGrowthRules,
  growModel,
  makeProbe,
  optimizerTensors,
  registerGrowthRules,
  residualNormLayout,
  resolveGrowth,
  verifyGrowth,
  zeroOutputDepthRule,
} from '../src/index.js';
import { randomBatch, tinyGPT, zeroState } from './helpers.js';

beforeAll(async () => {
  await initBackend('cpu');
  registerBuiltinNorms();
});

const DIMS = { dModel: 8, nHeads: 2, headDim: 4, dFF: 12, nLayers: 2 };

describe('resolveGrowth', () => {
  it('width alone scales heads (head dim kept) and d_ff', () => {
    expect(resolveGrowth(DIMS, { width: 2 }).dims).toEqual({
      dModel: 16,
      nHeads: 4,
      headDim: 4,
      dFF: 24,
      nLayers: 2,
    });
  });
  it('heads or head dim alone imply the width', () => {
    expect(resolveGrowth(DIMS, { heads: 3 }).dims).toMatchObject({
      dModel: 12,
      nHeads: 3,
      headDim: 4,
      dFF: 18,
    });
    expect(resolveGrowth(DIMS, { headDim: 8 }).dims).toMatchObject({ dModel: 16, nHeads: 2, headDim: 8 });
    expect(resolveGrowth(DIMS, { width: 2, heads: 2 }).dims).toMatchObject({ headDim: 8 });
  });
  it('places new blocks: interleaved, on top, at the bottom, or where asked', () => {
    expect(resolveGrowth(DIMS, { depth: 2 }).insertAt).toEqual([1, 2]);
    expect(resolveGrowth(DIMS, { depth: 3 }).insertAt).toEqual([1, 1, 2, 2]);
    expect(resolveGrowth(DIMS, { depth: { layers: 3, placement: 'top' } }).insertAt).toEqual([2]);
    expect(resolveGrowth(DIMS, { depth: { factor: 2, placement: 'bottom' } }).insertAt).toEqual([0, 0]);
    expect(resolveGrowth(DIMS, { depth: { insertAt: [2, 0] } }).insertAt).toEqual([0, 2]);
  });
  it.each([
    [{ width: 0.5 }, /shrink/],
    [{ width: 1.3 }, /whole number/],
    [{ headDim: 6 }, /integer factor/],
    [{ width: 2, heads: 3 }, /heads .* head dim/],
    [{ depth: 1.25 }, /whole number of layers/],
    [{ depth: { insertAt: [3] } }, /not in \[0, 2\]/],
  ] as const)('refuses %o', (spec, msg) => {
    expect(() => resolveGrowth(DIMS, spec)).toThrow(msg);
  });
});

describe('growModel choices', () => {
  it('explicit sizes (dModel, dFF) grow exactly through the FFN stage and then the width stage', async () => {
    const m = await tinyGPT({ norm: 'pre-ln' });
    const r = await growModel(m, { dModel: 16, dFF: 30 });
    expect(r.report.transforms.map((t) => [t.name, t.to.dModel, t.to.dFF])).toEqual([
      ['ffn', 8, 30],
      ['width', 16, 30],
    ]);
    expect(r.report.relDeltaLogits).toBeLessThan(1e-5);
    m.dispose();
    r.model.dispose();
  });

  it('refuses a spec that grows nothing', async () => {
    const m = await tinyGPT({ norm: 'pre-ln' });
    await expect(growModel(m, {})).rejects.toThrow(/nothing to grow/);
    m.dispose();
  });

  it('tile map with a tied head: the norm before the head ÷ k — the final norm (Pre-LN) or the last block’s LN (Post-LN-type)', async () => {
    const pre = await tinyGPT({ norm: 'pre-ln', tied: true });
    const r = await growModel(pre, { width: 2, map: 'tile' });
    expect(r.report.relDeltaLogits).toBeLessThan(1e-5);
    expect(r.report.transforms.at(-1)!.description).toMatch(/tile/);
    r.model.dispose();
    // issue 13 gap 4: Post-LN has no final norm; it used to be refused, though dividing the last block's LN
    // affine by k is exact
    for (const norm of ['post-ln', 'deepnorm', 'admin']) {
      const post = await tinyGPT({ norm, tied: true });
      const g = await growModel(post, { width: 2, map: 'tile' });
      expect(g.report.exactness).toBe('exact');
      expect(g.report.relDeltaLogits).toBeLessThan(1e-5);
      expect(g.report.transforms.at(-1)!.description).toMatch(/blocks\.1\.mlp\.norm ÷2/);
      const small = (await post.params.read()).get('blocks.1.mlp.norm.weight')!;
      const big = (await g.model.params.read()).get('blocks.1.mlp.norm.weight')!;
      for (let i = 0; i < big.length; i++) expect(big[i]).toBeCloseTo(small[i % small.length]! / 2, 6);
      for (const m of [post, g.model]) m.dispose();
    }
    // without any norm before a tied head (ReZero) the ×k of the logits has nowhere to go
    const rezero = await tinyGPT({ norm: 'rezero', tied: true });
    await expect(growModel(rezero, { width: 2, map: 'tile' })).rejects.toThrow(/norm before the head/);
    const untied = await tinyGPT({ norm: 'post-ln', tied: false });
    const r2 = await growModel(untied, { width: 2, map: 'tile' });
    expect(r2.report.relDeltaLogits).toBeLessThan(1e-5);
    for (const m of [pre, rezero, untied, r2.model]) m.dispose();
  });

  it('SubLN uses the tile map by default and refuses the isometric one (inner norms need eps unchanged)', async () => {
    const m = await tinyGPT({ norm: 'subln', extra: { normEps: 1e-2 } });
    const r = await growModel(m, { width: 2 });
    expect((r.model.config as unknown as { normEps: number }).normEps).toBe(1e-2);
    expect(r.report.relDeltaLogits).toBeLessThan(1e-5);
    await expect(growModel(m, { width: 2, map: 'isometric' })).rejects.toThrow(/internal widths/);
    const approx = await growModel(m, { width: 2, map: 'isometric', allowApprox: true });
    expect(approx.report.exact).toBe(false);
    expect(approx.report.relDeltaLogits).toBeGreaterThan(1e-4);
    for (const x of [m, r.model, approx.model]) x.dispose();
  });

  it('non-integer width: average coordinates (LN, Pre-LN) and zero-padding (RMSNorm); the wrong one is refused', async () => {
    const ln = await tinyGPT({ norm: 'pre-ln' });
    const a = await growModel(ln, { heads: 3 });
    expect(a.report.transforms.at(-1)!.description).toMatch(/average/);
    expect(a.report.relDeltaLogits).toBeLessThan(1e-5);
    await expect(growModel(ln, { heads: 3, nonInteger: 'zero-pad' })).rejects.toThrow(/zero-padding/);
    const bad = await growModel(ln, { heads: 3, nonInteger: 'zero-pad', allowApprox: true });
    expect(bad.report.relDeltaLogits).toBeGreaterThan(1e-3); // growth.md §3.0 row 18
    const rms = await tinyGPT({ norm: 'post-ln', normKind: 'rmsnorm' });
    const z = await growModel(rms, { width: 1.5 });
    expect(z.report.transforms.at(-1)!.description).toMatch(/zero-padded/);
    expect(z.report.relDeltaLogits).toBeLessThan(1e-5);
    for (const m of [ln, a.model, bad.model, rms, z.model]) m.dispose();
  });

  it('Mix-LN without Post-LN layers takes average coordinates (issue 13 gap 4); with them it refuses', async () => {
    // fraction 0.25 of 2 layers: ⌊0.5⌋ = 0 Post-LN layers, so every norm is a pre-norm
    const pre = await tinyGPT({ norm: 'mix-ln', normOptions: { fraction: 0.25 } });
    const a = await growModel(pre, { heads: 3 });
    expect(a.report.exactness).toBe('exact');
    expect(a.report.transforms.at(-1)!.description).toMatch(/average/);
    expect(a.report.relDeltaLogits).toBeLessThan(1e-5);
    const mixed = await tinyGPT({ norm: 'mix-ln', normOptions: { fraction: 0.5 } });
    await expect(growModel(mixed, { heads: 3, nonInteger: 'average' })).rejects.toThrow(/average/);
    const bad = await growModel(mixed, { heads: 3, nonInteger: 'average', allowApprox: true });
    expect(bad.report.relDeltaLogits).toBeGreaterThan(1e-3);
    for (const m of [pre, a.model, mixed, bad.model]) m.dispose();
  });

  it('new blocks from a fresh init are identities too', async () => {
    const m = await tinyGPT({ norm: 'layerscale' });
    const r = await growModel(m, { depth: 2 }, { depthInit: 'random', initSeed: 9 });
    expect(r.report.maxAbsDeltaLogits).toBe(0);
    const vals = await r.model.params.read();
    const copied = (await m.params.read()).get('blocks.0.mlp.fc.weight')!;
    expect(vals.get('blocks.1.mlp.fc.weight')).not.toEqual(copied); // not a copy of block 0
    m.dispose();
    r.model.dispose();
  });

  it('chained growth composes, including the optimizer state’s learning-rate multipliers', async () => {
    const m = await tinyGPT({ norm: 'pre-ln' });
    const st = zeroState(m);
    st.step = 5;
    const a = await growModel(m, { width: 2 }, { optimizer: st });
    const b = await growModel(a.model, { width: 2, depth: 2 }, { optimizer: a.optimizer! });
    // the same through a checkpoint's tensors (lr_scale.<param>)
    const c = await growModel(
      a.model,
      { width: 2, depth: 2 },
      { optimizer: { step: 5, tensors: optimizerTensors(a.optimizer!) } },
    );
    expect(c.optimizer!.lrScale.get('blocks.0.mlp.fc.weight')!.data).toEqual(
      b.optimizer!.lrScale.get('blocks.0.mlp.fc.weight')!.data,
    );
    c.model.dispose();
    const probe = makeProbe(16, 8);
    const check = await verifyGrowth(m, b.model, probe);
    expect(check.relDeltaLogits).toBeLessThan(1e-5);
    expect(b.optimizer!.step).toBe(5);
    expect(b.optimizer!.lrScale.get('blocks.0.mlp.fc.weight')!.data[0]).toBeCloseTo(0.5, 6); // (1/√2)²
    for (const x of [m, a.model, b.model]) x.dispose();
  });

  it('verifyGrowth measures logits and probe loss', async () => {
    const m = await tinyGPT({ norm: 'pre-ln' });
    const c = await verifyGrowth(m, m, [randomBatch(1).x[0]!]);
    expect(c.maxAbsDeltaLogits).toBe(0);
    expect(c.lossBig).toBe(c.lossSmall);
    expect(c.maxAbsLogit).toBeGreaterThan(0);
    m.dispose();
  });
});

describe('plugin strategies', () => {
  /** A plugin: Pre-LN with a learned per-channel gate on each branch. */
  const gated = defineNorm({
    name: 'test/gated-pre',
    version: '1.0.0',
    description: 'Pre-LN with a per-channel branch gate',
    options: { init: opt.number({ default: 0.5, description: 'gate init' }) },
    createSite(ctx, opts, host) {
      const ln = host.norm('norm');
      const g = host.addWeight('gate', [ctx.dModel], { kind: 'constant', value: opts.init });
      return { forward: (x, branch) => tf.add(x, tf.mul(branch(ln(x) as tf.Tensor2D), g)) as tf.Tensor2D };
    },
    createFinal: (_c, _o, host) => host.norm('norm'),
  });

  it('is refused until it declares its parameters, then grows exactly', async () => {
    registerNorm(gated);
    const m = await tinyGPT({ norm: 'test/gated-pre' });
    let err: unknown;
    try {
      await growModel(m, { width: 2 });
    } catch (e) {
      err = e;
    }
    expect(isStrataError(err) && err.code === 'E_GROWTH').toBe(true);
    expect(String((err as Error).message)).toMatch(/registerGrowthRules/);
    await expect(growModel(m, { depth: 2 })).rejects.toThrow(/no depth rule/);
    // allowApprox: runs (here the shape-based guess happens to be right) and says it was not vouched for
    const guess = await growModel(m, { width: 2, allowApprox: true });
    expect(guess.report.exact).toBe(false);
    guess.model.dispose();
    registerGrowthRules('test/gated-pre', {
      layout: (spec) =>
        spec.name.endsWith('.gate') ? [{ space: 'residual', use: 'mult' }] : residualNormLayout(spec),
      zeroPad: true,
      depth: zeroOutputDepthRule,
    });
    expect(getGrowthRules('test/gated-pre')).toBeDefined();
    const r = await growModel(m, { width: 2, depth: 2, noise: 0.02 });
    expect(r.report.exact).toBe(true);
    expect(r.report.relDeltaLogits).toBeLessThan(1e-5);
    m.dispose();
    r.model.dispose();
  });
});
