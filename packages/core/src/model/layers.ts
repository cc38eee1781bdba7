/**
 * The Transformer's reusable units — attention (causal self, bidirectional self, cross), MLP, and a block
 * that wraps its sublayers in the norm strategy's residual sites — composed by the decoder-only GPT, the
 * encoder and the encoder-decoder (nanoGPT's `CausalSelfAttention`, `MLP` and `Block`).
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KVCache } from '../kernels/kv-cache.js';
import type {
  AnyNormStrategy,
  Architecture,
  InitRequest,
  NormContext,
  NormKind,
  ResidualSite,
  SublayerSite,
} from '../norm/contract.js';
import { getNorm, type NormSelection } from '../norm/registry.js';
import { applyRope, batchMatmul, causalSelfAttention, geluErf, geluTanh, linear, swiGLU } from '../ops.js';
import { type InitSpec, initValues, type ParamRole, ParamStore } from '../params.js';
import type { Rng } from '../util/rng.js';
import type { AttentionObserver } from './attention-entropy.js';
import type { Activation } from './gpt-config.js';
import { NormInputRecorder, ParamWeightHost } from './host.js';

/** Per-forward-pass state shared by the embedding, the blocks and the head. */
export interface RunContext {
  /** Sequences in the batch. */
  B: number;
  /** Positions per sequence in this stack's stream. */
  T: number;
  /** Dropout calls so far (each gets its own seed, so recomputation replays the same masks). */
  dropCount: number;
  /** Dropout with this pass's seed (undefined when not training or the rate is 0). */
  dropout: ((x: tf.Tensor) => tf.Tensor) | undefined;
  /** RoPE tables `[T, headDim]` of this pass's positions (RoPE models only). */
  rope:
    | {
        /** Cosines of the rotation angles, `[T, headDim]`. */
        cos: tf.Tensor;
        /** Sines of the rotation angles, `[T, headDim]`. */
        sin: tf.Tensor;
      }
    | undefined;
  /** Additive attention mask: `[T, T]` causal, or `[B, 1, 1, T]` key padding (bidirectional). */
  mask: tf.Tensor | undefined;
  /** Incremental decoding: attend over (and append to) this cache instead of the block's own positions. */
  kv?: KVCache;
  /** Diagnostics: receives each GAU layer's attention weights (see `ForwardOptions.observeAttention`). */
  observeAttention?: AttentionObserver;
}

/** Shape and init settings the units read from their model's config. */
export interface UnitSettings {
  /** Width `d` of the residual stream. */
  readonly dModel: number;
  /** Hidden width of the MLP. */
  readonly dFF: number;
  /** Attention heads per block (head width `dModel / nHeads`). */
  readonly nHeads: number;
  /** Whether the linear maps have biases. */
  readonly bias: boolean;
  /** The MLP's activation. */
  readonly activation: Activation;
  /** Norm layer the strategy's sites use (LayerNorm or RMSNorm). */
  readonly normKind: NormKind;
  /** Epsilon added to the variance in each norm. */
  readonly normEps: number;
  /** Whether the norms have a learned bias. */
  readonly normBias: boolean;
  /** False: parameter-free norms (no gain, no bias). Absent: true. */
  readonly normAffine?: boolean;
  /** Standard deviation of the GPT-2 normal init. */
  readonly initStd: number;
  /** Base init of the sublayer matrices: GPT-2 normal or Xavier-normal (see {@link UnitBuilder.baseInits}). */
  readonly initScheme: 'gpt2' | 'xavier';
  /** The model family the units belong to. */
  readonly architecture: Architecture;
}

/**
 * What the units need to create their weights: the model's parameter store, its init RNG, the norm
 * strategy with its options, and the recorder of norm inputs. One per model.
 */
export class UnitBuilder {
  constructor(
    /** The model's parameter store, which receives every weight. */
    readonly params: ParamStore,
    /** The model's init RNG (weights are drawn from it in creation order). */
    readonly rng: Rng,
    /** The residual-normalization strategy that creates sites and may override inits. */
    readonly strategy: AnyNormStrategy,
    /** The strategy's validated options. */
    // biome-ignore lint/suspicious/noExplicitAny: the strategy's own validated options
    readonly opts: any,
    /** Records each norm's input norm while diagnostics are on. */
    readonly recorder: NormInputRecorder,
    /** Shape and init settings from the model's config. */
    readonly settings: UnitSettings,
  ) {}

