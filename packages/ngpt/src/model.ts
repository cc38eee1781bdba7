import {
  type ComponentCount,
  causalMask,
  causalSelfAttention,
  embeddingLookup,
  type ForwardOptions,
  initValues,
  type LanguageModel,
  l2Normalize,
  matmul2d,
  mulLastAxis,
  NormInputRecorder,
  normalizedResidual,
  type ParamRole,
  ParamStore,
  Rng,
  ropeTables,
  type ScaleSummary,
  StrataError,
  swiGLU,
} from '@strata/core';
import * as tf from '@tensorflow/tfjs-core';
import type { NGPTConfig } from './config.js';
import { normalizeMatrices, UNIT_NORM_AXIS, unitNormalizeHost } from './normalize.js';
import { effectiveScale, type ScaleMeta, type ScaleSymbol, summarizeScales } from './scales.js';

interface Scale {
  readonly p: tf.Variable;
  readonly meta: ScaleMeta;
}

interface NGPTBlock {
  /** W_q | W_k | W_v, `[d, 3d]`. */
  readonly qkv: tf.Variable;
  readonly sQK: Scale;
  /** W_o, `[d, d]`. */
  readonly proj: tf.Variable;
  readonly alphaA: Scale;
  /** W_u, `[d, dFF]`. */
  readonly fc: tf.Variable;
  /** W_ν, `[d, dFF]`. */
  readonly gate: tf.Variable;
  readonly sU: Scale;
  readonly sNu: Scale;
  /** W_oM, `[dFF, d]`. */
  readonly out: tf.Variable;
  readonly alphaM: Scale;
}

/** Result of {@link NGPT.forwardWithHidden}. */
export interface NGPTForwardWithHidden {
  /** `[batch, seq, vocab]` logits, as {@link NGPT.forward}. */
  readonly logits: tf.Tensor3D;
  /**
   * Hidden states `[batch, seq, d]` on the hypersphere: index 0 is the embedding `h⁰ = E_in[token]`,
   * `2i + 1` is after block i's attention update, `2i + 2` after its MLP update (so `2·nLayers + 1` in all).
   * The caller disposes them.
   */
  readonly hidden: tf.Tensor3D[];
}

