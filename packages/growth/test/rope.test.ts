/**
 * RoPE with head-dim growth (growth.md §3.6, §3.0 rows 6–7): duplicated rotation pairs are exact only if both
 * copies rotate at the small model's frequency. These tests check the pair layout growth produces against an
 * independent repeated table (written here, not core's `ropeTables(…, repeat)`), at the level of one attention
 * head, and end to end through the GPT config's `ropeRepeat`.
 */
import { applyRope, initBackend, Rng, ropeTables } from '@strata/core';
import { registerBuiltinNorms } from '@strata/norms';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { growModel, headFeatureSource } from '../src/index.js';
import { tinyGPT } from './helpers.js';

beforeAll(async () => {
  await initBackend('cpu');
  registerBuiltinNorms();
});

/**
 * The proposed core table: pair p of a head of dim `headDim` rotates at base^(−2·(p mod P)/(headDim/r)),
 * P = headDim/(2r): the small head's frequencies repeated r times (r = 1 is the standard table).
 */
function repeatedRopeTables(seqLen: number, headDim: number, base: number, repeat: number) {
  const half = headDim / 2;
  const period = half / repeat;
  const cos = new Float32Array(seqLen * headDim);
  const sin = new Float32Array(seqLen * headDim);
  for (let t = 0; t < seqLen; t++) {
    for (let j = 0; j < half; j++) {
      const angle = t * base ** ((-2 * (j % period)) / (headDim / repeat));
      for (const jj of [j, j + half]) {
        cos[t * headDim + jj] = Math.cos(angle);
        sin[t * headDim + jj] = Math.sin(angle);
      }
    }
  }
  return { cos, sin };
}

/** Scaled dot-product scores of one head with RoPE: `[T, T]`. */
function scores(
  q: Float32Array,
  k: Float32Array,
  T: number,
  hd: number,
  tables: { cos: Float32Array; sin: Float32Array },
) {
  return tf.tidy(() => {
    const cos = tf.tensor2d(tables.cos, [T, hd]);
    const sin = tf.tensor2d(tables.sin, [T, hd]);
    const rq = applyRope(tf.tensor2d(q, [T, hd]), cos, sin);
    const rk = applyRope(tf.tensor2d(k, [T, hd]), cos, sin);
    return tf.mul(tf.matMul(rq as tf.Tensor2D, rk as tf.Tensor2D, false, true), 1 / Math.sqrt(hd)).dataSync();
  });
}

describe('RoPE pair-aware repetition', () => {
  const T = 7;
  const hd = 8;
  const rng = Rng.derive(5, 'rope');
  const q = rng.normalArray(T * hd);
  const k = rng.normalArray(T * hd);
  let small: Float32Array | Int32Array | Uint8Array = new Float32Array(0);
  beforeAll(() => {
    small = scores(q, k, T, hd, ropeTables(T, hd, 10000));
  });

  function grow(x: Float32Array, b: number): Float32Array {
    const hd2 = hd * b;
    const out = new Float32Array(T * hd2);
    for (let t = 0; t < T; t++)
      for (let p = 0; p < hd2; p++)
        out[t * hd2 + p] = x[t * hd + headFeatureSource(p, hd, b, true)]! * b ** -0.25;
    return out;
  }

  it.each([2, 3, 4])('head dim ×%i with the repeated table reproduces the scores', (b) => {
    const big = scores(grow(q, b), grow(k, b), T, hd * b, repeatedRopeTables(T, hd * b, 10000, b));
    let d = 0;
    for (let i = 0; i < small.length; i++) d = Math.max(d, Math.abs(small[i]! - big[i]!));
    expect(d).toBeLessThan(1e-5);
  });

  it('the repeated table with r = 1 is core’s standard table', () => {
    const a = repeatedRopeTables(T, hd, 10000, 1);
    const s = ropeTables(T, hd, 10000);
    let d = 0;
    for (let i = 0; i < a.cos.length; i++)
      d = Math.max(d, Math.abs(a.cos[i]! - s.cos[i]!), Math.abs(a.sin[i]! - s.sin[i]!));
    expect(d).toBeLessThan(1e-6);
  });

  it('growing twice composes: ×2 then ×2 is the table repeated 4×', () => {
    const twice = (x: Float32Array) => {
      const once = grow(x, 2); // head dim 16
      const out = new Float32Array(T * 32);
      for (let t = 0; t < T; t++)
        for (let p = 0; p < 32; p++)
          out[t * 32 + p] = once[t * 16 + headFeatureSource(p, 16, 2, true)]! * 2 ** -0.25;
      return out;
    };
    const big = scores(twice(q), twice(k), T, 32, repeatedRopeTables(T, 32, 10000, 4));
    let d = 0;
    for (let i = 0; i < small.length; i++) d = Math.max(d, Math.abs(small[i]! - big[i]!));
    expect(d).toBeLessThan(1e-5);
  });

  it('negative control: the standard table of the grown head dim breaks it (row 7)', () => {
    const big = scores(grow(q, 2), grow(k, 2), T, hd * 2, ropeTables(T, hd * 2, 10000));
    let d = 0;
    for (let i = 0; i < small.length; i++) d = Math.max(d, Math.abs(small[i]! - big[i]!));
    expect(d).toBeGreaterThan(0.1);
  });

  it('negative control: position 0 alone cannot see the bug (RoPE is the identity there)', () => {
    const big = scores(grow(q, 2), grow(k, 2), T, hd * 2, ropeTables(T, hd * 2, 10000));
    expect(Math.abs(small[0]! - big[0]!)).toBeLessThan(1e-5); // score (0, 0)
  });
});

describe('end to end', () => {
  it('head dim ×2 with RoPE is exact (the grown config repeats the small head’s frequencies)', async () => {
    const small = await tinyGPT({ norm: 'pre-ln', positions: 'rope' });
    const r = await growModel(small, { headDim: 8, width: 2 });
    expect(r.report.exactness).toBe('exact');
    expect(r.report.relDeltaLogits).toBeLessThan(1e-5);
    expect((r.model.config as { ropeRepeat?: number }).ropeRepeat).toBe(2);
    small.dispose();
    r.model.dispose();
  });
});
