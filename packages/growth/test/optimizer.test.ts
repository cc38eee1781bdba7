/**
 * Adam-state growth (growth.md §4, §6.6): with m′ = m/(n·s), v′ = v/(n·s)², the step kept and a per-entry
 * learning-rate multiplier |s|, one AdamW step of the grown model is the small model's step.
 */
import { AdamW, initBackend, type LanguageModel } from '@strata/core';
import { registerNGPT } from '@strata/ngpt';
import { registerBuiltinNorms } from '@strata/norms';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  freshFirstUpdate,
  type GrowthSpec,
  growModel,
  LR_SCALE_PREFIX,
  optimizerTensors,
} from '../src/index.js';
import {
  adamStep,
  cloneState,
  logits,
  lossOn,
  maxAbsDiff,
  randomBatch,
  tinyGPT,
  tinyNGPT,
  zeroState,
} from './helpers.js';

beforeAll(async () => {
  await initBackend('cpu');
  registerBuiltinNorms();
  registerNGPT();
});

const LR = 0.01;

/** Equal to float32 precision. */
function expectRel(a: number, b: number): void {
  expect(Math.abs(a - b)).toBeLessThanOrEqual(2e-7 * Math.abs(b) + 1e-30);
}

async function trained(make: () => Promise<LanguageModel> | LanguageModel, wd: number) {
  const small = await make();
  const state = zeroState(small);
  for (let s = 0; s < 3; s++) await adamStep(small, state, randomBatch(100 + s), { lr: LR, wd });
  return { small, state };
}

const CASES: [string, () => Promise<LanguageModel> | LanguageModel, GrowthSpec][] = [
  ['pre-ln LN, d_model ×2 (isometric)', () => tinyGPT({ norm: 'pre-ln' }), { width: 2 }],
  [
    'pre-ln RMS untied RoPE, d_model ×3',
    () => tinyGPT({ norm: 'pre-ln', normKind: 'rmsnorm', tied: false, positions: 'rope' }),
    { width: 3 },
  ],
  ['subln, d_model ×2 (tile map)', () => tinyGPT({ norm: 'subln' }), { width: 2 }],
  ['post-ln, d_ff ×2', () => tinyGPT({ norm: 'post-ln' }), { ffn: 2 }],
  ['deepnorm, head dim ×2 (q,k × 2^-1/4)', () => tinyGPT({ norm: 'deepnorm', tied: false }), { headDim: 8 }],
  ['admin swiglu, d_model ×2', () => tinyGPT({ norm: 'admin', activation: 'swiglu' }), { width: 2 }],
  ['nGPT, d_model ×2', () => tinyNGPT(), { width: 2 }],
];

describe('one Adam step after growth matches the small model’s step', () => {
  it.each(CASES)('%s', async (_label, make, spec) => {
    const wd = 0.1;
    const { small, state } = await trained(make, wd);
    const r = await growModel(small, spec, { optimizer: state });
    const big = r.model;
    const grown = r.optimizer!;
    expect(grown.step).toBe(3); // the bias-correction step is kept (§6.6b)
    const batch = randomBatch(7);
    const probe = randomBatch(8).x;
    // Same function before the step.
    expect(maxAbsDiff(await logits(small, probe), await logits(big, probe))).toBeLessThan(1e-5);
    const bigPlainState = cloneState(grown);
    const before = await big.params.read();
    await adamStep(small, state, batch, { lr: LR, wd });
    await adamStep(big, grown, batch, { lr: LR, wd, lrScale: grown.lrScale });
    const ls = await lossOn(small, batch);
    const lb = await lossOn(big, batch);
    expect(Math.abs(ls - lb)).toBeLessThan(1e-5 * Math.abs(ls));
    const ds = await logits(small, probe);
    const db = await logits(big, probe);
    expect(maxAbsDiff(ds, db)).toBeLessThan(1e-4);
    // Without the per-entry learning rate the step is larger in function space: the losses differ.
    big.params.assign(before);
    await adamStep(big, bigPlainState, batch, { lr: LR, wd });
    const lp = await lossOn(big, batch);
    expect(Math.abs(lp - ls)).toBeGreaterThan(100 * Math.abs(lb - ls) + 1e-6);
    small.dispose();
    big.dispose();
  });
});