/**
 * nGPT, the normalized Transformer (Loshchilov, Hsieh, Sun, Ginsburg, arXiv 2410.01131), as the NVIDIA
 * reference (`NVIDIA/ngpt` `model.py`) defines it — forward pass **and** training step — with a correct
 * rotate-half RoPE (NVIDIA/ngpt issue #10). The source of each line is given on the right:
 *
 * ```text
 * h ← E_in[token]                                        paper; NVIDIA (no re-normalization of the lookup)
 * per block:
 *   q, k, v = h W_q, h W_k, h W_v                        paper; NVIDIA (no bias; input is h, not Norm(h))
 *   q ← s_qk ⊙ Norm(RoPE(q)),  k ← s_qk ⊙ Norm(RoPE(k))   NVIDIA order (RoPE, then Norm, then s_qk on q and k);
 *                                                        RoPE is HF's rotate-half, not NVIDIA's (issue #10)
 *   h_A = concat_heads(softmax(attnScale · q kᵀ + causal) v) W_o    paper, NVIDIA (attnScale = √d_k)
 *   A = Norm(h);  h ← Norm(A + α_A ⊙ (Norm(h_A) − A))    NVIDIA (`A_norm = justnorm(h)`); paper Table 1 has h for A
 *   u = s_u ⊙ (h W_u),  ν = s_ν ⊙ (h W_ν) · nuGain       paper eqs. 20–21 (nuGain = √d_model; NVIDIA puts √d
 *                                                        on both halves, the same function after Norm(h_M))
 *   h_M = (u ⊙ SiLU(ν)) W_oM                             paper, NVIDIA (SwiGLU)
 *   A = Norm(h);  h ← Norm(A + α_M ⊙ (Norm(h_M) − A))    NVIDIA, as for attention
 * logits = s_z ⊙ (h E_out)                               paper, NVIDIA (no final norm; cosines times s_z)
 * ```
 *
 * The stream is normalized again before each interpolation, as NVIDIA's block does. In the forward pass this
 * changes nothing (h is already unit-norm), but in the backward pass it removes the radial part of the
 * gradient flowing back along the residual path (into E_in's rows, for block 0), and since Adam works per
 * entry, the training step would otherwise differ from NVIDIA's in a way re-projection does not undo
 * (see the nGPT guide). Tests check whole optimizer steps against a float64 re-implementation of NVIDIA's step.
 *
 * `Norm(x) = x/√(Σx² + normEps)` over the last axis. Every scaling vector is stored as `p` (init `sScale`)
 * and used as `p · sInit/sScale`; α is used as `|·|` unless `alphaAbs` is false. No biases, no dropout, no
 * weight decay (`decay: false` on every parameter). Matrices are projected to unit norm along d_model once
 * at init and in {@link NGPT.afterStep} after every optimizer step.
 *
 * Parameter names and layouts (tfjs `[in, out]`; `meta.unitNormAxis` is the axis of length d_model):
 *
 * | name | shape | role | unit-norm axis | symbol |
 * |---|---|---|---|---|
 * | `tok_emb.weight` | [V, d] | tok_embedding | 1 | E_in |
 * | `blocks.{i}.attn.qkv.weight` | [d, 3d] | qkv | 0 | W_q \| W_k \| W_v (columns; heads contiguous) |
 * | `blocks.{i}.attn.s_qk` | [d] | scale | — | s_qk (as [H, d_k]) |
 * | `blocks.{i}.attn.proj.weight` | [d, d] | attn_out | 1 | W_o |
 * | `blocks.{i}.attn.alpha_A` | [d] | scale | — | α_A |
 * | `blocks.{i}.mlp.fc.weight` | [d, dFF] | ffn_in | 0 | W_u |
 * | `blocks.{i}.mlp.gate.weight` | [d, dFF] | ffn_gate | 0 | W_ν |
 * | `blocks.{i}.mlp.s_u` | [dFF] | scale | — | s_u |
 * | `blocks.{i}.mlp.s_nu` | [dFF] | scale | — | s_ν |
 * | `blocks.{i}.mlp.proj.weight` | [dFF, d] | ffn_out | 1 | W_oM |
 * | `blocks.{i}.mlp.alpha_M` | [d] | scale | — | α_M |
 * | `lm_head.weight` | [d, V] | head | 0 | E_outᵀ (stored transposed: logits = h · W) |
 * | `s_z` | [V] | scale | — | s_z |
 */
export class NGPT implements LanguageModel {
  /** Always `ngpt`. */
  readonly family = 'ngpt';
  /** All parameters, named as in the table above. */
  readonly params = new ParamStore();
  private readonly blocks: NGPTBlock[] = [];
  private readonly tokEmb: tf.Variable;
  private readonly head: tf.Variable;
  private readonly sZ: Scale;
  private readonly recorder = new NormInputRecorder();
  private readonly cache = new Map<string, tf.Tensor>();

