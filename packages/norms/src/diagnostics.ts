/**
 * Depth-stability diagnostics of DeepNet §3 (Wang et al. 2022, arXiv 2203.00555): the model update ‖ΔF‖,
 * per-layer gradient norms, LN input norms, and loss-stall detection. Pure functions of tensors or arrays the
 * training loop already has; none of them needs the trainer.
 *
 * @module
 */

import type { ParamSpec } from '@strata/core';
import * as tf from '@tensorflow/tfjs-core';

/** Values a diagnostic accepts: a tensor, or its data as a plain or typed array. */
export type DiagnosticValues = tf.Tensor | ArrayLike<number>;

function toArray(v: DiagnosticValues): ArrayLike<number> {
  return v instanceof tf.Tensor ? (v.dataSync() as Float32Array) : v;
}

function sumSquares(v: DiagnosticValues): number {
  const a = toArray(v);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * a[i]!;
  return s;
}

/**
 * The model update of DeepNet §3 (Fig. 4a/5): ‖ΔF‖ = ‖F(x, θ_t) − F(x, θ_0)‖₂ over all logits of a fixed probe
 * batch, divided by √(#positions) so that it does not depend on the batch size:
 *
 * `‖ΔF‖ = sqrt(Σ_{b,t,v} (logitsNow − logitsInit)²) / sqrt(B·T)`
 *
 * Post-LN's failure signature is a large jump in the first few steps followed by a flat ‖ΔF‖.
 *
 * @param logitsNow `[B, T, V]` logits now (a tensor, or a flat array with `positions` given)
 * @param logitsInit the same probe batch's logits at step 0 (or at the previous step, for per-step updates)
 * @param positions B·T; required for arrays, derived from the shape for tensors
 */
export function modelUpdateNorm(
  logitsNow: DiagnosticValues,
  logitsInit: DiagnosticValues,
  positions?: number,
): number {
  const a = toArray(logitsNow);
  const b = toArray(logitsInit);
  if (a.length !== b.length) throw new Error(`modelUpdateNorm: sizes differ (${a.length} vs ${b.length})`);
  let n = positions;
  if (n === undefined) {
    if (!(logitsNow instanceof tf.Tensor))
      throw new Error('modelUpdateNorm: pass `positions` for plain arrays');
    n = logitsNow.size / (logitsNow.shape[logitsNow.rank - 1] ?? 1);
  }
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    s += d * d;
  }
  return Math.sqrt(s) / Math.sqrt(Math.max(1, n));
}

/** Gradient norms grouped by block; see {@link layerGradNorms}. */
export interface LayerGradNorms {
  /** `layers[i]` = L2 norm of all gradients of block i's parameters (0 for a block without gradients). */
  readonly layers: number[];
  /** L2 norm of the gradients of parameters outside blocks (embeddings, head, final norm). */
  readonly other: number;
  /** Global L2 norm of every gradient. */
  readonly total: number;
}

/**
 * Per-layer gradient norms (DeepNet §3, Fig. 3: gradient norm of each layer at the start of training):
 * gradients are grouped by `spec.layer` and each group's L2 norm is returned.
 *
 * @param grads gradients by **parameter name** (Strata's names, as in `model.params.names()`)
 * @param specs the model's parameter specs (`model.params.specs()`); parameters without a gradient are skipped
 */
export function layerGradNorms(
  grads: ReadonlyMap<string, DiagnosticValues> | Readonly<Record<string, DiagnosticValues>>,
  specs: readonly ParamSpec[],
): LayerGradNorms {
  const get = (name: string): DiagnosticValues | undefined =>
    grads instanceof Map ? grads.get(name) : (grads as Record<string, DiagnosticValues>)[name];
  const layers: number[] = [];
  let other = 0;
  let total = 0;
  for (const spec of specs) {
    const g = get(spec.name);
    if (g == null) continue;
    const s = sumSquares(g);
    total += s;
    if (spec.layer === undefined) other += s;
    else {
      while (layers.length <= spec.layer) layers.push(0);
      layers[spec.layer]! += s;
    }
  }
  return { layers: layers.map(Math.sqrt), other: Math.sqrt(other), total: Math.sqrt(total) };
}

/** LN input norms of one block; see {@link normInputsByLayer}. */
export interface LayerNormInputs {
  /** Block index. */
  readonly layer: number;
  /** Norm name without the block prefix (`attn.norm`, `mlp.inner_norm`, …) → mean ‖input‖₂ / √d. */
  readonly norms: Readonly<Record<string, number>>;
}

/**
 * Groups the LN input norms a model records (`model.setDiagnostics(true)`, then `model.takeNormInputs()`:
 * full norm name → mean ‖x‖₂ entering it) by block, optionally divided by √d (DeepNet §3: Post-LN fails when
 * ‖x‖ ≫ √d at the LN inputs, since the gradient through LN scales as √d/‖x‖).
 *
 * @param inputs `takeNormInputs()`'s map, e.g. `blocks.3.attn.norm → 41.2`, `final.norm → 12.0`
 * @param dModel when given, every value is divided by √dModel (inner norms of width dFF are divided too)
 * @returns one entry per block in layer order, plus `final` for norms outside blocks
 */
export function normInputsByLayer(
  inputs: ReadonlyMap<string, number>,
  dModel?: number,
): {
  /** One entry per block, in block order. */
  layers: LayerNormInputs[];
  /** Norms outside the blocks (the final norm) → mean ‖input‖₂ / √d. */
  final: Readonly<Record<string, number>>;
} {
  const scale = dModel ? 1 / Math.sqrt(dModel) : 1;
  const byLayer = new Map<number, Record<string, number>>();
  const final: Record<string, number> = {};
  for (const [name, v] of inputs) {
    const m = /^blocks\.(\d+)\.(.+)$/.exec(name);
    if (m) {
      const layer = Number(m[1]);
      const rec = byLayer.get(layer) ?? {};
      rec[m[2]!] = v * scale;
      byLayer.set(layer, rec);
    } else final[name] = v * scale;
  }
  const layers = [...byLayer].sort((a, b) => a[0] - b[0]).map(([layer, norms]) => ({ layer, norms }));
  return { layers, final };
}

/**
 * Loss-stall detector for the "Post-LN breaks with depth" experiment (DeepNet, arXiv 2203.00555, §3;
 * the DeepNorm and depth guide): true when, after `afterSteps` steps, the mean of the last `window` losses is still within `margin`
 * (nats, default 0.5) of `floor` — typically the unigram entropy of the data (ln V for uniform tokens), where a model
 * that has learned only token frequencies sits.
 *
 * @param losses training losses by step (index 0 = step 1)
 */
export function lossStalled(
  losses: readonly number[],
  options: { floor: number; margin?: number; afterSteps?: number; window?: number },
): boolean {
  const { floor, margin = 0.5, afterSteps = 100, window = 10 } = options;
  if (losses.length < afterSteps) return false;
  const tail = losses.slice(-Math.max(1, window));
  const mean = tail.reduce((a, b) => a + b, 0) / tail.length;
  return !Number.isFinite(mean) || mean >= floor - margin;
}