  /** The strategy's init for one sublayer weight (`req.base` when the strategy has no `init` hook). */
  private initFor(ctx: NormContext, req: Omit<InitRequest, 'base'>, base: InitSpec): InitSpec {
    return this.strategy.init ? this.strategy.init({ ...req, base }, ctx, this.opts) : base;
  }

  /** Values of a `[fanIn, fanOut]` sublayer matrix, initialized as the strategy chooses. */
  matrix(
    ctx: NormContext,
    role: ParamRole,
    fanIn: number,
    fanOut: number,
    base: InitSpec,
    slice?: 'q' | 'k' | 'v',
  ): Float32Array {
    const spec = this.initFor(
      ctx,
      { role, kind: 'weight', fanIn, fanOut, ...(slice ? { slice } : {}) },
      base,
    );
    return initValues(spec, [fanIn, fanOut], this.rng, fanIn, fanOut);
  }

  /** Values of a bias of `n` outputs (base init zeros). */
  biasValues(
    ctx: NormContext,
    role: ParamRole,
    n: number,
    fanIn: number,
    slice?: 'q' | 'k' | 'v',
  ): Float32Array {
    const spec = this.initFor(
      ctx,
      { role, kind: 'bias', fanIn, fanOut: n, ...(slice ? { slice } : {}) },
      { kind: 'zeros' },
    );
    return initValues(spec, [n], this.rng, fanIn, n);
  }

  /**
   * Base init of the sublayer matrices of a stack of `numLayers` blocks: GPT-2's N(0, initStd²) with output
   * projections ÷√(2·numLayers), or Xavier-normal (gain 1) everywhere, the DeepNet paper's base.
   */
  baseInits(numLayers: number): {
    /** Init of the input-side matrices (QKV, cross q/kv, MLP fc and gate). */
    normal: InitSpec;
    /** Init of the output projections (attention and MLP `proj`). */
    proj: InitSpec;
  } {
    const s = this.settings;
    if (s.initScheme === 'xavier')
      return { normal: { kind: 'xavier-normal', gain: 1 }, proj: { kind: 'xavier-normal', gain: 1 } };
    return {
      normal: { kind: 'normal', std: s.initStd },
      proj: { kind: 'normal', std: s.initStd / Math.sqrt(2 * numLayers) },
    };
  }

  /** Adds a parameter of a block. */
  add(name: string, shape: number[], role: ParamRole, values: Float32Array, layer: number): tf.Variable {
    const decay = role !== 'bias';
    return this.params.add({ name, shape, role, decay, layer }, tf.tensor(values, shape, 'float32'));
  }

  /**
   * A fused projection `<prefix>weight` `[d, slices·d]` whose column blocks are the given slices (each
   * initialized separately, as the strategy chooses for `q`, `k`, `v`), and its bias `[slices·d]`.
   */
  fused(
    prefix: string,
    ctx: NormContext,
    slices: readonly ('q' | 'k' | 'v')[],
    base: InitSpec,
    layer: number,
  ): [tf.Variable, tf.Variable | undefined] {
    const d = this.settings.dModel;
    const n = slices.length;
    const values = interleaveColumns(
      d,
      slices.map((sl) => this.matrix(ctx, 'qkv', d, d, base, sl)),
    );
    const w = this.add(`${prefix}weight`, [d, n * d], 'qkv', values, layer);
    if (!this.settings.bias) return [w, undefined];
    const all = new Float32Array(n * d);
    slices.forEach((sl, j) => {
      all.set(this.biasValues(ctx, 'qkv', d, d, sl), j * d);
    });
    return [w, this.add(`${prefix}bias`, [n * d], 'bias', all, layer)];
  }

  /** A linear map `<prefix>weight` `[fanIn, fanOut]` of `role` and its bias `[fanOut]` (when the model has biases). */
  linear(
    prefix: string,
    ctx: NormContext,
    role: ParamRole,
    fanIn: number,
    fanOut: number,
    base: InitSpec,
    layer: number,
  ): [tf.Variable, tf.Variable | undefined] {
    const w = this.add(
      `${prefix}weight`,
      [fanIn, fanOut],
      role,
      this.matrix(ctx, role, fanIn, fanOut, base),
      layer,
    );
    if (!this.settings.bias) return [w, undefined];
    return [w, this.add(`${prefix}bias`, [fanOut], 'bias', this.biasValues(ctx, role, fanOut, fanIn), layer)];
  }

