import * as tf from '@tensorflow/tfjs-core';
import { StrataError } from '../errors.js';
import { strataKernelsActive } from '../kernels/index.js';
import { KVCache } from '../kernels/kv-cache.js';
import type { FinalNormContext, NormFn } from '../norm/contract.js';
import { selectNorm } from '../norm/registry.js';
import {
  causalMask,
  embeddingLookup,
  embedWithPositions,
  matmul2d,
  matmulTransposeB,
  ropeTables,
} from '../ops.js';
import { type InitSpec, initValues, type ParamRole } from '../params.js';
import type { ModelStages } from '../train/trainer.js';
import { Rng } from '../util/rng.js';
import {
  type AttentionEntropy,
  type AttentionObserver,
  attentionRowEntropy,
  type RowEntropy,
} from './attention-entropy.js';
import type { ComponentCount, ForwardOptions, LanguageModel, ModelFamily } from './family.js';
import { GAUBlock } from './gau.js';
import { type EncoderConfig, type GPTConfig, parseEncoderConfig, parseGPTConfig } from './gpt-config.js';
import { type HostSettings, ParamWeightHost } from './host.js';
import {
  paddingMask,
  type ResidualBlock,
  type RunContext,
  StrategyModel,
  TransformerBlock,
  UnitBuilder,
} from './layers.js';

/**
 * Strata's GPT: token embedding, optional learned positions or RoPE, `nLayers` blocks of causal multi-head
 * attention and an MLP, each wrapped by the configured residual-normalization strategy, and a tied or untied
 * head. With `positions: 'learned'`, `activation: 'gelu'`, LayerNorm eps 1e-5, biases, a tied head and
 * Pre-LN it computes exactly GPT-2's function.
 *
 * Parameter names (the keys of `model.safetensors`; matrices are `[in, out]`):
 * - `tok_emb.weight` `[vocab, d]`, `pos_emb.weight` `[context, d]` (learned positions)
 * - `blocks.{i}.attn.qkv.weight` `[d, 3d]` (columns: q | k | v, heads contiguous inside each), `.bias` `[3d]`
 * - `blocks.{i}.attn.proj.weight` `[d, d]`, `.bias` `[d]`
 * - `blocks.{i}.mlp.fc.weight` `[d, dFF]`, `.bias`; `blocks.{i}.mlp.gate.weight` (SwiGLU only);
 *   `blocks.{i}.mlp.proj.weight` `[dFF, d]`, `.bias`
 * - strategy weights under `blocks.{i}.attn.*`, `blocks.{i}.mlp.*` and `final.*` (Pre-LN: `….norm.weight/bias`)
 * - `lm_head.weight` `[d, vocab]` when the head is untied
 */
export class GPT extends StrategyModel implements LanguageModel {
  /** `gpt`, or `encoder` for an encoder-only config. */
  readonly family: string;
  /** Encoder-only: bidirectional attention with a key-padding mask instead of the causal mask. */
  private readonly bidirectional: boolean;
  private readonly padId: number | null;
  private readonly blocks: ResidualBlock[] = [];
  private readonly final: NormFn | null;
  /** The norm on the embedding output (`embedNorm`). */
  private readonly embNorm: NormFn | null;
  /** GAU layers: one residual sublayer each, single-head attention over the key size `gauKeyDim`. */
  private readonly gau: boolean;
  private readonly tokEmb: tf.Variable;
  private readonly posEmb?: tf.Variable;
  private readonly head_?: tf.Variable;
  private readonly cache = new Map<string, tf.Tensor>();

