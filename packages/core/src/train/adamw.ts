import * as tf from '@tensorflow/tfjs-core';
import { StrataError } from '../errors.js';
import { adamWFast, strataKernelsActive } from '../ops.js';
import type { ParamStore } from '../params.js';

/** AdamW hyper-parameters. */
export interface AdamWConfig {
  /** β₁ (default 0.9). */
  beta1: number;
  /** β₂ (default 0.95, as nanoGPT/nGPT). */
  beta2: number;
  /** ε added to √v̂ (default 1e-8). */
  eps: number;
  /** Decoupled weight decay λ, applied only to parameters whose spec has `decay: true` (default 0.1). */
  weightDecay: number;
}

/** Default AdamW settings. */
export const ADAMW_DEFAULTS: AdamWConfig = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };

/** Host copy of optimizer state, for checkpoints (`m.<param>`, `v.<param>` tensors plus the step). */
export interface OptimizerState {
  /** Updates applied so far (t of the bias corrections). */
  step: number;
  /** `m.<param>`, `v.<param>` (and optional `lr_scale.<param>`) by name, as saved in `optimizer.safetensors`. */
  tensors: Map<
    string,
    {
      /** The parameter's shape. */
      shape: number[];
      /** Values, row-major. */
      data: Float32Array;
    }
  >;
}

/**
 * AdamW (Loshchilov & Hutter 2019) with decoupled weight decay, as PyTorch computes it:
 * `θ ← θ·(1 − lr·λ)` (decay group only), `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
 * `θ ← θ − lr·m̂/(√v̂ + ε)` with bias-corrected `m̂ = m/(1−β₁ᵗ)`, `v̂ = v/(1−β₂ᵗ)`.
 *
 * Parameter groups come from each parameter's `decay` flag (by default no decay on norms, biases and
 * embeddings). Each variable is updated in its own `tidy`, so temporaries never pile up (this is what lets
 * 1,000-layer models fit in the wasm heap). State saves and loads exactly.
 */
export class AdamW {
  /** Hyperparameters (β₁, β₂, ε, weight decay), fixed at construction. */
  readonly config: AdamWConfig;
  private m = new Map<string, tf.Variable>();
  private v = new Map<string, tf.Variable>();
  /**
   * Optional per-entry multipliers of the Adam update (`lr_scale.<param>` in checkpoints), written by
   * function-preserving growth so a grown model's first steps match the small model's (Growth guide, "Optimizer state").
   */
  private lrScale = new Map<string, tf.Tensor>();
  /** Number of updates applied so far (t in the bias correction). */
  step = 0;

  constructor(
    private readonly params: ParamStore,
    config: Partial<AdamWConfig> = {},
  ) {
    this.config = { ...ADAMW_DEFAULTS, ...config };
    const c = this.config;
    if (!(c.beta1 >= 0 && c.beta1 < 1))
      throw new StrataError('E_CONFIG', `train.beta1 must be in [0, 1), got ${c.beta1}`);
    if (!(c.beta2 >= 0 && c.beta2 < 1))
      throw new StrataError('E_CONFIG', `train.beta2 must be in [0, 1), got ${c.beta2}`);
    if (!(c.eps > 0)) throw new StrataError('E_CONFIG', `train.eps must be > 0, got ${c.eps}`);
    if (!(c.weightDecay >= 0))
      throw new StrataError('E_CONFIG', `train.weightDecay must be >= 0, got ${c.weightDecay}`);
    for (const [name, variable] of params.trainableVariables()) {
      this.m.set(name, tf.variable(tf.zerosLike(variable), false));
      this.v.set(name, tf.variable(tf.zerosLike(variable), false));
    }
  }

