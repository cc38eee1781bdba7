/**
 * The nGPT training step against NVIDIA's, through a float64 reference with a hand-written backward pass
 * (`reference-step.ts`): gradients, the input-embedding gradient's radial part, and whole optimizer steps
 * of Strata's trainer (nGPT's AdamW settings, clipping, re-projection) compared weight by weight.
 */
import { type Batch, type BatchSource, crossEntropy, parseTrainConfig, Trainer } from '@strata/core';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { type NGPT, NGPT_TRAINING_DEFAULTS } from '../src/index.js';
import { idsTensor, randomIds, randomizeScales, setup, tinyModel } from './helpers.js';
import {
  type AdamState,
  getLr,
  lossAndGrads,
  type NvModel,
  referenceStep,
  tensorsOf,
  toNvidia,
  toStrata,
  zerosLike,
} from './reference-step.js';

beforeAll(setup);

async function weights64(model: NGPT): Promise<Map<string, Float64Array>> {
  const w = await model.params.read();
  return new Map([...w].map(([k, v]) => [k, Float64Array.from(v as Float32Array)]));
}

/** tfjs gradients of the mean next-token loss, by parameter name. */
async function tfjsGrads(model: NGPT, ids: number[][], targets: number[][]) {
  const V = model.config.vocabSize;
  const x = idsTensor(ids);
  const y = tf.tensor1d(targets.flat(), 'int32');
  const vars = model.params.variables();
  const { value, grads } = tf.variableGrads(
    () => crossEntropy(tf.reshape(model.forward(x), [-1, V]) as tf.Tensor2D, y),
    vars.map(([, v]) => v),
  );
  const out = new Map<string, Float32Array>();
  for (const [name, v] of vars) out.set(name, (await grads[v.name]!.data()) as Float32Array);
  const loss = (await value.data())[0]!;
  tf.dispose([x, y, value, ...Object.values(grads)]);
  return { loss, grads: out };
}

/** Row-wise radial part of an embedding gradient: max over rows r with g_r ≠ 0 of |⟨g_r, e_r⟩| / ‖g_r‖. */
function radial(E: ArrayLike<number>, g: ArrayLike<number>, d: number): number {
  let worst = 0;
  for (let r = 0; r < E.length / d; r++) {
    let dot = 0;
    let gg = 0;
    let ee = 0;
    for (let j = 0; j < d; j++) {
      dot += E[r * d + j]! * g[r * d + j]!;
      gg += g[r * d + j]! ** 2;
      ee += E[r * d + j]! ** 2;
    }
    if (gg > 0) worst = Math.max(worst, Math.abs(dot) / Math.sqrt(gg * ee));
  }
  return worst;
}

describe('the float64 reference’s hand-written backward pass', () => {
  for (const alphaAbs of [true, false]) {
    it(`equals central finite differences of its own forward pass, every entry (alphaAbs ${alphaAbs})`, async () => {
      const model = tinyModel({ alphaAbs });
      randomizeScales(model, { signed: !alphaAbs, seed: 5 });
      const cfg = model.config;
      const ids = randomIds(2, 6, 11, 31);
      const targets = randomIds(2, 6, 11, 32);
      const W = toNvidia(cfg, await weights64(model));
      const { grads } = lossAndGrads(cfg, W, ids, targets);
      const ws = tensorsOf(W);
      const gs = tensorsOf(grads);
      // float64, h = 1e-5: truncation O(h²·f‴) ≈ 1e-10, round-off ≈ 1e-16/h ≈ 1e-11.
      const h = 1e-5;
      let worst = 0;
      let n = 0;
      ws.forEach(({ t }, k) => {
        const g = gs[k]!.t;
        const gMax = Math.max(...Array.from(g, Math.abs));
        for (let i = 0; i < t.length; i++) {
          const old = t[i]!;
          t[i] = old + h;
          const lp = lossAndGrads(cfg, W, ids, targets, true).loss;
          t[i] = old - h;
          const lm = lossAndGrads(cfg, W, ids, targets, true).loss;
          t[i] = old;
          const fd = (lp - lm) / (2 * h);
          const tol = 1e-9 + 1e-6 * gMax;
          worst = Math.max(worst, Math.abs(fd - g[i]!) / tol);
          n++;
        }
      });
      expect(n).toBeGreaterThan(1000);
      expect(worst).toBeLessThan(1);
      model.dispose();
    });
  }
});