  constructor(
    readonly config: GPTConfig,
    options: { seed: number },
  ) {
    super(config.norm);
    const c = config;
    this.bidirectional = c.architecture === 'encoder-only';
    this.family = this.bidirectional ? 'encoder' : 'gpt';
    this.padId = this.bidirectional ? ((c.padId as number | null | undefined) ?? null) : null;
    const rng = Rng.derive(options.seed, 'init');
    const opts = c.norm.options;
    const d = c.dModel;
    const P = this.params;
    const add = (
      name: string,
      shape: number[],
      role: ParamRole,
      init: InitSpec,
      layer?: number,
      decay = false,
    ) =>
      P.add(
        { name, shape, role, decay, ...(layer !== undefined ? { layer } : {}) },
        tf.tensor(initValues(init, shape, rng), shape, 'float32'),
      );
    const std = c.initStd;
    this.gau = c.block === 'gau';
    this.tokEmb = add('tok_emb.weight', [c.vocabSize, d], 'tok_embedding', { kind: 'normal', std });
    if (c.positions === 'learned') {
      this.posEmb = add('pos_emb.weight', [c.contextLength, d], 'pos_embedding', { kind: 'normal', std });
    }
    const hostSettings: HostSettings = {
      normKind: c.normKind,
      eps: c.normEps,
      normBias: c.normBias,
      dModel: d,
      ...(c.normAffine === false ? { affine: false } : {}),
    };
    this.embNorm = c.embedNorm
      ? new ParamWeightHost('', P, rng, hostSettings, this.recorder).norm('emb_norm')
      : null;
    const ctxBase = {
      numLayers: c.nLayers,
      dModel: d,
      dFF: this.gau ? c.gauDim : c.dFF,
      normKind: c.normKind,
      eps: c.normEps,
      architecture: c.architecture,
      stack: this.bidirectional ? ('encoder' as const) : ('decoder' as const),
      encoderLayers: this.bidirectional ? c.nLayers : 0,
      decoderLayers: this.bidirectional ? 0 : c.nLayers,
      ...(this.gau ? { sublayersPerLayer: 1 as const } : {}),
    };
    const units = new UnitBuilder(P, rng, this.strategy, opts, this.recorder, c);
    for (let i = 0; i < c.nLayers; i++) {
      const place = { ctx: ctxBase, index: i, layer: i, prefix: `blocks.${i}.` };
      this.blocks.push(
        this.gau
          ? new GAUBlock(units, place, !this.bidirectional, c)
          : new TransformerBlock(units, place, { causal: !this.bidirectional, cross: false }),
      );
    }
    const fctx: FinalNormContext = ctxBase;
    this.final =
      this.strategy.createFinal?.(
        fctx,
        opts,
        new ParamWeightHost('final.', P, rng, hostSettings, this.recorder),
      ) ?? null;
    if (!c.tiedEmbeddings)
      this.head_ = add('lm_head.weight', [d, c.vocabSize], 'head', { kind: 'normal', std }, undefined, true);
  }

  private cached(key: string, make: () => tf.Tensor): tf.Tensor {
    let t = this.cache.get(key);
    if (!t) {
      t = tf.keep(make());
      this.cache.set(key, t);
    }
    return t;
  }

  forward(ids: tf.Tensor2D, options: ForwardOptions = {}): tf.Tensor3D {
    const c = this.config;
    const [B, T] = ids.shape;
    if (T > c.contextLength) throw new Error(`sequence length ${T} exceeds contextLength ${c.contextLength}`);
    const run = this.runContext(B, T, options);
    return tf.tidy(() => {
      if (this.bidirectional) run.mask = this.padMask(ids);
      let x = this.embed(ids, run);
      for (let i = 0; i < this.blocks.length; i++) x = this.block(i, x, run);
      return this.head(x, B, T);
    });
  }

