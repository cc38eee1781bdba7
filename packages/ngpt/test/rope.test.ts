import { applyRope, ropeTables } from '@strata/core';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { maxAbsDiff, setup } from './helpers.js';
import { refRope } from './reference.js';

beforeAll(setup);

/** Deterministic vector with entries in (−1, 1). */
function vec(n: number, seed: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.sin(seed * 12.9898 + i * 78.233) * 0.9);
}

/** RoPE (the op the model uses) of the same vector placed at every position 0..T−1: [T][dk]. */
function ropeAll(x: number[], T: number, base: number): number[][] {
  const dk = x.length;
  const { cos, sin } = ropeTables(T, dk, base);
  return tf.tidy(() => {
    const xs = tf.tile(tf.tensor2d([x]), [T, 1]);
    const out = applyRope(xs, tf.tensor2d(cos, [T, dk]), tf.tensor2d(sin, [T, dk]));
    return out.arraySync() as number[][];
  });
}

const dot = (a: number[], b: number[]) => a.reduce((s, v, i) => s + v * b[i]!, 0);
const norm = (a: number[]) => Math.sqrt(dot(a, a));

describe('RoPE as nGPT uses it (standard rotate-half, not NVIDIA’s broken port)', () => {
  const T = 16;
  const dk = 8;
  const base = 10000;

  it('preserves vector norms at every position', () => {
    const x = vec(dk, 1);
    for (const r of ropeAll(x, T, base)) expect(Math.abs(norm(r) - norm(x))).toBeLessThan(1e-6);
  });

  it('scores depend only on i − j (relative-position invariance)', () => {
    const q = ropeAll(vec(dk, 2), T, base);
    const k = ropeAll(vec(dk, 3), T, base);
    for (let i = 0; i < T - 1; i++) {
      for (let j = 0; j < T - 1; j++) {
        expect(Math.abs(dot(q[i + 1]!, k[j + 1]!) - dot(q[i]!, k[j]!))).toBeLessThan(2e-6);
      }
    }
    // and they do depend on the offset (RoPE is not the identity)
    expect(Math.abs(dot(q[3]!, k[0]!) - dot(q[0]!, k[0]!))).toBeGreaterThan(1e-3);
  });

  it('matches the test suite’s own float64 RoPE, and commutes with normalization', () => {
    const x = vec(dk, 4);
    const out = ropeAll(x, T, base);
    for (let t = 0; t < T; t++) {
      expect(maxAbsDiff(out[t]!, refRope(x, t, base))).toBeLessThan(1e-6);
      const nx = x.map((v) => v / norm(x));
      const a = refRope(nx, t, base);
      const r = refRope(x, t, base);
      const b = r.map((v) => v / norm(r));
      expect(maxAbsDiff(a, b)).toBeLessThan(1e-12);
    }
  });
});