describe('nGPT gradients match NVIDIA’s block (float64 reference)', () => {
  for (const alphaAbs of [true, false]) {
    it(`every gradient entry, to float32 round-off (alphaAbs ${alphaAbs})`, async () => {
      const model = tinyModel({ alphaAbs });
      randomizeScales(model, { signed: !alphaAbs, seed: 13 });
      const cfg = model.config;
      const ids = randomIds(2, 7, 11, 41);
      const targets = randomIds(2, 7, 11, 42);
      const { loss, grads } = await tfjsGrads(model, ids, targets);
      const ref = lossAndGrads(cfg, toNvidia(cfg, await weights64(model)), ids, targets);
      expect(Math.abs(loss - ref.loss)).toBeLessThan(1e-5);
      const refG = toStrata(cfg, ref.grads);
      // float32 round-off in tfjs: ~1e-6 of a parameter's largest gradient (see reference.test.ts).
      for (const [name, g] of grads) {
        const r = refG.get(name)!;
        const gMax = Math.max(...Array.from(r, Math.abs));
        for (let i = 0; i < g.length; i++) {
          const tol = 2e-7 + 2e-5 * gMax;
          if (Math.abs(g[i]! - r[i]!) > tol)
            throw new Error(`${name}[${i}]: tfjs ${g[i]} vs reference ${r[i]} (tolerance ${tol})`);
        }
      }
      model.dispose();
    });
  }

  it('the input-embedding gradient has no radial component (each row’s gradient ⟂ the row)', async () => {
    // Each sequence repeats one token, so scaling an embedding row scales every input of that sequence:
    // q and k are normalized, h_A scales with v and is normalized, and NVIDIA's block normalizes the stream
    // before the interpolation. The loss is then invariant to the row's length, and its gradient is tangent.
    // (Strata's earlier block, `Norm(h + α(Norm(h_A) − h))`, is not invariant: its radial part was ≈ 1e-2.)
    const model = tinyModel();
    randomizeScales(model, { seed: 17 });
    const cfg = model.config;
    const ids = [Array(7).fill(3), Array(7).fill(8), Array(7).fill(5)];
    const targets = randomIds(3, 7, 11, 43);
    const { grads } = await tfjsGrads(model, ids, targets);
    const E = (await model.params.get('tok_emb.weight').data()) as Float32Array;
    const g = grads.get('tok_emb.weight')!;
    expect(radial(E, g, cfg.dModel)).toBeLessThan(2e-6);
    // and the reference agrees that it is zero (to float64 round-off)
    const ref = lossAndGrads(cfg, toNvidia(cfg, await weights64(model)), ids, targets);
    expect(radial(E, ref.grads.wte, cfg.dModel)).toBeLessThan(1e-12);
    // On general text the value path (v is not normalized, and mixes positions) leaves a small radial part
    // in NVIDIA's block too; Strata's equals the reference's there as well.
    const mixedIds = randomIds(2, 7, 11, 44);
    const mixed = await tfjsGrads(model, mixedIds, targets.slice(0, 2));
    const refMixed = lossAndGrads(cfg, toNvidia(cfg, await weights64(model)), mixedIds, targets.slice(0, 2));
    const d = cfg.dModel;
    const gm = mixed.grads.get('tok_emb.weight')!;
    for (let r = 0; r < cfg.vocabSize; r++) {
      let a = 0;
      let b = 0;
      let gn = 0;
      for (let j = 0; j < d; j++) {
        a += E[r * d + j]! * gm[r * d + j]!;
        b += E[r * d + j]! * refMixed.grads.wte[r * d + j]!;
        gn += refMixed.grads.wte[r * d + j]! ** 2;
      }
      expect(Math.abs(a - b)).toBeLessThanOrEqual(1e-6 * Math.sqrt(gn) + 1e-9);
    }
    model.dispose();
  });
});