  /**
   * The forward pass in stages (embedding, each block, head), for per-block activation recomputation: the
   * trainer runs the blocks forward without a tape, keeps only the residual stream between blocks, and then
   * backpropagates block by block, re-running each block under the tape (see the Trainer's `recompute`
   * option). Dropout masks are replayed exactly, so the gradients are bit-identical to the normal path.
   */
  stages(ids: tf.Tensor2D, options: ForwardOptions = {}): ModelStages {
    const c = this.config;
    const [B, T] = ids.shape;
    if (T > c.contextLength) throw new Error(`sequence length ${T} exceeds contextLength ${c.contextLength}`);
    const rc = this.runContext(B, T, options);
    const starts: number[] = [];
    const trainable = (vs: (tf.Variable | undefined)[]) => vs.filter((v): v is tf.Variable => !!v?.trainable);
    const byLayer = new Map<number, tf.Variable[]>();
    const rest: tf.Variable[] = [];
    for (const [name, v] of this.params.variables()) {
      const layer = this.params.spec(name).layer;
      if (layer === undefined) {
        if (v !== this.tokEmb && v !== this.posEmb && !name.startsWith('emb_norm.')) rest.push(v);
        continue;
      }
      const list = byLayer.get(layer) ?? [];
      list.push(v);
      byLayer.set(layer, list);
    }
    // Re-runs do not record norm inputs again (diagnostics).
    const quietly = <T>(again: boolean, f: () => T): T => {
      if (!again) return f();
      const was = this.recorder.enabled;
      this.recorder.enabled = false;
      try {
        return f();
      } finally {
        this.recorder.enabled = was;
      }
    };
    let embedded = false;
    return {
      numBlocks: this.blocks.length,
      embed: () => {
        rc.dropCount = 0;
        const again = embedded;
        embedded = true;
        return quietly(again, () => this.embed(ids, rc));
      },
      block: (i, x) => {
        const again = starts[i] !== undefined;
        if (!again) starts[i] = rc.dropCount;
        else rc.dropCount = starts[i]!;
        // The padding mask lives in the caller's tidy scope of each stage call.
        if (this.bidirectional) rc.mask = this.padMask(ids);
        return quietly(again, () => this.block(i, x, rc));
      },
      head: (x) => tf.reshape(this.head(x, B, T), [B * T, c.vocabSize]) as tf.Tensor2D,
      embedVariables: () =>
        trainable([
          this.tokEmb,
          this.posEmb,
          ...[...this.params.variables()].filter(([n]) => n.startsWith('emb_norm.')).map(([, v]) => v),
        ]),
      blockVariables: (i) => trainable(byLayer.get(i) ?? []),
      headVariables: () => trainable([...rest, ...(this.head_ ? [] : [this.tokEmb])]),
    };
  }

  /** Per-call state shared by the pieces of a forward pass (dropout seeds, cached tables). */
  private runContext(B: number, T: number, options: ForwardOptions): RunContext {
    const c = this.config;
    const drop = !!options.training && c.dropout > 0;
    const rc: RunContext = { B, T, dropCount: 0, dropout: undefined, rope: undefined, mask: undefined };
    if (options.observeAttention) rc.observeAttention = options.observeAttention;
    if (drop) {
      rc.dropout = (x: tf.Tensor) =>
        tf.dropout(x, c.dropout, undefined, (options.seed ?? 0) * 7919 + rc.dropCount++);
    }
    return rc;
  }

  /** Token (+ learned position) embedding and embedding dropout: ids `[B, T]` → `[B·T, d]`. */
  private embed(ids: tf.Tensor2D, rc: RunContext): tf.Tensor2D {
    const c = this.config;
    const { B, T } = rc;
    const flat = tf.reshape(ids, [B * T]) as tf.Tensor1D;
    let x = this.posEmb
      ? embedWithPositions(this.tokEmb as tf.Tensor2D, flat, this.posEmb as tf.Tensor2D, T)
      : embeddingLookup(this.tokEmb as tf.Tensor2D, flat);
    if (this.embNorm) x = this.embNorm(x);
    if (rc.dropout) x = rc.dropout(x) as tf.Tensor2D;
    if (c.positions === 'rope' && !rc.rope) {
      const hd = this.ropeDim();
      const tables = ropeTables(T, hd, c.ropeBase, 0, c.ropeRepeat);
      rc.rope = {
        cos: this.cached(`cos${T}`, () => tf.tensor2d(tables.cos, [T, hd])),
        sin: this.cached(`sin${T}`, () => tf.tensor2d(tables.sin, [T, hd])),
      };
    }
    return x;
  }

  /** Width the RoPE tables rotate: the head dim, or the GAU key size. */
  private ropeDim(): number {
    const c = this.config;
    return this.gau ? c.gauKeyDim : c.dModel / c.nHeads;
  }

  /** Block `i` on the residual stream `[B·T, d]`. */
  private block(i: number, x: tf.Tensor2D, rc: RunContext): tf.Tensor2D {
    if (!this.bidirectional && !rc.kv && !rc.mask && (rc.dropout || this.gau || !strataKernelsActive()))
      rc.mask = this.cached(`mask${rc.T}`, () => causalMask(rc.T));
    return this.blocks[i]!.forward(x, rc, i);
  }