  /** The residual site the strategy creates for sublayer `ctx.site` with weights under `prefix`. */
  site(ctx: NormContext, prefix: string, layer: number): ResidualSite {
    const s = this.settings;
    const host = new ParamWeightHost(
      prefix,
      this.params,
      this.rng,
      {
        normKind: s.normKind,
        eps: s.normEps,
        normBias: s.normBias,
        dModel: s.dModel,
        layer,
        ...(s.normAffine === false ? { affine: false } : {}),
      },
      this.recorder,
    );
    return this.strategy.createSite(ctx, this.opts, host);
  }
}

/** Where a block sits: its stack context (without layer and site) plus its name prefix and global layer index. */
export interface BlockPlace {
  /** Context shared by the block's sites (architecture, stack, depths, widths). */
  readonly ctx: Omit<NormContext, 'layer' | 'site'>;
  /** 0-based index within its stack. */
  readonly index: number;
  /** The `layer` recorded in the parameters' specs (unique across stacks). */
  readonly layer: number;
  /** Parameter name prefix, e.g. `blocks.3.` or `decoder.blocks.3.`. */
  readonly prefix: string;
}

function contextOf(place: BlockPlace, site: SublayerSite): NormContext {
  return { ...place.ctx, layer: place.index, site };
}

function dropoutOf(rc: RunContext): (t: tf.Tensor) => tf.Tensor {
  return (t) => (rc.dropout ? rc.dropout(t) : t);
}

/** Splits `[B·T, d]` into heads `[B, H, T, hd]`. */
export function toHeads(t: tf.Tensor, B: number, T: number, H: number): tf.Tensor4D {
  const hd = t.shape[1]! / H;
  return tf.transpose(tf.reshape(t, [B, T, H, hd]), [0, 2, 1, 3]) as tf.Tensor4D;
}

/** Merges heads `[B, H, T, hd]` into `[B·T, d]`. */
export function fromHeads(y: tf.Tensor4D): tf.Tensor2D {
  const [B, H, T, hd] = y.shape;
  return tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [B * T, H * hd]) as tf.Tensor2D;
}

/**
 * Scaled dot-product attention `softmax(q·kᵀ/√hd + mask)·v` of heads `[B, H, Tq, hd]` against
 * `[B, H, Tk, hd]`, with an additive mask broadcastable to `[B, H, Tq, Tk]` and optional dropout on the
 * probabilities. Returns `[B, H, Tq, hd]`.
 */
export function scaledDotAttention(
  q: tf.Tensor4D,
  k: tf.Tensor4D,
  v: tf.Tensor4D,
  mask?: tf.Tensor,
  dropout?: (t: tf.Tensor) => tf.Tensor,
): tf.Tensor4D {
  const [B, H, Tq, hd] = q.shape;
  const Tk = k.shape[2];
  const q3 = tf.reshape(q, [B * H, Tq, hd]) as tf.Tensor3D;
  const k3 = tf.reshape(k, [B * H, Tk, hd]) as tf.Tensor3D;
  const v3 = tf.reshape(v, [B * H, Tk, hd]) as tf.Tensor3D;
  let scores: tf.Tensor = tf.mul(
    batchMatmul(q3, tf.transpose(k3, [0, 2, 1]) as tf.Tensor3D),
    1 / Math.sqrt(hd),
  );
  if (mask) scores = tf.reshape(tf.add(tf.reshape(scores, [B, H, Tq, Tk]), mask), [B * H, Tq, Tk]);
  const probs = tf.softmax(scores);
  const att = (dropout ? dropout(probs) : probs) as tf.Tensor3D;
  return tf.reshape(batchMatmul(att, v3), [B, H, Tq, hd]) as tf.Tensor4D;
}

/**
 * Additive key-padding mask `[B, 1, 1, T]` of ids `[B, T]`: 0 where the id is a real token, −1e9 where it
 * equals `padId` (no query attends to padding). A row that is all padding stays finite (uniform attention).
 */
export function paddingMask(ids: tf.Tensor2D, padId: number): tf.Tensor4D {
  const [B, T] = ids.shape;
  return tf.reshape(tf.mul(tf.cast(tf.equal(ids, padId), 'float32'), -1e9), [B, 1, 1, T]) as tf.Tensor4D;
}

