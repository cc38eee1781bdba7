import type { ParamSpec, ParamStore, ScaleSummary } from '@strata/core';
import * as tf from '@tensorflow/tfjs-core';

/** The paper's scaling vectors (Loshchilov et al., arXiv 2410.01131), as they appear in parameter `meta.symbol`. */
export type ScaleSymbol = 'alpha_A' | 'alpha_M' | 's_qk' | 's_u' | 's_nu' | 's_z';

/**
 * What a scaling parameter's `meta` records: `symbol`, `sInit`, `sScale`, `abs` (whether the effective value
 * is taken in absolute value) and `gain` (a constant the forward pass multiplies on top, e.g. √d_model on
 * s_ν; 1 elsewhere). Effective value: `s = p · sInit/sScale` (then `|s|` when `abs`).
 */
export interface ScaleMeta {
  /** Which of the paper's scaling vectors this is. */
  readonly symbol: ScaleSymbol;
  /** Effective value at init. */
  readonly sInit: number;
  /** Stored value at init (the re-parameterization scale). */
  readonly sScale: number;
  /** Whether the effective value is taken in absolute value (α under `alphaAbs`). */
  readonly abs: boolean;
  /** Constant the forward pass multiplies on top (√d_model on s_ν; 1 elsewhere). */
  readonly gain: number;
}

/** Reads a {@link ScaleMeta} from a parameter spec, or `undefined` when the parameter is not a scaling vector. */
export function scaleMetaOf(spec: Pick<ParamSpec, 'meta'>): ScaleMeta | undefined {
  const m = spec.meta;
  if (!m || typeof m.symbol !== 'string' || typeof m.sInit !== 'number' || typeof m.sScale !== 'number')
    return undefined;
  return {
    symbol: m.symbol as ScaleSymbol,
    sInit: m.sInit,
    sScale: m.sScale,
    abs: m.abs === true,
    gain: typeof m.gain === 'number' ? m.gain : 1,
  };
}

/**
 * `|x|` whose gradient is `dy · sign(x)` (0 at x = 0), as PyTorch's `abs` — the NVIDIA reference's semantics.
 * tfjs's own `Abs` gradient is `dy · step(x, −1)`, i.e. −dy at exactly 0, which would let an α stored as
 * exactly 0 move under `|α|` and silently differ from the reference.
 */
export const absSignGrad: (x: tf.Tensor) => tf.Tensor = tf.customGrad(
  // biome-ignore lint/suspicious/noExplicitAny: tfjs's customGrad typing
  (x: any, save: any) => {
    save([x]);
    return {
      value: tf.abs(x as tf.Tensor),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [tf.mul(dy, tf.sign(saved[0]!))],
    };
  },
) as unknown as (x: tf.Tensor) => tf.Tensor;

/**
 * The effective value `s = p · sInit/sScale` (then `|s|` when `abs`) of a stored scaling parameter `p`,
 * differentiable w.r.t. `p`. Does not include `gain`.
 */
export function effectiveScale(p: tf.Tensor, meta: Pick<ScaleMeta, 'sInit' | 'sScale' | 'abs'>): tf.Tensor {
  const s = tf.mul(p, meta.sInit / meta.sScale);
  return meta.abs ? absSignGrad(s) : s;
}

/** Host-side effective values of one scaling parameter (see {@link effectiveScales}). */
export interface EffectiveScale {
  /** Parameter name, e.g. `blocks.0.attn.alpha_A`. */
  readonly name: string;
  /** Which scaling vector. */
  readonly symbol: ScaleSymbol;
  /** Block index (absent for s_z). */
  readonly layer?: number;
  /** Effective value at init. */
  readonly sInit: number;
  /** Stored value at init. */
  readonly sScale: number;
  /** Learning-rate multiplier the re-parameterization gives: `sInit/sScale`. */
  readonly multiplier: number;
  /** Whether the effective value is taken in absolute value. */
  readonly abs: boolean;
  /** Extra constant the forward pass applies (√d_model for s_ν, else 1). */
  readonly gain: number;
  /** Effective values `p · sInit/sScale` (abs applied), without `gain`. */
  readonly values: Float64Array;
  /** Mean of `values`. */
  readonly mean: number;
  /** Smallest of `values`. */
  readonly min: number;
  /** Largest of `values`. */
  readonly max: number;
}

/**
 * Effective values of every scaling vector (α_A, α_M, s_qk, s_u, s_ν, s_z) of an nGPT model, computed on
 * the host in float64 from the stored parameters and their `meta`. For tests and `strata info`.
 */
export async function effectiveScales(
  source: ParamStore | { readonly params: ParamStore },
): Promise<EffectiveScale[]> {
  const params = 'params' in source ? source.params : source;
  const out: EffectiveScale[] = [];
  for (const spec of params.specs()) {
    const meta = scaleMetaOf(spec);
    if (!meta) continue;
    const data = await params.get(spec.name).data();
    const k = meta.sInit / meta.sScale;
    const values = new Float64Array(data.length);
    let sum = 0;
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < data.length; i++) {
      let v = (data[i] as number) * k;
      if (meta.abs) v = Math.abs(v);
      values[i] = v;
      sum += v;
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    out.push({
      name: spec.name,
      symbol: meta.symbol,
      ...(spec.layer !== undefined ? { layer: spec.layer } : {}),
      sInit: meta.sInit,
      sScale: meta.sScale,
      multiplier: k,
      abs: meta.abs,
      gain: meta.gain,
      values,
      mean: sum / data.length,
      min,
      max,
    });
  }
  return out;
}

/** The scaling kinds in the order NVIDIA's model defines them (the order of {@link summarizeScales}' keys). */
export const SCALE_SYMBOLS: readonly ScaleSymbol[] = ['alpha_A', 'alpha_M', 's_qk', 's_u', 's_nu', 's_z'];

/**
 * Effective values of every scaling vector, pooled by kind over all layers: mean, min, max and entry count
 * per {@link ScaleSymbol} (without `gain`: s_ν is reported as s_ν, not s_ν·√d). What `NGPT.scaleSummary()`
 * returns, and what `strata train` logs every step and `strata info` prints.
 */
export async function summarizeScales(
  source: ParamStore | { readonly params: ParamStore },
): Promise<Record<string, ScaleSummary>> {
  const acc = new Map<string, { sum: number; min: number; max: number; count: number }>();
  for (const s of await effectiveScales(source)) {
    const a = acc.get(s.symbol) ?? {
      sum: 0,
      min: Number.POSITIVE_INFINITY,
      max: Number.NEGATIVE_INFINITY,
      count: 0,
    };
    a.sum += s.mean * s.values.length;
    a.min = Math.min(a.min, s.min);
    a.max = Math.max(a.max, s.max);
    a.count += s.values.length;
    acc.set(s.symbol, a);
  }
  const out: Record<string, ScaleSummary> = {};
  for (const sym of [
    ...SCALE_SYMBOLS,
    ...[...acc.keys()].filter((k) => !SCALE_SYMBOLS.includes(k as ScaleSymbol)),
  ]) {
    const a = acc.get(sym);
    if (a) out[sym] = { mean: a.sum / a.count, min: a.min, max: a.max, count: a.count };
  }
  return out;
}