  /**
   * Entropy in nats of every GAU layer's attention row for each query of `ids` `[B, T]` (a forward pass with
   * the `observeAttention` hook; see {@link attentionRowEntropy}), and the keys each query sees: `t + 1` in a
   * causal model, the sequence's real tokens in an encoder (0 for padding queries). Throws `E_CONFIG` on
   * standard Transformer blocks, whose fused attention never materializes the weights.
   */
  async attentionEntropy(ids: tf.Tensor2D): Promise<AttentionEntropy> {
    if (!this.gau)
      throw new StrataError(
        'E_CONFIG',
        'attention entropy needs GAU layers (model.block "gau"): this model has standard Transformer blocks, whose attention runs as a fused kernel that never materializes the attention weights',
      );
    const [B, T] = ids.shape;
    const rows: RowEntropy[] = [];
    const observeAttention: AttentionObserver = (layer, weights) => {
      const r = attentionRowEntropy(weights);
      rows[layer] = { entropy: tf.keep(r.entropy), mass: tf.keep(r.mass) };
    };
    try {
      tf.dispose(this.forward(ids, { observeAttention }));
      const tokens = await ids.data();
      const keys = new Int32Array(B * T);
      for (let b = 0; b < B; b++) {
        let real = T;
        if (this.bidirectional && this.padId !== null)
          for (let t = 0; t < T; t++) if (tokens[b * T + t] === this.padId) real--;
        for (let t = 0; t < T; t++) {
          const i = b * T + t;
          keys[i] = !this.bidirectional ? t + 1 : tokens[i] === this.padId ? 0 : real;
        }
      }
      return {
        layers: rows.length,
        batch: B,
        length: T,
        entropy: await Promise.all(rows.map(async (r) => (await r.entropy.data()) as Float32Array)),
        mass: await Promise.all(rows.map(async (r) => (await r.mass.data()) as Float32Array)),
        keys,
      };
    } finally {
      for (const r of rows) tf.dispose([r.entropy, r.mass]);
    }
  }

  /** Encoder-only: the key-padding mask `[B, 1, 1, T]` of `ids` (undefined without a pad id). */
  private padMask(ids: tf.Tensor2D): tf.Tensor | undefined {
    return this.padId === null ? undefined : paddingMask(ids, this.padId);
  }

  /** An empty KV cache for `batch` sequences (see {@link forwardIncremental}). */
  createKVCache(batch: number): KVCache {
    const c = this.config;
    this.requireCausal('createKVCache');
    if (this.gau) return new KVCache(c.nLayers, batch, 1, c.gauKeyDim, c.contextLength, { fused: false });
    return new KVCache(c.nLayers, batch, c.nHeads, c.dModel / c.nHeads, c.contextLength);
  }

  /**
   * Incremental forward pass for generation: logits `[B, n, vocab]` of `n` new positions `ids` `[B, n]` that
   * follow the `cache.length` positions already in `cache`; appends their keys and values to it. The result
   * equals the corresponding rows of `forward` on the whole sequence (up to float rounding), at the cost of
   * the new positions only.
   */
  forwardIncremental(ids: tf.Tensor2D, cache: KVCache): tf.Tensor3D {
    const c = this.config;
    this.requireCausal('forwardIncremental');
    const [B, n] = ids.shape;
    const p0 = cache.length;
    if (B !== cache.batch) throw new Error(`forwardIncremental: batch ${B} != cache batch ${cache.batch}`);
    if (p0 + n > c.contextLength)
      throw new Error(
        `forwardIncremental: ${p0} cached + ${n} new positions exceed contextLength ${c.contextLength}`,
      );
    const d = c.dModel;
    const hd = this.ropeDim();
    const out = tf.tidy(() => {
      const rc: RunContext = {
        B,
        T: n,
        dropCount: 0,
        dropout: undefined,
        rope: undefined,
        mask: undefined,
        kv: cache,
      };
      const flat = tf.reshape(ids, [B * n]) as tf.Tensor1D;
      let x = embeddingLookup(this.tokEmb as tf.Tensor2D, flat);
      if (this.posEmb) {
        const pos = tf.slice(this.posEmb, [p0, 0], [n, d]);
        x = tf.reshape(tf.add(tf.reshape(x, [B, n, d]), pos), [B * n, d]) as tf.Tensor2D;
      }
      if (this.embNorm) x = this.embNorm(x);
      if (c.positions === 'rope') {
        const tables = ropeTables(n, hd, c.ropeBase, p0, c.ropeRepeat);
        rc.rope = { cos: tf.tensor2d(tables.cos, [n, hd]), sin: tf.tensor2d(tables.sin, [n, hd]) };
      }
      for (let i = 0; i < this.blocks.length; i++) x = this.block(i, x, rc);
      return this.head(x, B, n);
    });
    cache.advance(n);
    return out;
  }

