/**
 * Schedule phases (continued training after growth: re-warm + a fresh cosine over the steps left) and the
 * lifetime of growth's per-entry learning-rate multipliers.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  AdamW,
  type Batch,
  type BatchSource,
  initBackend,
  learningRateAt,
  lrScaleLifetime,
  lrScaleWeightAt,
  type OptimizerState,
  parseTrainConfig,
  Trainer,
} from '../src/index.js';
import { tinyGPT } from './helpers.js';

beforeAll(async () => {
  await initBackend('cpu');
});

describe('schedule phases', () => {
  const s = { lr: 1, minLr: 0.1, warmupSteps: 10, totalSteps: 110, decay: 'cosine' as const };
  it('a phase re-warms from its start and decays over the steps left (closed form)', () => {
    const p = { ...s, phaseStart: 50 };
    expect(learningRateAt(50, p)).toBeCloseTo(0.1, 12); // first update of the phase: lr·1/10
    expect(learningRateAt(59, p)).toBeCloseTo(1, 12); // end of the re-warm
    // decay span 110 − 50 − 10 = 50: halfway at 60 + 25
    expect(learningRateAt(85, p)).toBeCloseTo(0.55, 12);
    expect(learningRateAt(110, p)).toBeCloseTo(0.1, 12);
    // phaseStart 0 is the plain schedule
    for (const t of [0, 5, 9, 10, 60, 109])
      expect(learningRateAt(t, { ...s, phaseStart: 0 })).toBe(learningRateAt(t, s));
  });

  it('multiplier weight: 1 at the phase start, linear to 0 after the lifetime, 1 for keep', () => {
    expect(lrScaleWeightAt(10, 10, 4)).toBe(1);
    expect(lrScaleWeightAt(12, 10, 4)).toBe(0.5);
    expect(lrScaleWeightAt(14, 10, 4)).toBe(0);
    expect(lrScaleWeightAt(99, 10, 4)).toBe(0);
    expect(lrScaleWeightAt(10, 10, 0)).toBe(0);
    expect(lrScaleWeightAt(1e6, 10, 'keep')).toBe(1);
    expect(lrScaleLifetime({ lrScaleSteps: 'warmup', warmupSteps: 7 })).toBe(7);
    expect(lrScaleLifetime({ lrScaleSteps: 'keep', warmupSteps: 7 })).toBe('keep');
  });

  it('validates the new fields, naming them', () => {
    expect(() => parseTrainConfig({ steps: 10, phaseStart: 11 })).toThrow(/train\.phaseStart/);
    expect(() => parseTrainConfig({ lrScaleSteps: 'later' })).toThrow(/train\.lrScaleSteps/);
    expect(() => parseTrainConfig({ lrScaleSteps: -1 })).toThrow(/train\.lrScaleSteps/);
    expect(parseTrainConfig({}).lrScaleSteps).toBe('warmup');
    expect(parseTrainConfig({ lrScaleSteps: 12 }).lrScaleSteps).toBe(12);
  });
});

/** An optimizer state of zero moments with a multiplier `s` on every entry of every parameter. */
function stateWithScale(m: ReturnType<typeof tinyGPT>, s: number): OptimizerState {
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const spec of m.params.specs()) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    for (const k of ['m', 'v'])
      tensors.set(`${k}.${spec.name}`, { shape: [...spec.shape], data: new Float32Array(n) });
    tensors.set(`lr_scale.${spec.name}`, { shape: [...spec.shape], data: new Float32Array(n).fill(s) });
  }
  return { step: 0, tensors };
}

async function paramsAfterOneStep(scale: number, weight: number): Promise<Map<string, Float32Array>> {
  const m = tinyGPT();
  const opt = new AdamW(m.params, { weightDecay: 0 });
  opt.importState(stateWithScale(m, scale));
  const grads = new Map(
    m.params
      .variables()
      .map(([n, v]) => [n, tf.randomNormal(v.shape, 0, 1, 'float32', 5)] as [string, tf.Tensor]),
  );
  opt.apply(grads, 0.01, 1, weight);
  const out = await m.params.read();
  for (const g of grads.values()) g.dispose();
  opt.dispose();
  m.dispose();
  return new Map([...out].map(([k, v]) => [k, Float32Array.from(v)]));
}

