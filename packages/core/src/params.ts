import * as tf from '@tensorflow/tfjs-core';
import { StrataError } from './errors.js';
import type { Rng } from './util/rng.js';

/**
 * What a parameter is for. Norm strategies choose init gains by role (DeepNorm's β on `v`, `attn_out`,
 * `ffn_in`, `ffn_out`), growth transforms choose their rule by role, and the optimizer picks weight decay
 * by role.
 */
export type ParamRole =
  | 'tok_embedding'
  | 'pos_embedding'
  | 'qkv'
  | 'attn_out'
  | 'ffn_in'
  | 'ffn_gate'
  | 'ffn_out'
  | 'head'
  | 'bias'
  | 'norm_gain'
  | 'norm_bias'
  | 'scale'
  | 'other';

/** Description of one named parameter. */
export interface ParamSpec {
  /** Dotted name, e.g. `blocks.3.attn.qkv.weight`; the key in `model.safetensors`. */
  readonly name: string;
  /** Dimensions (tfjs layout: matrices are `[in, out]`). */
  readonly shape: readonly number[];
  /** What the tensor is for (embedding, `qkv`, `norm_gain`, ...): init, decay and growth rules key on it. */
  readonly role: ParamRole;
  /** Whether AdamW applies weight decay to it (default: only 2-D matrices that are not embeddings). */
  readonly decay: boolean;
  /**
   * False for a fixed buffer that is saved and loaded with the model but never trained (e.g. DeepNorm's
   * per-layer α pinned by growth). The trainer computes no gradient for it and AdamW skips it. Default true.
   */
  readonly trainable?: boolean;
  /** Block index, when the parameter belongs to a block. */
  readonly layer?: number;
  /** Free-form tags a strategy or family may attach (e.g. `{ unitNormAxis: 0 }` for nGPT's unit-norm axis). */
  readonly meta?: Readonly<Record<string, string | number | boolean>>;
}

/** How to initialize a tensor. */
export type InitSpec =
  | {
      /** Gaussian N(0, std²). */
      kind: 'normal';
      /** Standard deviation. */
      std: number;
    }
  | {
      /** Xavier/Glorot normal: std = gain·√(2 / (fanIn + fanOut)). */
      kind: 'xavier-normal';
      /** Multiplier of the Xavier std (DeepNet's β for its scaled branches). */
      gain: number;
    }
  | {
      /** Xavier/Glorot uniform: U(−a, a), a = gain·√(6 / (fanIn + fanOut)). */
      kind: 'xavier-uniform';
      /** Multiplier of the Xavier bound. */
      gain: number;
    }
  | {
      /** Uniform U(−limit, limit). */
      kind: 'uniform';
      /** Half-width of the interval. */
      limit: number;
    }
  | {
      /** All zeros. */
      kind: 'zeros';
    }
  | {
      /** All ones. */
      kind: 'ones';
    }
  | {
      /** Every entry equal to `value`. */
      kind: 'constant';
      /** The value. */
      value: number;
    };

/**
 * Materializes an init spec as a Float32Array using Strata's seeded RNG, so every backend starts from
 * bit-identical weights. `fanIn`/`fanOut` default to the first and last dimension of `shape`.
 */
export function initValues(
  spec: InitSpec,
  shape: readonly number[],
  rng: Rng,
  fanIn = shape[0] ?? 1,
  fanOut = shape[shape.length - 1] ?? 1,
): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  switch (spec.kind) {
    case 'normal':
      return rng.normalArray(n, spec.std);
    case 'xavier-normal':
      return rng.normalArray(n, spec.gain * Math.sqrt(2 / (fanIn + fanOut)));
    case 'xavier-uniform':
      return rng.uniformArray(n, spec.gain * Math.sqrt(6 / (fanIn + fanOut)));
    case 'uniform':
      return rng.uniformArray(n, spec.limit);
    case 'zeros':
      return new Float32Array(n);
    case 'ones':
      return new Float32Array(n).fill(1);
    case 'constant':
      return new Float32Array(n).fill(spec.value);
  }
}

/** Multiplies the scale of an init spec by `gain` (zeros/ones/constant are returned as is except constant). */
export function scaleInit(spec: InitSpec, gain: number): InitSpec {
  switch (spec.kind) {
    case 'normal':
      return { kind: 'normal', std: spec.std * gain };
    case 'xavier-normal':
    case 'xavier-uniform':
      return { kind: spec.kind, gain: spec.gain * gain };
    case 'uniform':
      return { kind: 'uniform', limit: spec.limit * gain };
    case 'constant':
      return { kind: 'constant', value: spec.value * gain };
    default:
      return spec;
  }
}

interface Entry {
  variable: tf.Variable;
  spec: ParamSpec;
}