  /**
   * Builds a freshly initialized model: every matrix is drawn from N(0, 1/d) with Strata's seeded RNG and
   * projected to unit norm on the host (bit-identical on every backend); every scaling vector starts at its
   * `sScale`.
   * @param config a config validated by `parseNGPTConfig` (or `ngptFamily.parseConfig`)
   */
  constructor(
    readonly config: NGPTConfig,
    options: { seed: number },
  ) {
    const c = config;
    const d = c.dModel;
    const f = c.dFF;
    const rng = Rng.derive(options.seed, 'init');
    const std = 1 / Math.sqrt(d);
    const P = this.params;
    const matrix = (
      name: string,
      shape: [number, number],
      role: ParamRole,
      axis: 0 | 1,
      symbol: string,
      layer?: number,
    ) =>
      P.add(
        {
          name,
          shape,
          role,
          decay: false,
          ...(layer !== undefined ? { layer } : {}),
          meta: { [UNIT_NORM_AXIS]: axis, symbol },
        },
        tf.tensor(
          unitNormalizeHost(initValues({ kind: 'normal', std }, shape, rng), shape, axis),
          shape,
          'float32',
        ),
      );
    const scale = (
      name: string,
      n: number,
      symbol: ScaleSymbol,
      sInit: number,
      sScale: number,
      opts: { abs?: boolean; gain?: number; layer?: number } = {},
    ): Scale => {
      const meta: ScaleMeta = { symbol, sInit, sScale, abs: opts.abs ?? false, gain: opts.gain ?? 1 };
      const p = P.add(
        {
          name,
          shape: [n],
          role: 'scale',
          decay: false,
          ...(opts.layer !== undefined ? { layer: opts.layer } : {}),
          meta: { ...meta },
        },
        tf.fill([n], sScale, 'float32'),
      );
      return { p, meta };
    };

    this.tokEmb = matrix('tok_emb.weight', [c.vocabSize, d], 'tok_embedding', 1, 'E_in');
    for (let i = 0; i < c.nLayers; i++) {
      const pre = `blocks.${i}`;
      const qkv = matrix(`${pre}.attn.qkv.weight`, [d, 3 * d], 'qkv', 0, 'W_q|W_k|W_v', i);
      const sQK = scale(`${pre}.attn.s_qk`, d, 's_qk', c.sQKInit, c.sQKScale, { layer: i });
      const proj = matrix(`${pre}.attn.proj.weight`, [d, d], 'attn_out', 1, 'W_o', i);
      const alphaA = scale(`${pre}.attn.alpha_A`, d, 'alpha_A', c.alphaInit, c.alphaScale, {
        abs: c.alphaAbs,
        layer: i,
      });
      const fc = matrix(`${pre}.mlp.fc.weight`, [d, f], 'ffn_in', 0, 'W_u', i);
      const gate = matrix(`${pre}.mlp.gate.weight`, [d, f], 'ffn_gate', 0, 'W_nu', i);
      const sU = scale(`${pre}.mlp.s_u`, f, 's_u', c.sUVInit, c.sUVScale, { layer: i });
      const sNu = scale(`${pre}.mlp.s_nu`, f, 's_nu', c.sUVInit, c.sUVScale, { gain: c.nuGain, layer: i });
      const out = matrix(`${pre}.mlp.proj.weight`, [f, d], 'ffn_out', 1, 'W_oM', i);
      const alphaM = scale(`${pre}.mlp.alpha_M`, d, 'alpha_M', c.alphaInit, c.alphaScale, {
        abs: c.alphaAbs,
        layer: i,
      });
      this.blocks.push({ qkv, sQK, proj, alphaA, fc, gate, sU, sNu, out, alphaM });
    }
    this.head = matrix('lm_head.weight', [d, c.vocabSize], 'head', 0, 'E_out^T');
    this.sZ = scale('s_z', c.vocabSize, 's_z', c.sZInit, c.sZScale);
  }

  private cached(key: string, make: () => tf.Tensor): tf.Tensor {
    let t = this.cache.get(key);
    if (!t) {
      t = tf.keep(make());
      this.cache.set(key, t);
    }
    return t;
  }

  /** `Norm(x) = x / √(Σx² + normEps)` over the last axis. */
  private norm(x: tf.Tensor): tf.Tensor {
    return l2Normalize(x, -1, this.config.normEps);
  }

