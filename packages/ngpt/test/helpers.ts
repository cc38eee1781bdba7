import { initBackend } from '@strata/core';
import * as tf from '@tensorflow/tfjs-core';
import { NGPT, type NGPTConfig, parseNGPTConfig, scaleMetaOf } from '../src/index.js';

/** wasm backend, once per test file (each file runs in its own process). */
export async function setup(): Promise<void> {
  await initBackend('wasm');
}

/** A tiny config: V 11, d 8, 2 heads (d_k 4), 2 layers, d_ff 12, context 8. */
export function tinyConfig(over: Record<string, unknown> = {}): NGPTConfig {
  return parseNGPTConfig({
    vocabSize: 11,
    contextLength: 8,
    dModel: 8,
    nHeads: 2,
    nLayers: 2,
    dFF: 12,
    ...over,
  });
}

/** A model from {@link tinyConfig}. */
export function tinyModel(over: Record<string, unknown> = {}, seed = 7): NGPT {
  return new NGPT(tinyConfig(over), { seed });
}

/** Deterministic pseudo-random ids `[B][T]` in [0, V). */
export function randomIds(B: number, T: number, V: number, seed = 1): number[][] {
  let s = seed >>> 0;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
  return Array.from({ length: B }, () => Array.from({ length: T }, () => Math.floor(next() * V)));
}

/**
 * Sets every scaling vector to non-trivial values `p = sScale · (lo + (hi − lo)·u)` (deterministic), so tests
 * exercise each of them. `signed` also makes some α entries negative.
 */
export function randomizeScales(model: NGPT, options: { signed?: boolean; seed?: number } = {}): void {
  let s = (options.seed ?? 3) >>> 0;
  const next = () => {
    s = (Math.imul(s, 22695477) + 1) >>> 0;
    return s / 4294967296;
  };
  for (const spec of model.params.specs()) {
    const meta = scaleMetaOf(spec);
    if (!meta) continue;
    const n = spec.shape[0]!;
    const vals = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let f = 0.5 + 1.5 * next();
      if (options.signed && meta.symbol.startsWith('alpha') && next() < 0.3) f = -f;
      if (meta.symbol.startsWith('alpha')) f *= 4; // α ≈ 0.1–0.4, like trained models
      vals[i] = meta.sScale * f;
    }
    const t = tf.tensor1d(vals);
    model.params.get(spec.name).assign(t);
    t.dispose();
  }
}

/** `[B][T]` ids as an int32 tensor. */
export function idsTensor(ids: number[][]): tf.Tensor2D {
  return tf.tensor2d(ids, [ids.length, ids[0]!.length], 'int32');
}

/** Largest |a − b| over two equally long arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
