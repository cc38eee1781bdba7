import { crossEntropy, getModelFamily, type LanguageModel, type OptimizerState, Rng } from '@strata/core';
import * as tf from '@tensorflow/tfjs-core';
import { acceptsConfigKey } from '../src/index.js';

/** Tiny GPT config for the growth tests. */
export interface TinyGPT {
  norm: string;
  normOptions?: Record<string, unknown>;
  normKind?: 'layernorm' | 'rmsnorm';
  positions?: 'learned' | 'rope' | 'none';
  tied?: boolean;
  activation?: 'gelu' | 'gelu_erf' | 'relu' | 'swiglu';
  dModel?: number;
  nHeads?: number;
  dFF?: number;
  nLayers?: number;
  bias?: boolean;
  extra?: Record<string, unknown>;
}

export const VOCAB = 16;
export const CONTEXT = 8;

/** Builds a tiny GPT and fills every weight with random values (growth.md §6: non-trivial γ, β, biases). */
export async function tinyGPT(o: TinyGPT, seed = 1): Promise<LanguageModel> {
  const fam = getModelFamily('gpt');
  const cfg = fam.parseConfig({
    vocabSize: VOCAB,
    contextLength: CONTEXT,
    dModel: o.dModel ?? 8,
    nHeads: o.nHeads ?? 2,
    dFF: o.dFF ?? 12,
    nLayers: o.nLayers ?? 2,
    positions: o.positions ?? 'learned',
    normKind: o.normKind ?? 'layernorm',
    tiedEmbeddings: o.tied ?? true,
    activation: o.activation ?? 'gelu',
    bias: o.bias ?? true,
    norm: { name: o.norm, options: o.normOptions ?? {} },
    ...(o.extra ?? {}),
  });
  const m = fam.create(cfg, { seed });
  randomize(m, seed);
  return m;
}

/** Random weights: matrices and biases N(0, 0.3²), norm gains 1 + N(0, 0.3²), scales in [0.5, 1). */
export function randomize(m: LanguageModel, seed: number): void {
  const rng = Rng.derive(seed, 'randomize');
  const values = new Map<string, Float32Array>();
  for (const s of m.params.specs()) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const z = rng.normal() * 0.3;
      v[i] = s.role === 'norm_gain' ? 1 + z : s.role === 'scale' ? 0.5 + 0.5 * rng.next() : z;
    }
    values.set(s.name, v);
  }
  m.params.assign(values);
}

/** A next-token batch of random ids. */
export function randomBatch(
  seed: number,
  B = 2,
  T = CONTEXT,
  vocab = VOCAB,
): { x: number[][]; y: number[][] } {
  const rng = Rng.derive(seed, 'batch');
  const rows = Array.from({ length: B }, () => Array.from({ length: T + 1 }, () => rng.int(vocab)));
  return { x: rows.map((r) => r.slice(0, T)), y: rows.map((r) => r.slice(1)) };
}

/** Mean cross-entropy of a model on a batch. */
export async function lossOn(m: LanguageModel, b: { x: number[][]; y: number[][] }): Promise<number> {
  const l = tf.tidy(() => lossTensor(m, b));
  const v = (await l.data())[0]!;
  l.dispose();
  return v;
}

function lossTensor(m: LanguageModel, b: { x: number[][]; y: number[][] }): tf.Scalar {
  const B = b.x.length;
  const T = b.x[0]!.length;
  const logits = m.forward(tf.tensor2d(b.x.flat(), [B, T], 'int32'));
  return crossEntropy(
    tf.reshape(logits, [B * T, m.config.vocabSize]) as tf.Tensor2D,
    tf.tensor1d(b.y.flat(), 'int32'),
  );
}

/** Gradients of the batch loss, by parameter name, on the host. */
export async function gradients(
  m: LanguageModel,
  b: { x: number[][]; y: number[][] },
): Promise<Map<string, Float32Array>> {
  const named = m.params.variables();
  const byVar = new Map(named.map(([n, v]) => [v.name, n]));
  const { value, grads } = tf.variableGrads(
    () => lossTensor(m, b),
    named.map(([, v]) => v),
  );
  const out = new Map<string, Float32Array>();
  for (const [vn, g] of Object.entries(grads)) {
    out.set(byVar.get(vn)!, (await g.data()) as Float32Array);
    g.dispose();
  }
  value.dispose();
  return out;
}

/**
 * One AdamW step computed on the host (float64), with an optional per-entry learning-rate multiplier on the
 * Adam update (growth.md §4.1) and decoupled weight decay at the base rate. Mutates `state` and the model.
 */