/** A batch source that returns the same batch every step. */
function fixedBatches(ids: number[][], targets: number[][]): BatchSource {
  const batch: Batch = { x: Int32Array.from(ids.flat()), y: Int32Array.from(targets.flat()) };
  return {
    trainBatch: () => batch,
    valBatches: () => [batch],
  };
}

describe('whole optimizer steps equal NVIDIA’s training step (float64 reference)', () => {
  for (const [alphaAbs, accum] of [
    [true, 1],
    [false, 1],
    [true, 2],
  ] as const) {
    it(`Strata's Trainer (nGPT's AdamW settings, clipping, re-projection): 3 steps, every weight (alphaAbs ${alphaAbs}, ${accum} micro-batch${accum > 1 ? 'es' : ''})`, async () => {
      const model = tinyModel({ alphaAbs });
      randomizeScales(model, { signed: !alphaAbs, seed: 23 });
      const cfg = model.config;
      const B = 2;
      const T = 7;
      const ids = randomIds(B, T, 11, 51);
      const targets = randomIds(B, T, 11, 52);
      const steps = 3;
      const lr = 1e-2;
      const training = parseTrainConfig(
        { ...NGPT_TRAINING_DEFAULTS, lr, steps, batchSize: B / accum, gradAccum: accum, seqLen: T },
        cfg.contextLength,
      );
      const trainer = new Trainer(model, fixedBatches(ids, targets), training);
      const W: NvModel = toNvidia(cfg, await weights64(model));
      const state: AdamState = { m: zerosLike(W), v: zerosLike(W), step: 0 };
      const s = {
        learningRate: lr,
        maxIters: steps,
        minLr: 0,
        warmupIters: 0,
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-8,
        weightDecay: 0,
        gradClip: 1,
      };
      // Adam's first step is lr·g/(|g| + ε): an entry whose gradient is within float32 round-off of 0 could
      // take a step of either sign. Check that this batch has none (exact zeros, e.g. unused embedding rows,
      // are exact in both).
      const g0 = lossAndGrads(cfg, W, ids, targets).grads;
      let smallest = Number.POSITIVE_INFINITY;
      for (const { t } of tensorsOf(g0))
        for (const x of t) if (x !== 0) smallest = Math.min(smallest, Math.abs(x));
      expect(smallest).toBeGreaterThan(1e-6);
      let worst = 0;
      for (let it = 0; it < steps; it++) {
        const m = await trainer.step();
        const r = referenceStep(cfg, W, state, ids, targets, it, s);
        expect(m.lr).toBeCloseTo(getLr(it, s), 12);
        expect(Math.abs(m.loss - r.loss)).toBeLessThan(1e-5);
        expect(Math.abs(m.gradNorm - r.gradNorm) / r.gradNorm).toBeLessThan(1e-5);
        const after = await weights64(model);
        const ref = toStrata(cfg, W);
        for (const [name, w] of after) {
          const rw = ref.get(name)!;
          for (let i = 0; i < w.length; i++) {
            // A float32 weight after a step of size ≤ lr·(1 + round-off): 1e-6 absolute is ~10 float32 ulps
            // of a unit-vector entry plus the update's round-off (measured ≲ 2e-7).
            const err = Math.abs(w[i]! - rw[i]!) / (1e-6 * Math.max(1, Math.abs(rw[i]!)));
            worst = Math.max(worst, err);
            if (err > 1)
              throw new Error(`step ${it + 1}, ${name}[${i}]: Strata ${w[i]} vs reference ${rw[i]}`);
          }
        }
      }
      console.log(`alphaAbs ${alphaAbs}: worst |Δw| / tolerance over ${steps} steps ${worst.toFixed(3)}`);
      trainer.dispose();
      model.dispose();
    });
  }
});
