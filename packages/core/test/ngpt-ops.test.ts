/**
 * The fast paths nGPT's ops take on wasm (`l2Normalize` through the fused RMSNorm kernel, `mulLastAxis` with a
 * column-sum gradient) against the tfjs compositions (STRATA_KERNELS off), forward and gradient.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  initBackend,
  l2Normalize,
  mulLastAxis,
  Rng,
  setStrataKernels,
  strataKernelsActive,
} from '../src/index.js';

beforeAll(async () => {
  await initBackend('wasm');
});
afterAll(() => setStrataKernels(true));

const rnd = (shape: number[], seed: number) => {
  const r = new Rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: n }, () => r.next() * 2 - 1),
    shape,
  );
};

/** Value and gradients of `sum(f(...xs) ⊙ w)` with Strata's kernels on, then off. */
async function both(f: (...xs: tf.Tensor[]) => tf.Tensor, xs: tf.Tensor[], w: tf.Tensor) {
  const out: { value: Float32Array; grads: Float32Array[] }[] = [];
  for (const on of [true, false]) {
    setStrataKernels(on);
    expect(strataKernelsActive()).toBe(on);
    const g = tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(f(...a), w)));
    const value = (await tf.tidy(() => f(...xs)).data()) as Float32Array;
    const gs = g(xs);
    out.push({ value, grads: await Promise.all(gs.map(async (t) => (await t.data()) as Float32Array)) });
    tf.dispose(gs);
  }
  setStrataKernels(true);
  return out as [(typeof out)[0], (typeof out)[0]];
}

const maxRel = (a: Float32Array, b: Float32Array) => {
  let scale = 0;
  let d = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]!));
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
  }
  return d / scale;
};

describe('nGPT fast paths on wasm', () => {
  for (const shape of [
    [37, 24],
    [2, 5, 3, 8],
  ]) {
    it(`l2Normalize over the last axis [${shape}]: fused RMSNorm = the composition (float32 round-off)`, async () => {
      const x = rnd(shape, 1);
      const w = rnd(shape, 2);
      const [fast, slow] = await both((t) => l2Normalize(t, -1, 1e-12), [x], w);
      expect(maxRel(fast.value, slow.value)).toBeLessThan(1e-6);
      expect(maxRel(fast.grads[0]!, slow.grads[0]!)).toBeLessThan(1e-5);
      // rows are unit vectors
      const n = shape.at(-1)!;
      for (let r = 0; r < fast.value.length / n; r++) {
        let s = 0;
        for (let j = 0; j < n; j++) s += fast.value[r * n + j]! ** 2;
        expect(Math.abs(Math.sqrt(s) - 1)).toBeLessThan(1e-6);
      }
      tf.dispose([x, w]);
    });
  }

  it('mulLastAxis: value and x-gradient are tf.mul’s exactly; the scale gradient equals the reduction', async () => {
    const x = rnd([64, 5, 40], 3);
    const s = rnd([40], 4);
    const w = rnd([64, 5, 40], 5);
    const [fast, slow] = await both((a, b) => mulLastAxis(a, b), [x, s], w);
    expect(Array.from(fast.value)).toEqual(Array.from(slow.value));
    expect(Array.from(fast.grads[0]!)).toEqual(Array.from(slow.grads[0]!));
    expect(maxRel(fast.grads[1]!, slow.grads[1]!)).toBeLessThan(1e-5);
    // and against tf.mul's own broadcast gradient
    const ref = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.mul(a, b), w)))([x, s]);
    expect(maxRel(fast.grads[1]!, (await ref[1]!.data()) as Float32Array)).toBeLessThan(1e-5);
    expect(() => mulLastAxis(x, rnd([5], 6))).toThrow(/does not match the last axis/);
    tf.dispose([x, s, w, ...ref]);
  });
});