/**
 * Multi-head self-attention with a fused QKV projection: `blocks.{i}.attn.qkv.weight` `[d, 3d]` (columns
 * q | k | v, heads contiguous in each) and `…attn.proj.weight` `[d, d]` (+ biases). Causal (decoders, with
 * Strata's fused wasm kernel and the KV cache), or bidirectional with a key-padding mask (encoders).
 */
export class SelfAttention {
  /** Fused QKV weight `[d, 3d]` (columns q | k | v). */
  readonly qkvW: tf.Variable;
  /** Fused QKV bias `[3d]` (absent when the model has no biases). */
  readonly qkvB?: tf.Variable;
  /** Output projection weight `[d, d]`. */
  readonly projW: tf.Variable;
  /** Output projection bias `[d]` (absent when the model has no biases). */
  readonly projB?: tf.Variable;

  constructor(
    u: UnitBuilder,
    place: BlockPlace,
    /** Whether each position attends only to itself and earlier ones (decoders); otherwise bidirectional. */
    readonly causal: boolean,
    site: SublayerSite = 'attn',
  ) {
    const s = u.settings;
    const d = s.dModel;
    const ctx = contextOf(place, site);
    const { normal, proj } = u.baseInits(place.ctx.numLayers);
    const p = `${place.prefix}${site}.`;
    [this.qkvW, this.qkvB] = u.fused(`${p}qkv.`, ctx, ['q', 'k', 'v'], normal, place.layer);
    [this.projW, this.projB] = u.linear(`${p}proj.`, ctx, 'attn_out', d, d, proj, place.layer);
  }

  /** The branch on its (normalized) input `h` `[B·T, d]`; `inner` is the strategy's norm before `proj`. */
  forward(
    h: tf.Tensor2D,
    rc: RunContext,
    heads: number,
    cacheLayer: number,
    inner?: (x: tf.Tensor) => tf.Tensor,
  ): tf.Tensor2D {
    const { B, T } = rc;
    const qkv = linear(h, this.qkvW as tf.Tensor2D, this.qkvB as tf.Tensor1D | undefined);
    let merged: tf.Tensor2D;
    if (rc.kv) merged = this.cached(qkv, rc, heads, cacheLayer);
    else if (this.causal) {
      merged = causalSelfAttention(qkv, {
        batch: B,
        seqLen: T,
        heads,
        ...(rc.rope ? { rope: rc.rope } : {}),
        ...(rc.mask ? { mask: rc.mask } : {}),
        ...(rc.dropout ? { dropout: rc.dropout } : {}),
      });
    } else {
      const [q0, k0, v0] = tf.split(qkv, 3, 1);
      let q = toHeads(q0!, B, T, heads);
      let k = toHeads(k0!, B, T, heads);
      if (rc.rope) {
        q = applyRope(q, rc.rope.cos, rc.rope.sin) as tf.Tensor4D;
        k = applyRope(k, rc.rope.cos, rc.rope.sin) as tf.Tensor4D;
      }
      merged = fromHeads(scaledDotAttention(q, k, toHeads(v0!, B, T, heads), rc.mask, rc.dropout));
    }
    if (inner) merged = inner(merged) as tf.Tensor2D;
    return dropoutOf(rc)(
      linear(merged, this.projW as tf.Tensor2D, this.projB as tf.Tensor1D | undefined),
    ) as tf.Tensor2D;
  }

  /** Incremental mode: the new positions against the KV cache (layer `cacheLayer`). */
  private cached(qkv: tf.Tensor2D, rc: RunContext, H: number, cacheLayer: number): tf.Tensor2D {
    const { B, T: n } = rc;
    const cache = rc.kv!;
    if (cache.fused) return cache.attendFused(cacheLayer, qkv, rc.rope);
    const [q0, k0, v0] = tf.split(qkv, 3, 1);
    let q = toHeads(q0!, B, n, H);
    let k = toHeads(k0!, B, n, H);
    if (rc.rope) {
      q = applyRope(q, rc.rope.cos, rc.rope.sin) as tf.Tensor4D;
      k = applyRope(k, rc.rope.cos, rc.rope.sin) as tf.Tensor4D;
    }
    return fromHeads(cache.attend(cacheLayer, q, k, toHeads(v0!, B, n, H)));
  }

