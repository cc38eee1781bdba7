import { crossEntropy } from '@strata/core';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import type { NGPT } from '../src/index.js';
import { idsTensor, maxAbsDiff, randomIds, randomizeScales, setup, tinyModel } from './helpers.js';
import { refForward, refLoss, type Weights } from './reference.js';

beforeAll(setup);

async function weightsOf(model: NGPT): Promise<Weights> {
  return (await model.params.read()) as Weights;
}

describe('nGPT forward vs an independent float64 reference', () => {
  for (const alphaAbs of [true, false]) {
    it(`matches on a tiny config (alphaAbs ${alphaAbs}, random scales) to 1e-4`, async () => {
      const model = tinyModel({ alphaAbs });
      randomizeScales(model, { signed: true });
      const ids = randomIds(2, 7, 11, 5);
      const x = idsTensor(ids);
      const { logits, hidden } = model.forwardWithHidden(x);
      const ref = refForward(model.config, await weightsOf(model), ids);
      expect(maxAbsDiff(await logits.data(), ref.logits.flat(2))).toBeLessThan(1e-4);
      expect(hidden.length).toBe(2 * model.config.nLayers + 1);
      for (let k = 0; k < hidden.length; k++) {
        const refK = ref.hidden.map((seq) => seq[k]!).flat(2);
        expect(maxAbsDiff(await hidden[k]!.data(), refK)).toBeLessThan(1e-5);
      }
      tf.dispose([x, logits, ...hidden]);
      model.dispose();
    });
  }

  it('at init: attention scores within ±√d_k, logits within ±1 (cosines, s_z = 1)', async () => {
    const model = tinyModel();
    const ids = randomIds(2, 8, 11, 9);
    const x = idsTensor(ids);
    const logits = model.forward(x);
    const ref = refForward(model.config, await weightsOf(model), ids);
    expect(ref.maxAbsScore).toBeLessThanOrEqual(Math.sqrt(4) + 1e-9);
    const l = await logits.data();
    expect(Math.max(...Array.from(l, Math.abs))).toBeLessThanOrEqual(1 + 1e-6);
    expect(maxAbsDiff(l, ref.logits.flat(2))).toBeLessThan(1e-5);
    tf.dispose([x, logits]);
    model.dispose();
  });
});

describe('gradients vs central finite differences of the float64 reference', () => {
  // The tfjs gradient is computed in float32; the finite differences in float64 (h = 1e-6: truncation
  // O(h²) ≈ 1e-12, round-off ≈ 1e-16/h ≈ 1e-10) on exactly the same float32 weights, so the difference
  // measures only tfjs's float32 round-off: ≈ 6e-8 relative per op, accumulated over a few dozen ops and
  // sums of ≤ 3d terms, i.e. ~1e-6 of the gradient's scale (measured: ≤ 1.4e-7 absolute with max|g| ≈ 0.2).
  // Tolerance per entry: 2e-7 + 2e-5 · max|g| of that parameter, ~30× the measured error and far
  // below what a wrong formula gives (an error of the order of |g| itself).
  for (const alphaAbs of [true, false]) {
    it(`every parameter, a few entries each (alphaAbs ${alphaAbs})`, async () => {
      const model = tinyModel({ alphaAbs });
      randomizeScales(model, { signed: !alphaAbs, seed: 11 });
      const ids = randomIds(2, 6, 11, 21);
      const targets = randomIds(2, 6, 11, 22);
      const x = idsTensor(ids);
      const y = tf.tensor1d(targets.flat(), 'int32');
      const vars = model.params.variables();
      const { value, grads } = tf.variableGrads(
        () => crossEntropy(tf.reshape(model.forward(x), [-1, 11]) as tf.Tensor2D, y),
        vars.map(([, v]) => v),
      );
      const base = await weightsOf(model);
      const W = new Map<string, Float64Array>(
        [...base].map(([k, v]) => [k, Float64Array.from(v as Float32Array)]),
      );
      const lossRef = refLoss(refForward(model.config, W, ids).logits, targets);
      expect(Math.abs((await value.data())[0]! - lossRef)).toBeLessThan(1e-5);
      const h = 1e-6;
      let checked = 0;
      let worst = 0;
      for (const [name, v] of vars) {
        const g = (await grads[v.name]!.data()) as Float32Array;
        let am = 0;
        for (let k = 1; k < g.length; k++) if (Math.abs(g[k]!) > Math.abs(g[am]!)) am = k;
        const gMax = Math.abs(g[am]!);
        const arr = W.get(name)!;
        // the entry with the largest gradient plus three fixed ones
        const idx = new Set([am, 0, arr.length >> 1, arr.length - 1]);
        for (const i of idx) {
          const old = arr[i]!;
          arr[i] = old + h;
          const lp = refLoss(refForward(model.config, W, ids).logits, targets);
          arr[i] = old - h;
          const lm = refLoss(refForward(model.config, W, ids).logits, targets);
          arr[i] = old;
          const fd = (lp - lm) / (2 * h);
          const err = Math.abs(fd - g[i]!);
          const tol = 2e-7 + 2e-5 * gMax;
          worst = Math.max(worst, err / tol);
          if (err > tol)
            throw new Error(`${name}[${i}]: tfjs ${g[i]} vs finite difference ${fd} (|Δ| ${err} > ${tol})`);
          checked++;
        }
      }
      console.log(
        `alphaAbs ${alphaAbs}: ${checked} entries checked, worst error/tolerance ${worst.toFixed(3)}`,
      );
      expect(checked).toBeGreaterThan(3 * 20);
      expect(worst).toBeLessThan(1);
      tf.dispose([x, y, value, ...Object.values(grads)]);
      model.dispose();
    });
  }
});
