import * as tf from '@tensorflow/tfjs-core';
import type { AddWeightOptions, NormFn, NormKind, WeightHost } from '../norm/contract.js';
import { layerNorm, rmsNorm } from '../ops.js';
import { type InitSpec, initValues, type ParamStore } from '../params.js';
import type { Rng } from '../util/rng.js';

/** Records each norm's mean input L2 norm while diagnostics are on (DeepNet §3: ‖x‖ entering each LN). */
export class NormInputRecorder {
  /** Whether `record` keeps anything (on only for diagnostics steps: each record is an extra reduction). */
  enabled = false;
  private readonly recorded = new Map<string, tf.Scalar[]>();

  /** Records the mean row L2 norm of `x` (the input of norm `name`) when enabled. */
  record(name: string, x: tf.Tensor): void {
    if (!this.enabled) return;
    const v = tf.tidy(() => {
      const flat = tf.reshape(x, [-1, x.shape[x.rank - 1]!]);
      return tf.mean(tf.sqrt(tf.sum(tf.mul(flat, flat), 1))) as tf.Scalar;
    });
    tf.keep(v);
    const list = this.recorded.get(name) ?? [];
    list.push(v);
    this.recorded.set(name, list);
  }

  /** Returns `name → mean recorded input norm` since the last call, and clears the record. */
  async take(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const [name, list] of this.recorded) {
      let s = 0;
      for (const t of list) {
        s += (await t.data())[0]!;
        t.dispose();
      }
      out.set(name, s / list.length);
    }
    this.recorded.clear();
    return out;
  }

  /** Drops what was recorded. */
  clear(): void {
    for (const list of this.recorded.values()) for (const t of list) t.dispose();
    this.recorded.clear();
  }
}

/** Settings a {@link ParamWeightHost} needs from its model. */
export interface HostSettings {
  /** The model's norm kind, used when a strategy does not force one. */
  normKind: NormKind;
  /** The model's norm epsilon. */
  eps: number;
  /** Whether LayerNorms get a bias. */
  normBias: boolean;
  /** Residual width: the default norm dimension. */
  dModel: number;
  /** Block index of the site (absent for the final norm); recorded in each weight's spec as `layer`. */
  layer?: number;
  /**
   * False: norms without parameters (no gain, no bias; nothing in the checkpoint), as GAU-α and RoFormerV2
   * use. Absent: true.
   */
  affine?: boolean;
}

/** The {@link WeightHost} that GPT-style models hand to norm strategies: weights go into the ParamStore. */
export class ParamWeightHost implements WeightHost {
  constructor(
    readonly prefix: string,
    private readonly params: ParamStore,
    private readonly rng: Rng,
    private readonly settings: HostSettings,
    private readonly recorder: NormInputRecorder,
  ) {}

  addWeight(name: string, shape: number[], init: InitSpec, options: AddWeightOptions = {}): tf.Variable {
    const full = this.prefix + name;
    const values = initValues(init, shape, this.rng);
    return this.params.add(
      {
        name: full,
        shape,
        role: options.role ?? 'scale',
        decay: options.decay ?? false,
        ...(options.trainable === false ? { trainable: false } : {}),
        ...(this.settings.layer !== undefined ? { layer: this.settings.layer } : {}),
        ...(options.meta ? { meta: options.meta } : {}),
      },
      tf.tensor(values, shape, 'float32'),
    );
  }

  norm(name: string, options: { dim?: number; kind?: NormKind; eps?: number } = {}): NormFn {
    const dim = options.dim ?? this.settings.dModel;
    const kind = options.kind ?? this.settings.normKind;
    const eps = options.eps ?? this.settings.eps;
    const full = this.prefix + name;
    const affine = this.settings.affine !== false;
    const gain = affine
      ? this.addWeight(
          `${name}.weight`,
          [dim],
          { kind: 'ones' },
          { role: 'norm_gain', meta: { norm: kind, eps } },
        )
      : undefined;
    const bias =
      affine && kind === 'layernorm' && this.settings.normBias
        ? this.addWeight(`${name}.bias`, [dim], { kind: 'zeros' }, { role: 'norm_bias' })
        : undefined;
    const recorder = this.recorder;
    // Normalization keeps the shape, so the result has the input's tensor type (what NormFn promises).
    return (<T extends tf.Tensor>(x: T): T => {
      recorder.record(full, x);
      return (kind === 'layernorm' ? layerNorm(x, gain, bias, eps) : rmsNorm(x, gain, eps)) as T;
    }) as NormFn;
  }
}
