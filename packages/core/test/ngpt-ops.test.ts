/**
 * The fast paths nGPT's ops take on wasm (`l2Normalize`, `normalizedResidual`, `swiGLU`, the q/k normalization
 * of `causalSelfAttention`, `mulLastAxis` with a column-sum gradient) against the tfjs compositions
 * (STRATA_KERNELS off), forward and gradient; and the fused kernels against the compositions of the earlier
 * kernels they replace, bit for bit.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  applyRope,
  causalSelfAttention,
  initBackend,
  l2Normalize,
  mulLastAxis,
  normalizedResidual,
  Rng,
  rmsNorm,
  ropeTables,
  setStrataKernels,
  strataKernelsActive,
  swiGLU,
} from '../src/index.js';
import { qkNormFast } from '../src/kernels/index.js';

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

/** Value and gradients of `sum(f(...xs) ⊙ w)` with Strata's kernels on (no comparison). */
async function withGrads(f: (...xs: tf.Tensor[]) => tf.Tensor, xs: tf.Tensor[], w: tf.Tensor) {
  const g = tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(f(...a), w)));
  const value = (await tf.tidy(() => f(...xs)).data()) as Float32Array;
  const gs = g(xs);
  const grads = await Promise.all(gs.map(async (t) => (await t.data()) as Float32Array));
  tf.dispose(gs);
  return { value, grads };
}

/** Bit-for-bit equality of the value and every gradient of two ways of computing the same function. */
async function expectIdentical(
  fused: (...xs: tf.Tensor[]) => tf.Tensor,
  composed: (...xs: tf.Tensor[]) => tf.Tensor,
  xs: tf.Tensor[],
  w: tf.Tensor,
) {
  expect(strataKernelsActive()).toBe(true);
  const a = await withGrads(fused, xs, w);
  const b = await withGrads(composed, xs, w);
  expect(Array.from(a.value)).toEqual(Array.from(b.value));
  expect(a.grads.length).toBe(xs.length);
  for (const [i, g] of a.grads.entries())
    expect(Array.from(g), `gradient ${i}`).toEqual(Array.from(b.grads[i]!));
}

describe('nGPT fused kernels on wasm: identical to the composition of the previous kernels', () => {
  it('l2Normalize (last axis, one kernel) = RMSNorm(x; ε/n) · (1/√n), the two-kernel path, bit for bit', async () => {
    const x = rnd([37, 6], 11);
    const w = rnd([37, 6], 12);
    await expectIdentical(
      (t) => l2Normalize(t, -1, 1e-8),
      (t) => tf.mul(rmsNorm(t, undefined, 1e-8 / 6), 1 / Math.sqrt(6)),
      [x],
      w,
    );
    tf.dispose([x, w]);
  });

  it('normalizedResidual = Norm(A + α ⊙ (Norm(b) − A)), A = Norm(h), composed of the kernels above, bit for bit', async () => {
    for (const d of [24, 7]) {
      const h = rnd([3, 11, d], 13);
      const b = rnd([3, 11, d], 14);
      const alpha = rnd([d], 15);
      const w = rnd([3, 11, d], 16);
      await expectIdentical(
        (x, y, a) => normalizedResidual(x, y, a, 1e-10),
        (x, y, a) => {
          const A = l2Normalize(x, -1, 1e-10);
          return l2Normalize(tf.add(A, mulLastAxis(tf.sub(l2Normalize(y, -1, 1e-10), A), a)), -1, 1e-10);
        },
        [h, b, alpha],
        w,
      );
      tf.dispose([h, b, alpha, w]);
    }
  });

  it('q/k normalization (one kernel with RoPE) = split → RoPE → Norm per head → × s_qk → concat, bit for bit', async () => {
    for (const [B, T, H, hd] of [
      [2, 5, 3, 8],
      [1, 7, 2, 6],
    ] as const) {
      const d = H * hd;
      const qkv = rnd([B * T, 3 * d], 17);
      const gain = rnd([d], 18);
      const w = rnd([B * T, 3 * d], 19);
      const t = ropeTables(T, hd, 100);
      const cos = tf.tensor2d(t.cos, [T, hd]);
      const sin = tf.tensor2d(t.sin, [T, hd]);
      for (const rope of [{ cos, sin }, undefined]) {
        await expectIdentical(
          (x, g) => qkNormFast(x as tf.Tensor2D, T, H, g as tf.Tensor1D, 1e-9, rope),
          (x, g) => {
            const [q, k, v] = tf.split(x, 3, 1) as [tf.Tensor, tf.Tensor, tf.Tensor];
            const one = (u: tf.Tensor) => {
              let y = tf.reshape(u, [B, T, H, hd]);
              if (rope) y = applyRope(y, tf.reshape(rope.cos, [T, 1, hd]), tf.reshape(rope.sin, [T, 1, hd]));
              return mulLastAxis(tf.reshape(l2Normalize(y, -1, 1e-9), [B * T, d]), g);
            };
            return tf.concat([one(q), one(k), v], 1);
          },
          [qkv, gain],
          w,
        );
      }
      tf.dispose([qkv, gain, w, cos, sin]);
    }
  });
});