describe('grown optimizer state', () => {
  it('maps each copy’s moments as m/(n·s), v/(n·s)², keeps the step, and zeroes new blocks', async () => {
    const { small, state } = await trained(() => tinyGPT({ norm: 'pre-ln' }), 0);
    const r = await growModel(small, { width: 2, depth: { insertAt: [2] } }, { optimizer: state });
    const g = r.optimizer!;
    // qkv weight [8, 24] → [16, 48]: row c·8+i copies row i with s = 1/√2 (reader), n = 2 (row copies) × 2
    // (head copies) → m′ = m/(4/√2) = m/(2√2); q columns also carry nothing extra (head dim kept).
    const m0 = state.tensors.get('m.blocks.0.attn.qkv.weight')!.data;
    const m1 = g.tensors.get('m.blocks.0.attn.qkv.weight')!.data;
    const w = 1 / (4 / Math.SQRT2);
    for (const [r2, c2, r0, c0] of [
      [0, 0, 0, 0],
      [9, 5, 1, 5],
      [3, 8 + 4, 3, 4], // a duplicated q head (heads 2 → 4: head 2 copies head 0)
      [15, 16 + 8 + 4, 7, 8 + 4], // k part, copied head
    ] as const) {
      expectRel(m1[r2 * 48 + c2]!, m0[r0 * 24 + c0]! * w);
    }
    // LN gains: s = 1/√2, n = 2 → m′ = m/√2; lr multiplier 1/√2.
    const lm0 = state.tensors.get('m.blocks.1.mlp.norm.weight')!.data;
    const lm1 = g.tensors.get('m.blocks.1.mlp.norm.weight')!.data;
    expectRel(lm1[3 + 8]!, lm0[3]! / Math.SQRT2);
    expect(g.lrScale.get('blocks.1.mlp.norm.weight')!.data[3]).toBeCloseTo(1 / Math.SQRT2, 7);
    // The new top block (index 2) starts with zero moments; embedding moments keep their layout.
    expect(g.tensors.get('m.blocks.2.attn.qkv.weight')!.data.every((x) => x === 0)).toBe(true);
    expect(g.tensors.get('v.blocks.2.mlp.proj.weight')!.data.every((x) => x === 0)).toBe(true);
    expect(g.freshEntries).toBeGreaterThan(0);
    expect(r.report.optimizer!.freshFirstUpdate).toBeCloseTo(freshFirstUpdate(3, 0.9, 0.95), 12);
    // Core's AdamW accepts the grown state (extra lr_scale tensors are ignored) and keeps the step.
    const opt = new AdamW(r.model.params);
    opt.importState({ step: g.step, tensors: optimizerTensors(g) });
    expect(opt.step).toBe(3);
    expect([...optimizerTensors(g).keys()].some((k) => k.startsWith(LR_SCALE_PREFIX))).toBe(true);
    opt.dispose();
    small.dispose();
    r.model.dispose();
  });

  it('parameters the optimizer does not update (DeepNorm’s pinned per-layer α) carry no moments', async () => {
    const small = await tinyGPT({ norm: 'deepnorm', normOptions: { perLayerAlpha: true } });
    const adam = new AdamW(small.params);
    const state = await adam.exportState();
    adam.dispose();
    expect(state.tensors.has('m.blocks.0.attn.alpha')).toBe(false);
    const r = await growModel(small, { width: 2, depth: 2 }, { optimizer: state });
    expect(r.report.relDeltaLogits).toBeLessThan(1e-4);
    expect(r.optimizer!.tensors.has('m.blocks.1.attn.alpha')).toBe(false);
    const big = new AdamW(r.model.params);
    big.importState({ step: r.optimizer!.step, tensors: optimizerTensors(r.optimizer!) });
    big.dispose();
    // the new blocks' stored α is the small model's α, pinned
    const a = (await r.model.params.read()).get('blocks.1.attn.alpha')![0]!;
    expect(a).toBeCloseTo(4 ** 0.25, 6);
    small.dispose();
    r.model.dispose();
  });

  it('reports the size of the first update of fresh entries (growth.md §4.3)', () => {
    expect(freshFirstUpdate(10_000, 0.9, 0.999)).toBeCloseTo(3.162, 3);
    expect(freshFirstUpdate(10_000, 0.9, 0.95)).toBeCloseTo(0.4472, 3);
    expect(freshFirstUpdate(0, 0.9, 0.999)).toBeCloseTo(1, 12); // at step 1 bias correction makes it 1
  });

  it('seed-v copies the second moment of the source block into a new block', async () => {
    const { small, state } = await trained(() => tinyGPT({ norm: 'pre-ln' }), 0);
    const r = await growModel(
      small,
      { depth: { insertAt: [1] } },
      { optimizer: state, newMoments: 'seed-v' },
    );
    const v0 = state.tensors.get('v.blocks.0.mlp.fc.weight')!.data;
    const vNew = r.optimizer!.tensors.get('v.blocks.1.mlp.fc.weight')!.data;
    expect(maxAbsDiff(v0, vNew)).toBe(0);
    expect(r.optimizer!.tensors.get('m.blocks.1.mlp.fc.weight')!.data.every((x) => x === 0)).toBe(true);
    // old block 1 is now block 2 with its own moments
    expect(
      maxAbsDiff(
        state.tensors.get('m.blocks.1.mlp.fc.weight')!.data,
        r.optimizer!.tensors.get('m.blocks.2.mlp.fc.weight')!.data,
      ),
    ).toBe(0);
    small.dispose();
    r.model.dispose();
  });
});