  /**
   * Applies one update.
   * @param grads gradient per parameter name (missing names are left unchanged)
   * @param lr learning rate for this step
   * @param scale multiplies every gradient first (global-norm clipping factor)
   * @param lrScaleWeight weight w of the per-entry multipliers s: the update is scaled by `1 + (s − 1)·w`
   *   (1: as stored; 0: ignored; see `lrScaleWeightAt`)
   */
  apply(grads: ReadonlyMap<string, tf.Tensor>, lr: number, scale = 1, lrScaleWeight = 1): void {
    this.step += 1;
    const { beta1, beta2, eps, weightDecay } = this.config;
    const bc1 = 1 - beta1 ** this.step;
    const bc2 = 1 - beta2 ** this.step;
    const fused = strataKernelsActive();
    for (const [name, param] of this.params.trainableVariables()) {
      const g0 = grads.get(name);
      if (!g0) continue;
      const decay = this.params.spec(name).decay ? weightDecay : 0;
      const m = this.m.get(name)!;
      const v = this.v.get(name)!;
      const s = lrScaleWeight > 0 ? this.lrScale.get(name) : undefined;
      if (fused && g0.dtype === 'float32' && !s) {
        // One fused SIMD kernel per parameter (bit-identical to the tfjs path below; verified in tests).
        const [p, mN, vN] = adamWFast(param, g0, m, v, {
          lr,
          beta1,
          beta2,
          eps,
          decay: decay > 0 ? 1 - lr * decay : 1,
          bc1,
          bc2,
          scale,
        });
        m.assign(mN!);
        v.assign(vN!);
        param.assign(p!);
        for (const t of [p, mN, vN]) t!.dispose();
        continue;
      }
      tf.tidy(() => {
        const g = scale === 1 ? g0 : tf.mul(g0, scale);
        const mNew = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1));
        const vNew = tf.add(tf.mul(v, beta2), tf.mul(tf.mul(g, g), 1 - beta2));
        m.assign(mNew);
        v.assign(vNew);
        const update = tf.div(tf.div(mNew, bc1), tf.add(tf.sqrt(tf.div(vNew, bc2)), eps));
        const decayed = decay > 0 ? tf.mul(param, 1 - lr * decay) : param;
        const mult = s && lrScaleWeight !== 1 ? tf.add(tf.mul(s, lrScaleWeight), 1 - lrScaleWeight) : s;
        param.assign(tf.sub(decayed, tf.mul(mult ? tf.mul(update, mult) : update, lr)));
      });
    }
  }

  /** Whether per-entry learning-rate multipliers (`lr_scale.*`) are loaded. */
  get hasLrScale(): boolean {
    return this.lrScale.size > 0;
  }

  /** Drops the per-entry learning-rate multipliers (their lifetime is over); later states do not carry them. */
  clearLrScale(): void {
    for (const t of this.lrScale.values()) t.dispose();
    this.lrScale.clear();
  }

  /** Copies the state to host memory. */
  async exportState(): Promise<OptimizerState> {
    const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, m] of this.m) {
      tensors.set(`m.${name}`, { shape: [...m.shape], data: (await m.data()) as Float32Array });
      const v = this.v.get(name)!;
      tensors.set(`v.${name}`, { shape: [...v.shape], data: (await v.data()) as Float32Array });
    }
    for (const [name, s] of this.lrScale) {
      tensors.set(`lr_scale.${name}`, { shape: [...s.shape], data: (await s.data()) as Float32Array });
    }
    return { step: this.step, tensors };
  }

  /** Restores state saved by {@link exportState}; every moment must be present with the right size. */
  importState(state: OptimizerState, source = 'optimizer state'): void {
    for (const [kind, map] of [
      ['m', this.m],
      ['v', this.v],
    ] as const) {
      for (const [name, variable] of map) {
        const t = state.tensors.get(`${kind}.${name}`);
        if (!t) throw new StrataError('E_CHECKPOINT', `${source}: missing tensor "${kind}.${name}"`);
        if (t.data.length !== variable.size) {
          throw new StrataError(
            'E_CHECKPOINT',
            `${source}: "${kind}.${name}" has ${t.data.length} values, expected ${variable.size}`,
          );
        }
        const value = tf.tensor(t.data, variable.shape, 'float32');
        variable.assign(value);
        value.dispose();
      }
    }
    for (const t of this.lrScale.values()) t.dispose();
    this.lrScale.clear();
    for (const [name, variable] of this.m) {
      const t = state.tensors.get(`lr_scale.${name}`);
      if (!t) continue;
      if (t.data.length !== variable.size) {
        throw new StrataError(
          'E_CHECKPOINT',
          `${source}: "lr_scale.${name}" has ${t.data.length} values, expected ${variable.size}`,
        );
      }
      this.lrScale.set(name, tf.keep(tf.tensor(t.data, variable.shape, 'float32')));
    }
    this.step = state.step;
  }

  /** Frees the moment tensors. */
  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values(), ...this.lrScale.values()]) t.dispose();
    this.m.clear();
    this.v.clear();
    this.lrScale.clear();
  }
}