  /** Runs the network; must be called inside `tf.tidy`. */
  private run(ids: tf.Tensor2D, collect: boolean): NGPTForwardWithHidden {
    const c = this.config;
    if (ids.rank !== 2)
      throw new StrataError('E_USAGE', `nGPT.forward expects ids of shape [batch, seq], got [${ids.shape}]`);
    const [B, T] = ids.shape;
    if (T > c.contextLength) {
      throw new StrataError(
        'E_USAGE',
        `sequence length ${T} exceeds the model's contextLength ${c.contextLength}`,
      );
    }
    const d = c.dModel;
    const H = c.nHeads;
    const dk = d / H;
    const hidden: tf.Tensor3D[] = [];
    const keepHidden = (x: tf.Tensor) => {
      if (collect) hidden.push(tf.reshape(x, [B, T, d]) as tf.Tensor3D);
    };
    const eff = (s: Scale) => effectiveScale(s.p, s.meta);
    const rec = this.recorder;

    const mask = this.cached(`mask${T}`, () => causalMask(T));
    // RoPE tables [T, d_k] (each head's features; nGPT applies RoPE before the per-head Norm).
    const rope = {
      cos: this.cached(`cos${T}`, () =>
        tf.tensor2d(ropeTables(T, dk, c.ropeBase, 0, c.ropeRepeat).cos, [T, dk]),
      ),
      sin: this.cached(`sin${T}`, () =>
        tf.tensor2d(ropeTables(T, dk, c.ropeBase, 0, c.ropeRepeat).sin, [T, dk]),
      ),
    };
    // NVIDIA's residual update: the stream is normalized again before the interpolation. In the forward pass
    // this changes nothing (h is unit-norm), but in the backward pass it projects out the radial part of the
    // gradient that flows back into h along the residual path (see the nGPT guide).
    const update = (h: tf.Tensor, branch: tf.Tensor, alpha: Scale, name: string) => {
      const a = eff(alpha);
      if (rec.enabled) {
        const hn = this.norm(h);
        rec.record(name, tf.add(hn, mulLastAxis(tf.sub(this.norm(branch), hn), a)));
      }
      return normalizedResidual(h, branch, a, c.normEps);
    };

    const flat = tf.reshape(ids, [B * T]) as tf.Tensor1D;
    // h⁰ = E_in[token]: rows are unit-norm by the projection; no re-normalization (as NVIDIA).
    let h: tf.Tensor = embeddingLookup(this.tokEmb as tf.Tensor2D, flat);
    keepHidden(h);

    this.blocks.forEach((blk, i) => {
      // ---- attention: RoPE → Norm (over d_k, per head) → × s_qk on q and k, then √d_k-scaled causal softmax ----
      const qkv = matmul2d(h as tf.Tensor2D, blk.qkv as tf.Tensor2D);
      const merged = causalSelfAttention(qkv, {
        batch: B,
        seqLen: T,
        heads: H,
        rope,
        mask,
        scale: c.attnScale,
        qkNorm: { gain: eff(blk.sQK), eps: c.normEps },
      });
      const hA = matmul2d(merged, blk.proj as tf.Tensor2D);
      rec.record(`blocks.${i}.attn.h_A`, hA);
      h = update(h, hA, blk.alphaA, `blocks.${i}.attn.residual`);
      keepHidden(h);

      // ---- MLP (SwiGLU): (s_u ⊙ h W_u) ⊙ SiLU(s_ν·nuGain ⊙ h W_ν), then W_oM ----
      const hidden = swiGLU(
        matmul2d(h as tf.Tensor2D, blk.fc as tf.Tensor2D),
        matmul2d(h as tf.Tensor2D, blk.gate as tf.Tensor2D),
        eff(blk.sU),
        tf.mul(eff(blk.sNu), blk.sNu.meta.gain),
      );
      const hM = matmul2d(hidden as tf.Tensor2D, blk.out as tf.Tensor2D);
      rec.record(`blocks.${i}.mlp.h_M`, hM);
      h = update(h, hM, blk.alphaM, `blocks.${i}.mlp.residual`);
      keepHidden(h);
    });

    const logits = mulLastAxis(matmul2d(h as tf.Tensor2D, this.head as tf.Tensor2D), eff(this.sZ));
    return { logits: tf.reshape(logits, [B, T, c.vocabSize]) as tf.Tensor3D, hidden };
  }

