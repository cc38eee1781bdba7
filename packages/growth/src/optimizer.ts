import { type OptimizerState, StrataError } from '@strata/core';
import type { Origin } from './host.js';

/** One growth stage's provenance of every grown parameter (what {@link growOptimizerState} replays). */
export interface StageTrace {
  /** The stage: `ffn`, `width`, `depth` or `noise`. */
  readonly name: string;
  /** Shape of every parameter after the stage. */
  readonly shapes: ReadonlyMap<string, readonly number[]>;
  /** Provenance of every parameter's entries in this stage. */
  readonly origins: ReadonlyMap<string, Origin>;
}

/** The provenance of a whole growth, stage by stage (returned by `growModel` as `trace`). */
export interface GrowthTrace {
  /** The stages in the order applied. */
  readonly stages: readonly StageTrace[];
}

/** Prefix of the per-parameter learning-rate multiplier tensors in a grown optimizer state. */
export const LR_SCALE_PREFIX = 'lr_scale.';

/**
 * Optimizer state of a grown model: AdamW moments `m.<param>`, `v.<param>` and the step, plus per-entry
 * learning-rate multipliers (Growth guide, "Optimizer state").
 */
export interface GrownOptimizerState extends OptimizerState {
  /**
   * `param → multiplier` per entry: the value coefficient |s| of the entry's source (÷√k under the isometric
   * map, ÷k on the reading side of the tile map: the μP "Adam LR ∝ 1/fan-in" rule). With these and the mapped
   * moments, one Adam step of the grown model is the small model's step (verified in the tests). Saved as
   * `lr_scale.<param>` tensors, which `@strata/core`'s AdamW applies to the Adam update.
   */
  readonly lrScale: Map<
    string,
    {
      /** The parameter's shape. */
      shape: number[];
      /** One multiplier per entry, row-major. */
      data: Float32Array;
    }
  >;
  /** Number of entries whose moments start at zero (new blocks, new coordinates). */
  readonly freshEntries: number;
}

/** Options of {@link growOptimizerState}. */
export interface GrowOptimizerOptions {
  /**
   * Moments of new entries (Growth guide, "Optimizer state"): `zero` (m = v = 0, as MSG), or `seed-v` (m = 0, v copied from the
   * entry the new one was copied from — damps the first updates of new blocks).
   */
  readonly newMoments?: 'zero' | 'seed-v';
}

/**
 * Grows AdamW state along with the weights (Growth guide, "Optimizer state"): an entry that copies small
 * entry i with value coefficient s, where n big entries copy i, gets the gradient g/(n·s), so
 * `m′ = m/(n·s)`, `v′ = v/(n·s)²` (Staged Training's "exp_avg/2, exp_avg_sq/4" is this rule for its
 * block-diagonal map); the learning-rate multiplier becomes `|s|` (μP: ×1/k_in); the step counter (bias
 * correction) is kept. New entries start with zero moments (or seeded v, see `newMoments`). The moments are
 * looked up by parameter name, so inserted layers cannot shift them (Growth guide, "Optimizer state").
 *
 * @param state the small model's state (`AdamW.exportState()` or a checkpoint's `optimizer`); the
 *   multipliers of a model grown before (`lrScale` of a {@link GrownOptimizerState}, or `lr_scale.<param>`
 *   tensors from a checkpoint) are composed with the new ones
 * @param trace `growModel(...).trace`
 */