  /** Keys and values of `h` `[B·T, d]` as heads, for a decoder cache that holds them itself. */
  projectQKV(h: tf.Tensor2D, B: number, T: number, H: number): [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D] {
    const qkv = linear(h, this.qkvW as tf.Tensor2D, this.qkvB as tf.Tensor1D | undefined);
    const [q, k, v] = tf.split(qkv, 3, 1);
    return [toHeads(q!, B, T, H), toHeads(k!, B, T, H), toHeads(v!, B, T, H)];
  }

  /** The output projection of merged heads `[rows, d]` (after the strategy's inner norm, if any). */
  project(merged: tf.Tensor2D, inner?: (x: tf.Tensor) => tf.Tensor): tf.Tensor2D {
    const m = inner ? (inner(merged) as tf.Tensor2D) : merged;
    return linear(m, this.projW as tf.Tensor2D, this.projB as tf.Tensor1D | undefined);
  }
}

/**
 * Cross-attention of a decoder over the encoder's output ("memory"): `…cross.q.weight` `[d, d]` on the
 * decoder stream, `…cross.kv.weight` `[d, 2d]` (columns k | v) on the memory, `…cross.proj.weight` `[d, d]`
 * (+ biases). Init requests carry role `qkv` with slices `q`, `k`, `v` and `attn_out` for the projection,
 * so DeepNorm's β reaches the cross-attention's v and out (DeepNet §4.3) with the decoder's context.
 */
export class CrossAttention {
  /** Query weight `[d, d]` on the decoder stream. */
  readonly qW: tf.Variable;
  /** Query bias `[d]` (absent when the model has no biases). */
  readonly qB?: tf.Variable;
  /** Fused key/value weight `[d, 2d]` (columns k | v) on the memory. */
  readonly kvW: tf.Variable;
  /** Fused key/value bias `[2d]` (absent when the model has no biases). */
  readonly kvB?: tf.Variable;
  /** Output projection weight `[d, d]`. */
  readonly projW: tf.Variable;
  /** Output projection bias `[d]` (absent when the model has no biases). */
  readonly projB?: tf.Variable;

  constructor(u: UnitBuilder, place: BlockPlace) {
    const s = u.settings;
    const d = s.dModel;
    const ctx = contextOf(place, 'cross');
    const { normal, proj } = u.baseInits(place.ctx.numLayers);
    const p = `${place.prefix}cross.`;
    [this.qW, this.qB] = u.fused(`${p}q.`, ctx, ['q'], normal, place.layer);
    [this.kvW, this.kvB] = u.fused(`${p}kv.`, ctx, ['k', 'v'], normal, place.layer);
    [this.projW, this.projB] = u.linear(`${p}proj.`, ctx, 'attn_out', d, d, proj, place.layer);
  }

  /** Keys and values of the memory `[B·S, d]` as heads `[B, H, S, hd]` (computed once per source). */
  memoryKV(memory: tf.Tensor2D, B: number, S: number, H: number): [tf.Tensor4D, tf.Tensor4D] {
    const kv = linear(memory, this.kvW as tf.Tensor2D, this.kvB as tf.Tensor1D | undefined);
    const [k, v] = tf.split(kv, 2, 1);
    return [toHeads(k!, B, S, H), toHeads(v!, B, S, H)];
  }

  /**
   * The branch: queries from `h` `[B·T, d]` against the memory's keys/values, `memMask` the source padding
   * mask `[B, 1, 1, S]`.
   */
  forward(
    h: tf.Tensor2D,
    kv: [tf.Tensor4D, tf.Tensor4D],
    memMask: tf.Tensor | undefined,
    rc: RunContext,
    heads: number,
    inner?: (x: tf.Tensor) => tf.Tensor,
  ): tf.Tensor2D {
    const q = toHeads(
      linear(h, this.qW as tf.Tensor2D, this.qB as tf.Tensor1D | undefined),
      rc.B,
      rc.T,
      heads,
    );
    let merged = fromHeads(scaledDotAttention(q, kv[0], kv[1], memMask, rc.dropout));
    if (inner) merged = inner(merged) as tf.Tensor2D;
    return dropoutOf(rc)(
      linear(merged, this.projW as tf.Tensor2D, this.projB as tf.Tensor1D | undefined),
    ) as tf.Tensor2D;
  }
}

/**
 * The position-wise MLP: `…mlp.fc.weight` `[d, dFF]`, `…mlp.gate.weight` (SwiGLU only), `…mlp.proj.weight`
 * `[dFF, d]` (+ biases).
 */