/** Listeners of {@link onParameterAdded}. */
const addedListeners = new Set<(name: string, elements: number) => void>();

/**
 * Calls `listener(name, elements)` each time any {@link ParamStore} adds a parameter, from now until the
 * returned function is called: what a progress display needs while a very deep model is being built.
 */
export function onParameterAdded(listener: (name: string, elements: number) => void): () => void {
  addedListeners.add(listener);
  return () => {
    addedListeners.delete(listener);
  };
}

/**
 * An ordered, named collection of trainable variables: a model's parameters. Names are Strata's own
 * (stable, documented in the checkpoint-format guide); tfjs variable names are left unique and internal,
 * so several models can live in one process.
 */
export class ParamStore {
  private readonly entries = new Map<string, Entry>();

  /** Adds a parameter, taking ownership of `value` (it becomes a `tf.Variable`). */
  add(spec: ParamSpec, value: tf.Tensor): tf.Variable {
    if (this.entries.has(spec.name)) {
      value.dispose();
      throw new StrataError('E_CONFIG', `duplicate parameter name "${spec.name}"`);
    }
    const shapeOk =
      value.shape.length === spec.shape.length && value.shape.every((d, i) => d === spec.shape[i]);
    if (!shapeOk) {
      value.dispose();
      throw new StrataError(
        'E_CONFIG',
        `parameter "${spec.name}": value shape [${value.shape}] != [${spec.shape}]`,
      );
    }
    const variable = tf.variable(value, spec.trainable !== false);
    value.dispose();
    this.entries.set(spec.name, { variable, spec: { ...spec, shape: [...spec.shape] } });
    for (const listener of addedListeners) listener(spec.name, variable.size);
    return variable;
  }

  /** The variable called `name`; throws listing near names if absent. */
  get(name: string): tf.Variable {
    const e = this.entries.get(name);
    if (!e) {
      const near = this.names().filter(
        (n) => n.split('.').slice(0, -1).join('.') === name.split('.').slice(0, -1).join('.'),
      );
      throw new StrataError(
        'E_CONFIG',
        `no parameter named "${name}"${near.length ? ` (siblings: ${near.join(', ')})` : ''}`,
      );
    }
    return e.variable;
  }

  /** True when a parameter called `name` exists. */
  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** The spec of parameter `name`. */
  spec(name: string): ParamSpec {
    this.get(name);
    return this.entries.get(name)!.spec;
  }

  /** Parameter names in creation order. */
  names(): string[] {
    return [...this.entries.keys()];
  }

  /** All specs in creation order. */
  specs(): ParamSpec[] {
    return [...this.entries.values()].map((e) => e.spec);
  }

  /** `[name, variable]` pairs in creation order. */
  variables(): [string, tf.Variable][] {
    return [...this.entries].map(([n, e]) => [n, e.variable]);
  }

  /** `[name, variable]` pairs of the trainable parameters (what the optimizer updates). */
  trainableVariables(): [string, tf.Variable][] {
    return [...this.entries].filter(([, e]) => e.spec.trainable !== false).map(([n, e]) => [n, e.variable]);
  }

  /** Total number of scalar parameters. */
  count(): number {
    let n = 0;
    for (const e of this.entries.values()) n += e.variable.size;
    return n;
  }

  /** Number of parameters. */
  get size(): number {
    return this.entries.size;
  }

  /** Copies all values to host memory (`name → Float32Array`), e.g. for saving. */
  async read(): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    for (const [name, e] of this.entries) out.set(name, (await e.variable.data()) as Float32Array);
    return out;
  }

  /** Assigns values by name; every parameter must be present with the right size. */
  assign(values: ReadonlyMap<string, Float32Array>, source = 'weights'): void {
    for (const [name, e] of this.entries) {
      const v = values.get(name);
      if (!v) throw new StrataError('E_CHECKPOINT', `${source}: missing tensor "${name}"`);
      if (v.length !== e.variable.size) {
        throw new StrataError(
          'E_CHECKPOINT',
          `${source}: tensor "${name}" has ${v.length} values, expected ${e.variable.size} for shape [${e.spec.shape}]`,
        );
      }
      const t = tf.tensor(v, e.variable.shape, 'float32');
      e.variable.assign(t);
      t.dispose();
    }
    const unknown = [...values.keys()].filter((k) => !this.entries.has(k));
    if (unknown.length) {
      throw new StrataError(
        'E_CHECKPOINT',
        `${source}: unexpected tensor(s) ${unknown.slice(0, 5).join(', ')}${unknown.length > 5 ? ', …' : ''} not in this model`,
      );
    }
  }

  /** Disposes every variable. */
  dispose(): void {
    for (const e of this.entries.values()) e.variable.dispose();
    this.entries.clear();
  }
}
