/**
 * The gated attention unit (GAU; Hua, Dai, Liu, Le, "Transformer Quality in Linear Time", arXiv 2202.10447;
 * GAU-α, Su Jianlin, https://kexue.fm/archives/9052) as a layer type: one GAU replaces an attention + MLP
 * pair and is wrapped by the norm strategy as one residual sublayer (site `gau`).
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { cachedCausalMask } from '../kernels/kv-cache.js';
import type { NormContext, ResidualSite } from '../norm/contract.js';
import { applyRope, batchMatmul, linear, silu } from '../ops.js';
import type { AttentionNormalization } from './gpt-config.js';
import { type BlockPlace, interleaveColumns, type RunContext, type UnitBuilder } from './layers.js';

/** Shape settings of a GAU layer (from the model config). */
export interface GAUSettings {
  /** Width e of u and v. */
  readonly gauDim: number;
  /** Key size s of the shared projection z (q and k). */
  readonly gauKeyDim: number;
  /** How scores become attention weights. */
  readonly attentionNorm: AttentionNormalization;
  /** The `log base` of `softmax_plus` (the length at which its scale is 1). */
  readonly softmaxPlusBase: number;
}

/**
 * Attention weights `A` `[B, Tq, Tk]` of raw scores `a` `[B, Tq, Tk]` (already divided by √s) under an
 * additive mask broadcastable to them (0 where a query may attend, −1e9 where not; undefined: all keys).
 * `n`, the number of keys each query may attend to, is counted from the mask (causal: grows with the
 * position; padding: pads excluded), at least 1.
 * - `softmax`: `softmax(a + mask)`
 * - `relu2`: `relu(a + mask)² / n` (FLASH's squared ReLU)
 * - `softmax_plus`: `softmax(a · ln n / ln base + mask)` (GAU-α; the mask is added after the scale, so a
 *   query with n = 1 still gives its masked keys no weight)
 */
export function normalizeScores(
  a: tf.Tensor3D,
  mask: tf.Tensor | undefined,
  method: AttentionNormalization,
  base: number,
): tf.Tensor3D {
  if (method === 'softmax') return tf.softmax(mask ? tf.add(a, mask) : a) as tf.Tensor3D;
  const Tk = a.shape[2];
  const n: tf.Tensor | number = mask
    ? tf.maximum(tf.sum(tf.cast(tf.greater(mask, -1), 'float32'), -1, true), 1)
    : Tk;
  if (method === 'relu2') {
    const r = tf.relu(mask ? tf.add(a, mask) : a);
    return tf.div(tf.mul(r, r), n) as tf.Tensor3D;
  }
  const scale = typeof n === 'number' ? Math.log(n) / Math.log(base) : tf.div(tf.log(n), Math.log(base));
  const scaled = tf.mul(a, scale);
  return tf.softmax(mask ? tf.add(scaled, mask) : scaled) as tf.Tensor3D;
}

/**
 * One gated attention unit (single head), on its input `h` `[B·T, d]`:
 *
 * `[u | v | z] = SiLU(h·W_in (+ b))`, u, v `[·, e]`, z `[·, s]`; `q = z ⊙ γ_q (+ β_q)`, `k = z ⊙ γ_k (+ β_k)`;
 * RoPE on q and k; `a = q·kᵀ/√s`; `A = normalize(a)`; `out = (u ⊙ A·v)·W_proj (+ b)`.
 *
 * Weights: `….gau.in.weight` `[d, 2e+s]` (columns u | v | z) and `.bias` `[2e+s]`, `….gau.q_scale` /
 * `….gau.k_scale` `[s]` (init 1), `….gau.q_offset` / `….gau.k_offset` `[s]` (init 0; with biases only),
 * `….gau.proj.weight` `[e, d]` and `.bias` `[d]`. Init requests: u as `ffn_gate`, v as the `v` slice of
 * `qkv`, z as `qkv` without a slice (DeepNorm's β scales u, v and the projection, never z), the projection
 * as `attn_out`.
 */
export class GatedAttentionUnit {
  /** Input projection `[d, 2e+s]` (columns u | v | z). */
  readonly inW: tf.Variable;
  /** Input projection bias `[2e+s]` (absent without biases). */
  readonly inB?: tf.Variable;
  /** Per-dimension scale γ_q `[s]`. */
  readonly qScale: tf.Variable;
  /** Per-dimension scale γ_k `[s]`. */
  readonly kScale: tf.Variable;
  /** Per-dimension offset β_q `[s]` (absent without biases). */
  readonly qOffset?: tf.Variable;
  /** Per-dimension offset β_k `[s]` (absent without biases). */
  readonly kOffset?: tf.Variable;
  /** Output projection `[e, d]`. */
  readonly projW: tf.Variable;
  /** Output projection bias `[d]` (absent without biases). */
  readonly projB?: tf.Variable;