export class MLP {
  /** Input weight `[d, dFF]`. */
  readonly fcW: tf.Variable;
  /** Input bias `[dFF]` (absent when the model has no biases). */
  readonly fcB?: tf.Variable;
  /** Gate weight `[d, dFF]` (SwiGLU only). */
  readonly gateW?: tf.Variable;
  /** Gate bias `[dFF]` (SwiGLU with biases only). */
  readonly gateB?: tf.Variable;
  /** Output projection weight `[dFF, d]`. */
  readonly outW: tf.Variable;
  /** Output projection bias `[d]` (absent when the model has no biases). */
  readonly outB?: tf.Variable;

  constructor(u: UnitBuilder, place: BlockPlace) {
    const s = u.settings;
    const d = s.dModel;
    const f = s.dFF;
    const ctx = contextOf(place, 'mlp');
    const { normal, proj } = u.baseInits(place.ctx.numLayers);
    const p = `${place.prefix}mlp.`;
    const L = place.layer;
    [this.fcW, this.fcB] = u.linear(`${p}fc.`, ctx, 'ffn_in', d, f, normal, L);
    if (s.activation === 'swiglu')
      [this.gateW, this.gateB] = u.linear(`${p}gate.`, ctx, 'ffn_gate', d, f, normal, L);
    [this.outW, this.outB] = u.linear(`${p}proj.`, ctx, 'ffn_out', f, d, proj, L);
  }

  /** The branch on `h` `[rows, d]`; `inner` is the strategy's norm on the hidden activations. */
  forward(
    h: tf.Tensor2D,
    activation: Activation,
    rc: RunContext,
    inner?: (x: tf.Tensor) => tf.Tensor,
  ): tf.Tensor2D {
    const a = linear(h, this.fcW as tf.Tensor2D, this.fcB as tf.Tensor1D | undefined);
    let hidden: tf.Tensor;
    switch (activation) {
      case 'gelu':
        hidden = geluTanh(a);
        break;
      case 'gelu_erf':
        hidden = geluErf(a);
        break;
      case 'relu':
        hidden = tf.relu(a);
        break;
      case 'swiglu':
        hidden = swiGLU(a, linear(h, this.gateW as tf.Tensor2D, this.gateB as tf.Tensor1D | undefined));
        break;
    }
    if (inner) hidden = inner(hidden);
    return dropoutOf(rc)(
      linear(hidden as tf.Tensor2D, this.outW as tf.Tensor2D, this.outB as tf.Tensor1D | undefined),
    ) as tf.Tensor2D;
  }
}

/** Cross-attention inputs of a decoder block: the memory's keys/values and the source padding mask. */
export interface Memory {
  /** Keys and values of the encoder output, each `[B, H, S, hd]` (see {@link CrossAttention.memoryKV}). */
  readonly kv: [tf.Tensor4D, tf.Tensor4D];
  /** Additive source padding mask `[B, 1, 1, S]` (undefined when the source has no padding). */
  readonly mask: tf.Tensor | undefined;
}

/**
 * One Transformer block: self-attention, optional cross-attention (decoder of an encoder-decoder) and the
 * MLP, each wrapped in the residual site the norm strategy creates for it with the block's stack context.
 * Weights are created in that order (site, then sublayer), so the init stream is the same for every model.
 */
export class TransformerBlock {
  /** Residual site wrapping the self-attention. */
  readonly attnSite: ResidualSite;
  /** The self-attention sublayer. */
  readonly attn: SelfAttention;
  /** Residual site wrapping the cross-attention (decoder blocks of an encoder-decoder only). */
  readonly crossSite?: ResidualSite;
  /** The cross-attention sublayer (decoder blocks of an encoder-decoder only). */
  readonly cross?: CrossAttention;
  /** Residual site wrapping the MLP. */
  readonly mlpSite: ResidualSite;
  /** The MLP sublayer. */
  readonly mlp: MLP;

  constructor(
    private readonly u: UnitBuilder,
    /** Where the block sits: stack context, index, layer and parameter name prefix. */
    readonly place: BlockPlace,
    options: { causal: boolean; cross: boolean },
  ) {
    this.attnSite = u.site(contextOf(place, 'attn'), `${place.prefix}attn.`, place.layer);
    this.attn = new SelfAttention(u, place, options.causal);
    if (options.cross) {
      this.crossSite = u.site(contextOf(place, 'cross'), `${place.prefix}cross.`, place.layer);
      this.cross = new CrossAttention(u, place);
    }
    this.mlpSite = u.site(contextOf(place, 'mlp'), `${place.prefix}mlp.`, place.layer);
    this.mlp = new MLP(u, place);
  }