  private requireCausal(what: string): void {
    if (this.bidirectional)
      throw new StrataError(
        'E_USAGE',
        `${what}: an encoder-only model attends in both directions and cannot decode token by token; use an encoder-decoder model to generate`,
      );
  }

  /** Final norm (if the strategy has one) and the output head: `[B·T, d]` → logits `[B, T, vocab]`. */
  private head(x: tf.Tensor2D, B: number, T: number): tf.Tensor3D {
    const c = this.config;
    if (this.final) x = this.final(x) as tf.Tensor2D;
    const logits = this.head_
      ? matmul2d(x, this.head_ as tf.Tensor2D)
      : matmulTransposeB(x, this.tokEmb as tf.Tensor2D);
    return tf.reshape(logits, [B, T, c.vocabSize]) as tf.Tensor3D;
  }

  components(): ComponentCount[] {
    const groups = new Map<string, number>();
    for (const s of this.params.specs()) {
      const n = s.shape.reduce((a, b) => a * b, 1);
      let key: string;
      if (s.name.startsWith('blocks.')) {
        const part = s.name.split('.')[2]!;
        const isNorm = s.role === 'norm_gain' || s.role === 'norm_bias' || s.role === 'scale';
        key = isNorm ? `blocks.*.${part} (norm strategy)` : `blocks.*.${part}`;
      } else key = s.name.split('.')[0]!;
      groups.set(key, (groups.get(key) ?? 0) + n);
    }
    return [...groups].map(([component, params]) => ({ component, params }));
  }

  summary(): string[] {
    const c = this.config;
    const layers = this.gau
      ? `${c.nLayers} GAU layers, d_model ${c.dModel}, e ${c.gauDim}, key size ${c.gauKeyDim}, ${c.attentionNorm}${c.attentionNorm === 'softmax_plus' ? ` (log n / log ${c.softmaxPlusBase})` : ''}`
      : `${c.nLayers} layers, d_model ${c.dModel}, ${c.nHeads} heads (head dim ${c.dModel / c.nHeads}), d_ff ${c.dFF}, ${c.activation}`;
    return [
      `${this.bidirectional ? `Encoder (bidirectional, masked-LM head, pad id ${this.padId ?? 'none'})` : 'GPT'}: ${layers}`,
      `positions ${c.positions}${c.positions === 'rope' ? ` (base ${c.ropeBase})` : ''}, context ${c.contextLength}, vocab ${c.vocabSize}, ${c.tiedEmbeddings ? 'tied' : 'untied'} head, biases ${c.bias ? 'on' : 'off'}, dropout ${c.dropout}`,
      `${this.normSummary(c.normKind, c.normEps)}${c.normAffine ? '' : ', parameter-free'}${c.embedNorm ? ', norm on the embeddings' : ''}`,
      `parameters ${this.params.count().toLocaleString('en-US')}`,
    ];
  }

  dispose(): void {
    this.disposeParams();
    for (const t of this.cache.values()) t.dispose();
    this.cache.clear();
  }
}

/** The GPT model family (`family: "gpt"` in checkpoints). */
export const gptFamily: ModelFamily<GPTConfig> = {
  name: 'gpt',
  version: '1',
  description: 'GPT: causal Transformer with pluggable residual normalization (Pre-LN, Post-LN, DeepNorm, …)',
  parseConfig: (raw) => parseGPTConfig(raw, (name, options) => selectNorm(name, options).selection),
  create: (config, options) => new GPT(config, options),
};

/**
 * The encoder-only family (`family: "encoder"`): a BERT-style bidirectional Transformer trained with
 * masked-language modelling. Same units and parameter names as the GPT (`tok_emb`, `pos_emb`, `blocks.{i}.attn.*`,
 * `blocks.{i}.mlp.*`, `final.*`, `lm_head`), self-attention without the causal mask and with a key-padding
 * mask on `padId`; residual sites get the encoder-only stack context (DeepNorm α = (2N)^¼, β = (8N)^-¼).
 */
export const encoderFamily: ModelFamily<EncoderConfig> = {
  name: 'encoder',
  version: '1',
  description: 'Encoder-only Transformer (bidirectional, padding mask) for masked-language modelling',
  parseConfig: (raw) => parseEncoderConfig(raw, (name, options) => selectNorm(name, options).selection),
  create: (config, options) => new GPT(config, options),
};