export function growOptimizerState(
  state: OptimizerState,
  trace: GrowthTrace,
  options: GrowOptimizerOptions = {},
): GrownOptimizerState {
  const seed = options.newMoments === 'seed-v';
  type Cur = Map<string, { m: Float64Array; v: Float64Array; lr: Float64Array; fresh: Uint8Array }>;
  let cur: Cur = new Map();
  const first = trace.stages[0];
  const names = first
    ? [...new Set([...first.origins.values()].map((o) => o.from))]
    : [...state.tensors.keys()].filter((k) => k.startsWith('m.')).map((k) => k.slice(2));
  for (const name of names) {
    const m = state.tensors.get(`m.${name}`);
    const v = state.tensors.get(`v.${name}`);
    // A parameter the optimizer does not update (`trainable: false`, e.g. DeepNorm's pinned per-layer α)
    // has no moments; neither do its copies.
    if (!m && !v) continue;
    if (!m || !v) {
      throw new StrataError(
        'E_CHECKPOINT',
        `optimizer state has only one moment for parameter "${name}" (m.${name}, v.${name})`,
      );
    }
    const lr0 =
      (state as Partial<GrownOptimizerState>).lrScale?.get(name) ??
      state.tensors.get(`${LR_SCALE_PREFIX}${name}`);
    const lr = new Float64Array(m.data.length).fill(1);
    if (lr0 && lr0.data.length === lr.length) lr.set(lr0.data);
    cur.set(name, {
      m: Float64Array.from(m.data),
      v: Float64Array.from(v.data),
      lr,
      fresh: new Uint8Array(m.data.length),
    });
  }
  let shapes: ReadonlyMap<string, readonly number[]> = new Map(
    [...cur.keys()].map((n) => [n, state.tensors.get(`m.${n}`)!.shape]),
  );
  for (const stage of trace.stages) {
    const next: Cur = new Map();
    for (const [name, o] of stage.origins) {
      const from = cur.get(o.from);
      if (!from) continue; // not optimized (no moments)
      const N = o.src.length;
      const m = new Float64Array(N);
      const v = new Float64Array(N);
      const lr = new Float64Array(N).fill(1);
      const isFresh = new Uint8Array(N);
      for (let j = 0; j < N; j++) {
        const i = o.src[j]!;
        if (i < 0) {
          isFresh[j] = 1;
          continue;
        }
        isFresh[j] = from.fresh[i]!;
        const s = o.s[j]!;
        const w = s !== 0 ? 1 / (o.n[j]! * s) : 0;
        lr[j] = from.lr[i]! * (s !== 0 ? Math.abs(s) : 1);
        if (s === 0 || o.fresh?.[j]) {
          isFresh[j] = 1;
          if (seed) v[j] = s !== 0 ? from.v[i]! * w * w : from.v[i]!;
          continue;
        }
        m[j] = from.m[i]! * w;
        v[j] = from.v[i]! * w * w;
      }
      next.set(name, { m, v, lr, fresh: isFresh });
    }
    cur = next;
    shapes = stage.shapes;
  }
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  const lrScale = new Map<string, { shape: number[]; data: Float32Array }>();
  let fresh = 0;
  for (const [name, t] of cur) {
    for (const f of t.fresh) fresh += f;
    const shape = [...(shapes.get(name) ?? [t.m.length])];
    tensors.set(`m.${name}`, { shape, data: Float32Array.from(t.m) });
    tensors.set(`v.${name}`, { shape, data: Float32Array.from(t.v) });
    lrScale.set(name, { shape, data: Float32Array.from(t.lr) });
  }
  return { step: state.step, tensors, lrScale, freshEntries: fresh };
}

/**
 * Size of the first Adam update of an entry whose moments start at zero, in units of the learning rate, at
 * global step `step + 1` with a constant gradient (Growth guide, "Optimizer state"): `(1−β₁)/(1−β₁ᵗ) / √((1−β₂)/(1−β₂ᵗ))`.
 * After thousands of steps this is `(1−β₁)/√(1−β₂)`: 3.16 for β₂ = 0.999, 0.45 for β₂ = 0.95.
 */
export function freshFirstUpdate(step: number, beta1: number, beta2: number): number {
  const t = step + 1;
  return (1 - beta1) / (1 - beta1 ** t) / Math.sqrt((1 - beta2) / (1 - beta2 ** t));
}

/** `m.`/`v.`/`lr_scale.` tensors of a grown state in one map (what `optimizer.safetensors` holds). */
export function optimizerTensors(state: GrownOptimizerState): Map<
  string,
  {
    /** The tensor's shape. */
    shape: number[];
    /** Its values, row-major. */
    data: Float32Array;
  }
> {
  const out = new Map(state.tensors);
  for (const [name, t] of state.lrScale) {
    if (t.data.some((x) => x !== 1)) out.set(`${LR_SCALE_PREFIX}${name}`, t);
  }
  return out;
}

/** What the growth report says about a grown optimizer state. */
export interface OptimizerSummary {
  /** The optimizer step carried over (unchanged by growth). */
  readonly step: number;
  /** Entries with no source in the small model (zero moments, or seeded `v`). */
  readonly freshEntries: number;
  /** First update of a fresh entry in units of the learning rate (Growth guide, "Optimizer state"). */
  readonly freshFirstUpdate: number;
  /** Range of the per-entry learning-rate multipliers. */
  readonly lrScaleMin: number;
  /** See `lrScaleMin`. */
  readonly lrScaleMax: number;
}

/** Summarizes a grown state for the report (`adam`: β₁, β₂ of the run, for the first update of fresh entries). */
export function optimizerSummary(
  state: GrownOptimizerState,
  adam: { readonly beta1: number; readonly beta2: number },
): OptimizerSummary {
  let lrScaleMin = Number.POSITIVE_INFINITY;
  let lrScaleMax = Number.NEGATIVE_INFINITY;
  for (const t of state.lrScale.values()) {
    for (const x of t.data) {
      lrScaleMin = Math.min(lrScaleMin, x);
      lrScaleMax = Math.max(lrScaleMax, x);
    }
  }
  return {
    step: state.step,
    freshEntries: state.freshEntries,
    freshFirstUpdate: freshFirstUpdate(state.step, adam.beta1, adam.beta2),
    lrScaleMin,
    lrScaleMax,
  };
}