  /**
   * The block on the residual stream `[B·T, d]`. `cacheLayer` is the KV-cache slot of this block (used when
   * `rc.kv` is set); `memory` is required for a block with cross-attention.
   */
  forward(x: tf.Tensor2D, rc: RunContext, cacheLayer = this.place.index, memory?: Memory): tf.Tensor2D {
    const s = this.u.settings;
    x = this.attnSite.forward(x, (h) => this.attn.forward(h, rc, s.nHeads, cacheLayer, this.attnSite.inner));
    x = this.crossForward(x, rc, memory);
    return this.mlpSite.forward(x, (h) => this.mlp.forward(h, s.activation, rc, this.mlpSite.inner));
  }

  /** The cross-attention sublayer (identity for blocks without one). */
  crossForward(x: tf.Tensor2D, rc: RunContext, memory?: Memory): tf.Tensor2D {
    if (!this.cross || !this.crossSite) return x;
    if (!memory) throw new Error(`${this.place.prefix}cross: a decoder block needs the encoder output`);
    const cross = this.cross;
    const site = this.crossSite;
    return site.forward(x, (h) =>
      cross.forward(h, memory.kv, memory.mask, rc, this.u.settings.nHeads, site.inner),
    );
  }

  /** The MLP sublayer alone (for decoders that run attention through their own cache). */
  mlpForward(x: tf.Tensor2D, rc: RunContext): tf.Tensor2D {
    return this.mlpSite.forward(x, (h) =>
      this.mlp.forward(h, this.u.settings.activation, rc, this.mlpSite.inner),
    );
  }
}

/** A layer of a stack on the residual stream: a {@link TransformerBlock} or a GAU layer. */
export interface ResidualBlock {
  /** Where the layer sits. */
  readonly place: BlockPlace;
  /** The layer on the residual stream `[B·T, d]`; `cacheLayer` is its KV-cache slot (used when `rc.kv` is set). */
  forward(x: tf.Tensor2D, rc: RunContext, cacheLayer?: number): tf.Tensor2D;
}

/** Concatenates `[rows, cols]` matrices (given as flat row-major arrays) along columns. */
export function interleaveColumns(rows: number, mats: Float32Array[]): Float32Array {
  const cols = mats.map((m) => m.length / rows);
  const total = cols.reduce((a, b) => a + b, 0);
  const out = new Float32Array(rows * total);
  for (let r = 0; r < rows; r++) {
    let off = 0;
    mats.forEach((m, j) => {
      out.set(m.subarray(r * cols[j]!, (r + 1) * cols[j]!), r * total + off);
      off += cols[j]!;
    });
  }
  return out;
}

/**
 * What every model built from these units shares: the parameter store, the norm strategy (its post-step
 * hook) and the recorder of norm inputs for the depth diagnostics.
 */
export abstract class StrategyModel {
  /** All parameters by name. */
  readonly params = new ParamStore();
  /** Records each norm's input norm while diagnostics are on. */
  protected readonly recorder = new NormInputRecorder();
  /** The residual-normalization strategy of every site. */
  protected readonly strategy: AnyNormStrategy;

  constructor(private readonly selection: NormSelection) {
    this.strategy = getNorm(selection.name);
  }

  /** The strategy's hook after every optimizer step. */
  afterStep(): void {
    this.strategy.afterStep?.(this.params, this.selection.options);
  }

  /** Turns recording of norm inputs on or off (off clears what was recorded). */
  setDiagnostics(on: boolean): void {
    this.recorder.enabled = on;
    if (!on) this.recorder.clear();
  }

  /** Recorded `norm name → mean ‖input‖₂` since the last call. */
  takeNormInputs(): Promise<Map<string, number>> {
    return this.recorder.take();
  }

  /** The summary line of the strategy and the norm kind. */
  protected normSummary(normKind: NormKind, eps: number): string {
    const n = this.selection;
    return `norm strategy ${n.name}@${n.version} ${JSON.stringify(n.options)} over ${normKind} (eps ${eps})`;
  }

  /** Frees the parameters and anything recorded. */
  protected disposeParams(): void {
    this.params.dispose();
    this.recorder.clear();
  }
}