describe('AdamW multiplier weight', () => {
  it('weight w applies 1 + (s − 1)·w: the same step as a stored multiplier of that value', async () => {
    const half = await paramsAfterOneStep(0.4, 0.5);
    const stored = await paramsAfterOneStep(0.7, 1); // 1 + (0.4 − 1)·0.5
    const none = await paramsAfterOneStep(0.4, 0);
    const plain = await paramsAfterOneStep(1, 1);
    let d1 = 0;
    let d0 = 0;
    let gap = 0;
    for (const [k, v] of half) {
      const a = stored.get(k)!;
      const b = none.get(k)!;
      const c = plain.get(k)!;
      for (let i = 0; i < v.length; i++) {
        d1 = Math.max(d1, Math.abs(v[i]! - a[i]!));
        d0 = Math.max(d0, Math.abs(b[i]! - c[i]!));
        gap = Math.max(gap, Math.abs(v[i]! - c[i]!));
      }
    }
    expect(d1).toBeLessThan(1e-6);
    expect(d0).toBeLessThan(1e-6); // weight 0: the multipliers are ignored
    expect(gap).toBeGreaterThan(1e-3); // and they do matter at weight ½
  });
});

class ConstSource implements BatchSource {
  trainBatch(step: number, batchSize: number, seqLen: number): Batch {
    const x = new Int32Array(batchSize * seqLen).map((_, i) => (i * 7 + step) % 13);
    return { x, y: x.map((v) => (v + 1) % 13) };
  }
  valBatches(batchSize: number, seqLen: number, n: number): Batch[] {
    return Array.from({ length: n }, (_, i) => this.trainBatch(1000 + i, batchSize, seqLen));
  }
}

describe('Trainer phase', () => {
  it('re-warms from phaseStart and drops the multipliers when their lifetime ends', async () => {
    const m = tinyGPT();
    const config = parseTrainConfig(
      { steps: 20, batchSize: 2, seqLen: 8, lr: 1e-2, minLr: 1e-3, warmupSteps: 3, phaseStart: 10 },
      8,
    );
    const t = new Trainer(m, new ConstSource(), config, {
      optimizer: { ...stateWithScale(m, 0.5), step: 10 },
      state: { step: 10, trainSeconds: 0, skippedSteps: 0 },
    });
    const lrs: number[] = [];
    const carried: boolean[] = [];
    for (let i = 0; i < 5; i++) {
      lrs.push((await t.step()).lr);
      carried.push(
        [...(await t.optimizer.exportState()).tensors.keys()].some((k) => k.startsWith('lr_scale.')),
      );
    }
    expect(lrs[0]).toBeCloseTo(1e-2 / 3, 12); // re-warm: step 10 is the phase's first
    expect(lrs[2]).toBeCloseTo(1e-2, 12);
    expect(lrs[3]).toBeCloseTo(1e-2, 12); // fresh cosine over steps 13 … 20
    expect(lrs[4]).toBeCloseTo(1e-3 + 0.5 * 9e-3 * (1 + Math.cos(Math.PI / 7)), 12);
    // lifetime = the re-warm (3 steps): weights 1, ⅔, ⅓, then 0 — dropped from the state at step 13
    expect(carried).toEqual([true, true, true, false, false]);
    t.dispose();
    m.dispose();
  });

  it('keep: the multipliers stay in every later state', async () => {
    const m = tinyGPT();
    const config = parseTrainConfig(
      { steps: 4, batchSize: 2, seqLen: 8, warmupSteps: 1, lrScaleSteps: 'keep' },
      8,
    );
    const t = new Trainer(m, new ConstSource(), config, { optimizer: stateWithScale(m, 0.5) });
    for (let i = 0; i < 4; i++) await t.step();
    expect([...(await t.optimizer.exportState()).tensors.keys()].some((k) => k.startsWith('lr_scale.'))).toBe(
      true,
    );
    t.dispose();
    m.dispose();
  });
});