export async function adamStep(
  m: LanguageModel,
  state: OptimizerState,
  b: { x: number[][]; y: number[][] },
  o: {
    lr: number;
    beta1?: number;
    beta2?: number;
    eps?: number;
    wd?: number;
    lrScale?: Map<string, { data: Float32Array }>;
  },
): Promise<void> {
  const { lr, beta1 = 0.9, beta2 = 0.95, eps = 1e-10, wd = 0 } = o;
  const grads = await gradients(m, b);
  state.step += 1;
  const bc1 = 1 - beta1 ** state.step;
  const bc2 = 1 - beta2 ** state.step;
  const values = await m.params.read();
  const next = new Map<string, Float32Array>();
  for (const spec of m.params.specs()) {
    const g = grads.get(spec.name)!;
    const mm = state.tensors.get(`m.${spec.name}`)!.data;
    const vv = state.tensors.get(`v.${spec.name}`)!.data;
    const th = Float32Array.from(values.get(spec.name)!);
    const sc = o.lrScale?.get(spec.name)?.data;
    for (let i = 0; i < th.length; i++) {
      mm[i] = beta1 * mm[i]! + (1 - beta1) * g[i]!;
      vv[i] = beta2 * vv[i]! + (1 - beta2) * g[i]! * g[i]!;
      const u = mm[i]! / bc1 / (Math.sqrt(vv[i]! / bc2) + eps);
      const decayed = spec.decay && wd > 0 ? th[i]! * (1 - lr * wd) : th[i]!;
      th[i] = decayed - lr * (sc ? sc[i]! : 1) * u;
    }
    next.set(spec.name, th);
  }
  m.params.assign(next);
  m.afterStep();
}

/** Zero AdamW state for a model. */
export function zeroState(m: LanguageModel): OptimizerState {
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const s of m.params.specs()) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    tensors.set(`m.${s.name}`, { shape: [...s.shape], data: new Float32Array(n) });
    tensors.set(`v.${s.name}`, { shape: [...s.shape], data: new Float32Array(n) });
  }
  return { step: 0, tensors };
}

/** Deep copy of an optimizer state. */
export function cloneState(s: OptimizerState): OptimizerState {
  return {
    step: s.step,
    tensors: new Map(
      [...s.tensors].map(([k, t]) => [k, { shape: [...t.shape], data: Float32Array.from(t.data) }]),
    ),
  };
}

/** Max |a − b| and max |a| over two logit arrays of a probe. */
export async function logits(m: LanguageModel, x: number[][]): Promise<Float32Array> {
  const t = m.forward(tf.tensor2d(x.flat(), [x.length, x[0]!.length], 'int32'));
  const d = (await t.data()) as Float32Array;
  t.dispose();
  return d;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

/** Tiny nGPT with random unit-norm matrices and random scales (α of both signs when `alphaAbs`). */
export function tinyNGPT(
  o: { dModel?: number; nHeads?: number; dFF?: number; nLayers?: number; alphaAbs?: boolean } = {},
  seed = 1,
): LanguageModel {
  const fam = getModelFamily('ngpt');
  const cfg = fam.parseConfig({
    vocabSize: VOCAB,
    contextLength: CONTEXT,
    dModel: o.dModel ?? 8,
    nHeads: o.nHeads ?? 2,
    dFF: o.dFF ?? 12,
    nLayers: o.nLayers ?? 2,
    alphaAbs: o.alphaAbs ?? false,
  });
  const m = fam.create(cfg, { seed });
  const rng = Rng.derive(seed, 'randomize-ngpt');
  const values = new Map<string, Float32Array>();
  for (const s of m.params.specs()) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    const sScale = typeof s.meta?.sScale === 'number' ? s.meta.sScale : 1;
    for (let i = 0; i < n; i++) {
      if (s.role !== 'scale') v[i] = rng.normal();
      else {
        // stored p = sScale·(0.5 … 1.5): effective value (0.5 … 1.5)·sInit; α of random sign
        const sign = /alpha/.test(s.name) && rng.next() < 0.3 ? -1 : 1;
        v[i] = sign * sScale * (0.5 + rng.next());
      }
    }
    values.set(s.name, v);
  }
  m.params.assign(values);
  m.afterStep(); // project the matrices to the unit sphere
  return m;
}

/**
 * Whether the family's config accepts `ropeRepeat` (the repeated RoPE table head-dim growth needs; see the
 * README). Tests of head-dim growth with RoPE expect a refusal until it does, exactness after.
 */
export function ropeRepeatSupported(family: 'gpt' | 'ngpt'): boolean {
  try {
    return acceptsConfigKey(family, getModelFamily(family).parseConfig({}), 'ropeRepeat', 2);
  } catch {
    return false;
  }
}