  /**
   * Next-token logits `s_z ⊙ cos(h, E_out)`.
   * @param ids `[batch, seq]` int32, `seq ≤ contextLength`
   * @param _options accepted for the {@link LanguageModel} contract; nGPT has no dropout, so it is unused
   * @returns `[batch, seq, vocab]`
   */
  forward(ids: tf.Tensor2D, _options: ForwardOptions = {}): tf.Tensor3D {
    return tf.tidy(() => this.run(ids, false).logits);
  }

  /**
   * Like {@link NGPT.forward}, and also returns every hidden state between blocks and sub-blocks (for tests
   * of the unit-norm invariant and for growth verification). The caller disposes all returned tensors.
   */
  forwardWithHidden(ids: tf.Tensor2D): NGPTForwardWithHidden {
    const [logits, ...hidden] = tf.tidy(() => {
      const r = this.run(ids, true);
      return [r.logits, ...r.hidden];
    }) as tf.Tensor3D[];
    return { logits: logits!, hidden };
  }

  /** Re-projects every matrix to unit norm along d_model ({@link normalizeMatrices}); call after each optimizer step. */
  afterStep(): void {
    normalizeMatrices(this.params);
  }

  /** Parameter counts: embeddings, attention and MLP matrices, the scaling vectors, head, s_z. */
  components(): ComponentCount[] {
    const groups = new Map<string, number>();
    for (const s of this.params.specs()) {
      const n = s.shape.reduce((a, b) => a * b, 1);
      let key: string;
      if (s.name.startsWith('blocks.')) {
        key =
          s.role === 'scale'
            ? 'blocks.*.scales (alpha_A, alpha_M, s_qk, s_u, s_nu)'
            : `blocks.*.${s.name.split('.')[2]!}`;
      } else key = s.name.split('.')[0]!;
      groups.set(key, (groups.get(key) ?? 0) + n);
    }
    return [...groups].map(([component, params]) => ({ component, params }));
  }

  /** A short description of the architecture and its scaling constants. */
  summary(): string[] {
    const c = this.config;
    const r = (x: number) => Number(x.toPrecision(4));
    return [
      `nGPT: ${c.nLayers} layers, d_model ${c.dModel}, ${c.nHeads} heads (head dim ${c.dModel / c.nHeads}), SwiGLU d_ff ${c.dFF} per branch`,
      `RoPE base ${c.ropeBase}, context ${c.contextLength}, vocab ${c.vocabSize}, untied unit-norm embeddings, no biases, no final norm`,
      `alpha init ${r(c.alphaInit)} / scale ${r(c.alphaScale)} (${c.alphaAbs ? '|alpha|' : 'signed alpha'}), s_qk ${r(c.sQKInit)} / ${r(c.sQKScale)}, s_uv ${r(c.sUVInit)} / ${r(c.sUVScale)} (nu x ${r(c.nuGain)}), s_z ${r(c.sZInit)} / ${r(c.sZScale)}, softmax scale ${r(c.attnScale)}`,
      `parameters ${this.params.count().toLocaleString('en-US')}`,
    ];
  }

  /**
   * Turns on recording of the mean L2 norm of each `Norm` input: `blocks.{i}.attn.h_A`, `blocks.{i}.attn.residual`
   * (`h + α_A ⊙ (Norm(h_A) − h)`), `blocks.{i}.mlp.h_M`, `blocks.{i}.mlp.residual`.
   */
  setDiagnostics(on: boolean): void {
    this.recorder.enabled = on;
    if (!on) this.recorder.clear();
  }

  /** Recorded `name → mean ‖input‖₂` since the last call (see {@link NGPT.setDiagnostics}). */
  takeNormInputs(): Promise<Map<string, number>> {
    return this.recorder.take();
  }

  /**
   * Effective α_A, α_M, s_qk, s_u, s_ν, s_z pooled over layers: mean, min, max per kind
   * ({@link summarizeScales}).
   */
  scaleSummary(): Promise<Record<string, ScaleSummary>> {
    return summarizeScales(this.params);
  }

  /** Frees every tensor the model owns. */
  dispose(): void {
    this.params.dispose();
    this.recorder.clear();
    for (const t of this.cache.values()) t.dispose();
    this.cache.clear();
  }
}