describe('nGPT fused kernels on wasm against the tfjs compositions (float32 round-off)', () => {
  it('l2Normalize down the columns of a matrix (the re-projection): one kernel', async () => {
    for (const [r, c] of [
      [24, 37],
      [5, 3],
    ] as const) {
      const x = rnd([r, c], 21);
      const w = rnd([r, c], 22);
      const [fast, slow] = await both((t) => l2Normalize(t, 0, 1e-12), [x], w);
      expect(maxRel(fast.value, slow.value)).toBeLessThan(1e-6);
      expect(maxRel(fast.grads[0]!, slow.grads[0]!)).toBeLessThan(1e-5);
      for (let j = 0; j < c; j++) {
        let s = 0;
        for (let i = 0; i < r; i++) s += fast.value[i * c + j]! ** 2;
        expect(Math.abs(Math.sqrt(s) - 1)).toBeLessThan(1e-6);
      }
      tf.dispose([x, w]);
    }
  });

  it('normalizedResidual', async () => {
    const h = rnd([40, 13], 23);
    const b = rnd([40, 13], 24);
    const alpha = rnd([13], 25);
    const w = rnd([40, 13], 26);
    const [fast, slow] = await both((x, y, a) => normalizedResidual(x, y, a), [h, b, alpha], w);
    expect(maxRel(fast.value, slow.value)).toBeLessThan(1e-6);
    for (const [i, g] of fast.grads.entries())
      expect(maxRel(g, slow.grads[i]!), `gradient ${i}`).toBeLessThan(2e-5);
    expect(() => normalizedResidual(h, b, rnd([5], 27))).toThrow(/must share the last axis/);
    tf.dispose([h, b, alpha, w]);
  });

  for (const scaled of [false, true]) {
    it(`swiGLU${scaled ? ' with per-feature scales' : ''}`, async () => {
      const C = 37; // not a multiple of the SIMD width
      const a = rnd([2, 9, C], 28);
      const g = tf.mul(rnd([2, 9, C], 29), 6); // the sigmoid's range, both tails
      const su = rnd([C], 30);
      const sv = rnd([C], 31);
      const w = rnd([2, 9, C], 32);
      const xs = scaled ? [a, g, su, sv] : [a, g];
      const [fast, slow] = await both((...t) => swiGLU(t[0]!, t[1]!, t[2], t[3]), xs, w);
      expect(maxRel(fast.value, slow.value)).toBeLessThan(2e-6);
      for (const [i, gr] of fast.grads.entries())
        expect(maxRel(gr, slow.grads[i]!), `gradient ${i}`).toBeLessThan(2e-5);
      tf.dispose([a, g, su, sv, w]);
    });
  }

  it('swiGLU rejects mismatched shapes and a single scale', () => {
    const a = rnd([4, 6], 33);
    expect(() => swiGLU(a, rnd([4, 5], 34))).toThrow(/differ in shape/);
    expect(() => swiGLU(a, a, rnd([6], 35))).toThrow(/both upScale and gateScale/);
    expect(() => swiGLU(a, a, rnd([5], 35), rnd([5], 36))).toThrow(/does not match the last axis/);
    a.dispose();
  });

  for (const rope of [true, false])
    it(`causalSelfAttention with nGPT's q/k normalization and softmax scale √d_k${rope ? ', RoPE' : ''}`, async () => {
      const [B, T, H, hd] = [2, 9, 2, 6];
      const d = H * hd;
      const qkv = rnd([B * T, 3 * d], 37);
      const gain = tf.mul(rnd([d], 38), 3);
      const w = rnd([B * T, d], 39);
      const t = ropeTables(T, hd);
      const opts = {
        batch: B,
        seqLen: T,
        heads: H,
        scale: Math.sqrt(hd),
        ...(rope ? { rope: { cos: tf.tensor2d(t.cos, [T, hd]), sin: tf.tensor2d(t.sin, [T, hd]) } } : {}),
      };
      const [fast, slow] = await both(
        (x, g) => causalSelfAttention(x as tf.Tensor2D, { ...opts, qkNorm: { gain: g, eps: 1e-12 } }),
        [qkv, gain],
        w,
      );
      expect(maxRel(fast.value, slow.value)).toBeLessThan(2e-6);
      for (const [i, g] of fast.grads.entries())
        expect(maxRel(g, slow.grads[i]!), `gradient ${i}`).toBeLessThan(5e-5);
      // deterministic, and the scale is applied (the default 1/√d_k gives other outputs)
      const other = await tf
        .tidy(() => causalSelfAttention(qkv as tf.Tensor2D, { ...opts, qkNorm: { gain, eps: 1e-12 } }))
        .data();
      expect(Array.from(other)).toEqual(Array.from(fast.value));
      const unscaled = await tf
        .tidy(() =>
          causalSelfAttention(qkv as tf.Tensor2D, {
            ...opts,
            scale: undefined,
            qkNorm: { gain, eps: 1e-12 },
          }),
        )
        .data();
      expect(maxRel(unscaled as Float32Array, fast.value)).toBeGreaterThan(1e-3);
      expect(() =>
        causalSelfAttention(qkv as tf.Tensor2D, { ...opts, qkNorm: { gain: rnd([d + 1], 40), eps: 1e-12 } }),
      ).toThrow(/qkNorm.gain of shape/);
      tf.dispose([qkv, gain, w, opts.rope?.cos, opts.rope?.sin].filter((x) => x) as tf.Tensor[]);
    });
});