  constructor(
    u: UnitBuilder,
    place: BlockPlace,
    /** Whether each position attends only to itself and earlier ones. */
    readonly causal: boolean,
    /** Widths and normalization. */
    readonly g: GAUSettings,
  ) {
    const d = u.settings.dModel;
    const { gauDim: e, gauKeyDim: s } = g;
    const ctx: NormContext = { ...place.ctx, layer: place.index, site: 'gau' };
    // GPT-2's output-projection scale 1/√(residual sublayers): a GAU layer is one sublayer, so L layers count
    // as L/2 blocks (std/√L, not std/√(2L)).
    const { normal, proj } = u.baseInits(place.ctx.numLayers / 2);
    const p = `${place.prefix}gau.`;
    const L = place.layer;
    const values = interleaveColumns(d, [
      u.matrix(ctx, 'ffn_gate', d, e, normal),
      u.matrix(ctx, 'qkv', d, e, normal, 'v'),
      u.matrix(ctx, 'qkv', d, s, normal),
    ]);
    // FLOPs: QKᵀ over s and A·V over e per token, i.e. a Transformer attention of width (s + e)/2.
    this.inW = u.params.add(
      {
        name: `${p}in.weight`,
        shape: [d, 2 * e + s],
        role: 'ffn_in',
        decay: true,
        layer: L,
        meta: { attentionWidth: (s + e) / 2 },
      },
      tf.tensor(values, [d, 2 * e + s], 'float32'),
    );
    if (u.settings.bias) {
      const b = new Float32Array(2 * e + s);
      b.set(u.biasValues(ctx, 'ffn_gate', e, d), 0);
      b.set(u.biasValues(ctx, 'qkv', e, d, 'v'), e);
      b.set(u.biasValues(ctx, 'qkv', s, d), 2 * e);
      this.inB = u.add(`${p}in.bias`, [2 * e + s], 'bias', b, L);
    }
    const vector = (name: string, value: number) =>
      u.params.add(
        { name: `${p}${name}`, shape: [s], role: 'other', decay: false, layer: L },
        tf.fill([s], value),
      );
    this.qScale = vector('q_scale', 1);
    this.kScale = vector('k_scale', 1);
    if (u.settings.bias) {
      this.qOffset = vector('q_offset', 0);
      this.kOffset = vector('k_offset', 0);
    }
    [this.projW, this.projB] = u.linear(`${p}proj.`, ctx, 'attn_out', e, d, proj, L);
  }

  /**
   * The branch on its (normalized) input `h` `[B·T, d]`; `inner` is the strategy's norm on `u ⊙ A·v`
   * `[B·T, e]` before the projection (SubLN). With `rc.kv`, the new positions' k and v are appended to the
   * cache slot `cacheLayer` and attend over all cached positions.
   */
  forward(
    h: tf.Tensor2D,
    rc: RunContext,
    cacheLayer: number,
    inner?: (x: tf.Tensor) => tf.Tensor,
  ): tf.Tensor2D {
    const { B, T } = rc;
    const { gauDim: e, gauKeyDim: s } = this.g;
    const x = silu(linear(h, this.inW as tf.Tensor2D, this.inB as tf.Tensor1D | undefined));
    const [u, v, z] = tf.split(x, [e, e, s], 1) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
    const affine = (scale: tf.Variable, offset: tf.Variable | undefined) => {
      const y = tf.mul(z, scale);
      return tf.reshape(offset ? tf.add(y, offset) : y, [B, T, s]);
    };
    let q = affine(this.qScale, this.qOffset);
    let k = affine(this.kScale, this.kOffset);
    if (rc.rope) {
      q = applyRope(q, rc.rope.cos, rc.rope.sin);
      k = applyRope(k, rc.rope.cos, rc.rope.sin);
    }
    let v3 = tf.reshape(v, [B, T, e]) as tf.Tensor3D;
    let mask: tf.Tensor | undefined;
    if (rc.kv) {
      const p0 = rc.kv.length;
      const [kAll, vAll] = rc.kv.append(
        cacheLayer,
        tf.reshape(k, [B, 1, T, s]) as tf.Tensor4D,
        tf.reshape(v3, [B, 1, T, e]) as tf.Tensor4D,
      );
      const Tk = p0 + T;
      k = tf.reshape(kAll, [B, Tk, s]);
      v3 = tf.reshape(vAll, [B, Tk, e]) as tf.Tensor3D;
      mask = cachedCausalMask(T, p0);
    } else if (this.causal) {
      if (!rc.mask) throw new Error('a causal GAU needs the causal mask in its run context');
      mask = rc.mask;
    } else if (rc.mask) mask = tf.reshape(rc.mask, [B, 1, T]);
    const a = tf.mul(
      batchMatmul(q as tf.Tensor3D, tf.transpose(k, [0, 2, 1]) as tf.Tensor3D),
      1 / Math.sqrt(s),
    ) as tf.Tensor3D;
    let A = normalizeScores(a, mask, this.g.attentionNorm, this.g.softmaxPlusBase);
    rc.observeAttention?.(cacheLayer, A);
    if (rc.dropout) A = rc.dropout(A) as tf.Tensor3D;
    let o: tf.Tensor = tf.mul(u, tf.reshape(batchMatmul(A, v3), [B * T, e]));
    if (inner) o = inner(o);
    const out = linear(o as tf.Tensor2D, this.projW as tf.Tensor2D, this.projB as tf.Tensor1D | undefined);
    return (rc.dropout ? rc.dropout(out) : out) as tf.Tensor2D;
  }
}

/** One GAU layer: the gated attention unit inside the residual site the norm strategy creates for it (site `gau`). */
export class GAUBlock {
  /** Residual site wrapping the unit. */
  readonly site: ResidualSite;
  /** The gated attention unit. */
  readonly gau: GatedAttentionUnit;

  constructor(
    u: UnitBuilder,
    /** Where the layer sits: stack context, index, layer and parameter name prefix. */
    readonly place: BlockPlace,
    causal: boolean,
    g: GAUSettings,
  ) {
    this.site = u.site({ ...place.ctx, layer: place.index, site: 'gau' }, `${place.prefix}gau.`, place.layer);
    this.gau = new GatedAttentionUnit(u, place, causal, g);
  }

  /** The layer on the residual stream `[B·T, d]`; `cacheLayer` is its KV-cache slot (used when `rc.kv` is set). */
  forward(x: tf.Tensor2D, rc: RunContext, cacheLayer = this.place.index): tf.Tensor2D {
    return this.site.forward(x, (h) => this.gau.forward(h, rc, cacheLayer, this.site.inner));
  }
}
