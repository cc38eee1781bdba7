/**
 * The encoder-decoder Transformer (family `encdec`): DeepNet's own setting. An encoder stack of N
 * bidirectional blocks and a decoder stack of M blocks (causal self-attention, cross-attention over the
 * encoder output, MLP), every sublayer wrapped by the norm strategy with its stack's context.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { configFields } from '../config-fields.js';
import { StrataError } from '../errors.js';
import { strataKernelsActive } from '../kernels/index.js';
import type { FinalNormContext, NormFn } from '../norm/contract.js';
import { selectNorm } from '../norm/registry.js';
import { causalMask, embeddingLookup, embedWithPositions, matmul2d, matmulTransposeB } from '../ops.js';
import { type InitSpec, initValues, type ParamRole } from '../params.js';
import type { ModelStages } from '../train/trainer.js';
import { Rng } from '../util/rng.js';
import type { ComponentCount, ForwardOptions, LanguageModel, ModelFamily } from './family.js';
import { type GPTConfig, parseGPTConfig } from './gpt-config.js';
import { ParamWeightHost } from './host.js';
import {
  fromHeads,
  type Memory,
  paddingMask,
  type RunContext,
  StrategyModel,
  scaledDotAttention,
  TransformerBlock,
  UnitBuilder,
} from './layers.js';

/** Configuration of the encoder-decoder family. */
export interface EncDecConfig
  extends Pick<
    GPTConfig,
    | 'vocabSize'
    | 'dModel'
    | 'nHeads'
    | 'dFF'
    | 'activation'
    | 'positions'
    | 'ropeBase'
    | 'ropeRepeat'
    | 'normKind'
    | 'normEps'
    | 'normBias'
    | 'normAffine'
    | 'bias'
    | 'tiedEmbeddings'
    | 'dropout'
    | 'initStd'
    | 'initScheme'
    | 'norm'
    | 'architecture'
  > {
  readonly [key: string]: unknown;
  /** N, encoder blocks. */
  nEncoderLayers: number;
  /** M, decoder blocks. */
  nDecoderLayers: number;
  /** Longest source (encoder input), in tokens. */
  sourceLength: number;
  /** Longest decoder sequence (`<bos>` + target), in tokens. */
  targetLength: number;
  /** `sourceLength + targetLength`: the length of a packed training row (see {@link EncoderDecoder.forward}). */
  contextLength: number;
  /** Padding id: masked out of attention and ignored by the loss. */
  padId: number;
  /** The decoder's start token. */
  bosId: number;
  /** End of the target sequence. */
  eosId: number;
}

const ENC_DEC_KEYS = [
  'nEncoderLayers',
  'nDecoderLayers',
  'sourceLength',
  'targetLength',
  'padId',
  'bosId',
  'eosId',
];

/**
 * Validates an encoder-decoder config, filling defaults: the GPT's shared fields (width, heads, activation,
 * norm strategy, init, …; `positions` learned or none), `nEncoderLayers`/`nDecoderLayers` (default 4 each),
 * `sourceLength`/`targetLength` (default 64 each), the special ids of the byte-special tokenizer (pad 256,
 * bos 258, eos 259; vocabulary 276). `contextLength` is derived (`sourceLength + targetLength`); a given
 * value must match. Errors name the field.
 */
export function parseEncDecConfig(
  input: unknown,
  resolveNorm: Parameters<typeof parseGPTConfig>[1],
): EncDecConfig {
  if (input === null || typeof input !== 'object' || Array.isArray(input))
    throw new StrataError('E_CONFIG', `model config must be an object, got ${JSON.stringify(input)}`);
  const all = input as Record<string, unknown>;
  if ('nLayers' in all)
    throw new StrataError(
      'E_CONFIG',
      'model.nLayers is not an encoder-decoder field; set model.nEncoderLayers (N) and model.nDecoderLayers (M)',
    );
  const own: Record<string, unknown> = {
    nEncoderLayers: 4,
    nDecoderLayers: 4,
    sourceLength: 64,
    targetLength: 64,
    padId: 256,
    bosId: 258,
    eosId: 259,
  };
  const rest: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(all)) {
    if (ENC_DEC_KEYS.includes(k)) own[k] = v;
    else rest[k] = v;
  }
  const { int } = configFields('model', own);
  const N = int('nEncoderLayers', 1, 100000);
  const M = int('nDecoderLayers', 1, 100000);
  const S = int('sourceLength', 1, 1 << 20);
  const T = int('targetLength', 2, 1 << 20);
  if (rest.contextLength !== undefined && rest.contextLength !== S + T)
    throw new StrataError(
      'E_CONFIG',
      `model.contextLength (${JSON.stringify(rest.contextLength)}) of an encoder-decoder is sourceLength + targetLength = ${S + T}; set those instead`,
    );
  if (rest.architecture !== undefined && rest.architecture !== 'encoder-decoder')
    throw new StrataError(
      'E_CONFIG',
      `model.architecture must be "encoder-decoder" for the encdec family, got ${JSON.stringify(rest.architecture)}`,
    );
  if (rest.positions === 'rope')
    throw new StrataError(
      'E_CONFIG',
      'model.positions "rope" is not supported by the encoder-decoder yet; use "learned" or "none"',
    );
  const base = parseGPTConfig(
    { vocabSize: 276, ...rest, nLayers: M, contextLength: S + T, architecture: 'encoder-decoder' },
    resolveNorm,
    ['encoder-decoder'],
  );
  if (base.block !== 'transformer' || base.embedNorm)
    throw new StrataError(
      'E_CONFIG',
      `model.${base.block !== 'transformer' ? 'block "gau"' : 'embedNorm'} is not supported by the encoder-decoder; use the encoder or GPT family`,
    );
  const {
    nLayers: _m,
    block: _b,
    gauDim: _e,
    gauKeyDim: _s,
    attentionNorm: _a,
    softmaxPlusBase: _p,
    embedNorm: _n,
    ...shared
  } = base;
  const ids = configFields('model', own);
  const V = base.vocabSize;
  const cfg: EncDecConfig = {
    ...shared,
    nEncoderLayers: N,
    nDecoderLayers: M,
    sourceLength: S,
    targetLength: T,
    padId: ids.int('padId', 0, V - 1),
    bosId: ids.int('bosId', 0, V - 1),
    eosId: ids.int('eosId', 0, V - 1),
  };
  if (new Set([cfg.padId, cfg.bosId, cfg.eosId]).size !== 3)
    throw new StrataError(
      'E_CONFIG',
      `model.padId, model.bosId and model.eosId must differ, got ${cfg.padId}, ${cfg.bosId}, ${cfg.eosId}`,
    );
  return cfg;
}

/** Decoder state for incremental decoding: cached encoder output (cross K/V per block) and self K/V. */
export class Seq2SeqCache {
  /** Decoded positions so far. */
  length = 0;
  private selfK: (tf.Tensor4D | undefined)[];
  private selfV: (tf.Tensor4D | undefined)[];

  constructor(
    /** Per decoder block: the encoder output's keys and values `[B, H, S, hd]`. */
    private cross: [tf.Tensor4D, tf.Tensor4D][],
    /** Source padding mask `[B, 1, 1, S]`. */
    private srcMask: tf.Tensor4D,
    /** Hypotheses (batch rows). */
    public batch: number,
  ) {
    this.selfK = cross.map(() => undefined);
    this.selfV = cross.map(() => undefined);
  }

  /** The memory of decoder block `j`. */
  memory(j: number): Memory {
    return { kv: this.cross[j]!, mask: this.srcMask };
  }

  /** Appends the new keys/values of block `j` and returns all of them. */
  append(j: number, k: tf.Tensor4D, v: tf.Tensor4D): [tf.Tensor4D, tf.Tensor4D] {
    const pk = this.selfK[j];
    const pv = this.selfV[j];
    const kAll = tf.keep(pk ? (tf.concat([pk, k], 2) as tf.Tensor4D) : tf.clone(k));
    const vAll = tf.keep(pv ? (tf.concat([pv, v], 2) as tf.Tensor4D) : tf.clone(v));
    pk?.dispose();
    pv?.dispose();
    this.selfK[j] = kAll;
    this.selfV[j] = vAll;
    return [kAll, vAll];
  }

  /**
   * Keeps rows `rows` (with repetition) of every cached tensor, in that order: beam search's reordering of
   * hypotheses after each step, and the expansion of one source to `beam` hypotheses.
   */
  reorder(rows: readonly number[]): void {
    const idx = tf.tensor1d(Int32Array.from(rows), 'int32');
    const pick = <T extends tf.Tensor>(t: T): T => {
      const out = tf.keep(tf.gather(t, idx, 0)) as T;
      t.dispose();
      return out;
    };
    this.cross = this.cross.map(([k, v]) => [pick(k), pick(v)]);
    this.srcMask = pick(this.srcMask);
    this.selfK = this.selfK.map((t) => (t ? pick(t) : t));
    this.selfV = this.selfV.map((t) => (t ? pick(t) : t));
    idx.dispose();
    this.batch = rows.length;
  }

  /** Frees every cached tensor. */
  dispose(): void {
    for (const [k, v] of this.cross) {
      k.dispose();
      v.dispose();
    }
    this.srcMask.dispose();
    for (const t of [...this.selfK, ...this.selfV]) t?.dispose();
  }
}

/**
 * Encoder-decoder Transformer. Parameter names (matrices `[in, out]`):
 * - `tok_emb.weight` `[vocab, d]` — shared by the encoder input, the decoder input and the tied head
 * - `enc_pos_emb.weight` `[sourceLength, d]`, `dec_pos_emb.weight` `[targetLength, d]` (learned positions)
 * - `encoder.blocks.{i}.attn.{qkv,proj}.*`, `encoder.blocks.{i}.mlp.{fc,gate,proj}.*` (as the GPT's blocks)
 * - `decoder.blocks.{j}.attn.*`, `decoder.blocks.{j}.cross.q.weight` `[d, d]`, `….cross.kv.weight`
 *   `[d, 2d]` (columns k | v), `….cross.proj.weight` `[d, d]` (+ biases), `decoder.blocks.{j}.mlp.*`
 * - strategy weights under each site (`….attn.*`, `….cross.*`, `….mlp.*`), `encoder.final.*`, `decoder.final.*`
 * - `lm_head.weight` `[d, vocab]` when the head is untied
 *
 * Specs record `layer` i for encoder block i and N + j for decoder block j.
 */
export class EncoderDecoder extends StrategyModel implements LanguageModel {
  readonly family = 'encdec';
  /** The encoder's blocks (bidirectional self-attention), in order. */
  readonly encoder: TransformerBlock[] = [];
  /** The decoder's blocks (causal self-attention plus cross-attention over the encoder output), in order. */
  readonly decoder: TransformerBlock[] = [];
  private readonly encFinal: NormFn | null;
  private readonly decFinal: NormFn | null;
  private readonly tokEmb: tf.Variable;
  private readonly encPos?: tf.Variable;
  private readonly decPos?: tf.Variable;
  private readonly head_?: tf.Variable;
  private readonly masks = new Map<number, tf.Tensor2D>();

  constructor(
    readonly config: EncDecConfig,
    options: { seed: number },
  ) {
    super(config.norm);
    const c = config;
    const rng = Rng.derive(options.seed, 'init');
    const opts = c.norm.options;
    const d = c.dModel;
    const P = this.params;
    const add = (name: string, shape: number[], role: ParamRole, init: InitSpec, decay = false) =>
      P.add({ name, shape, role, decay }, tf.tensor(initValues(init, shape, rng), shape, 'float32'));
    const std = c.initStd;
    this.tokEmb = add('tok_emb.weight', [c.vocabSize, d], 'tok_embedding', { kind: 'normal', std });
    if (c.positions === 'learned') {
      this.encPos = add('enc_pos_emb.weight', [c.sourceLength, d], 'pos_embedding', { kind: 'normal', std });
      this.decPos = add('dec_pos_emb.weight', [c.targetLength, d], 'pos_embedding', { kind: 'normal', std });
    }
    const units = new UnitBuilder(P, rng, this.strategy, opts, this.recorder, c);
    const N = c.nEncoderLayers;
    const M = c.nDecoderLayers;
    const common = {
      dModel: d,
      dFF: c.dFF,
      normKind: c.normKind,
      eps: c.normEps,
      architecture: 'encoder-decoder' as const,
      encoderLayers: N,
      decoderLayers: M,
    };
    const encCtx = { ...common, numLayers: N, stack: 'encoder' as const };
    const decCtx = { ...common, numLayers: M, stack: 'decoder' as const };
    const final = (ctx: FinalNormContext, prefix: string) =>
      this.strategy.createFinal?.(
        ctx,
        opts,
        new ParamWeightHost(
          prefix,
          P,
          rng,
          {
            normKind: c.normKind,
            eps: c.normEps,
            normBias: c.normBias,
            dModel: d,
            ...(c.normAffine === false ? { affine: false } : {}),
          },
          this.recorder,
        ),
      ) ?? null;
    for (let i = 0; i < N; i++)
      this.encoder.push(
        new TransformerBlock(
          units,
          { ctx: encCtx, index: i, layer: i, prefix: `encoder.blocks.${i}.` },
          { causal: false, cross: false },
        ),
      );
    this.encFinal = final(encCtx, 'encoder.final.');
    for (let j = 0; j < M; j++)
      this.decoder.push(
        new TransformerBlock(
          units,
          { ctx: decCtx, index: j, layer: N + j, prefix: `decoder.blocks.${j}.` },
          { causal: true, cross: true },
        ),
      );
    this.decFinal = final(decCtx, 'decoder.final.');
    if (!c.tiedEmbeddings)
      this.head_ = add('lm_head.weight', [d, c.vocabSize], 'head', { kind: 'normal', std }, true);
  }

  private runContext(B: number, T: number, options: ForwardOptions, salt: number): RunContext {
    const c = this.config;
    const rc: RunContext = { B, T, dropCount: 0, dropout: undefined, rope: undefined, mask: undefined };
    if (options.training && c.dropout > 0)
      rc.dropout = (x) =>
        tf.dropout(x, c.dropout, undefined, (options.seed ?? 0) * 7919 + salt + rc.dropCount++);
    return rc;
  }

  private embed(ids: tf.Tensor2D, pos: tf.Variable | undefined, rc: RunContext, offset = 0): tf.Tensor2D {
    const [B, T] = ids.shape;
    const d = this.config.dModel;
    const flat = tf.reshape(ids, [B * T]) as tf.Tensor1D;
    let x: tf.Tensor2D;
    if (!pos) x = embeddingLookup(this.tokEmb as tf.Tensor2D, flat);
    else if (offset === 0) x = embedWithPositions(this.tokEmb as tf.Tensor2D, flat, pos as tf.Tensor2D, T);
    else {
      const e = embeddingLookup(this.tokEmb as tf.Tensor2D, flat);
      x = tf.reshape(tf.add(tf.reshape(e, [B, T, d]), tf.slice(pos, [offset, 0], [T, d])), [
        B * T,
        d,
      ]) as tf.Tensor2D;
    }
    return rc.dropout ? (rc.dropout(x) as tf.Tensor2D) : x;
  }

  /**
   * The encoder: source ids `[B, S]` (`S ≤ sourceLength`, padded with `padId`) → memory `[B·S, d]` after the
   * encoder's final norm (if the strategy has one).
   */
  encode(src: tf.Tensor2D, options: ForwardOptions = {}): tf.Tensor2D {
    const [B, S] = src.shape;
    if (S > this.config.sourceLength)
      throw new StrataError(
        'E_USAGE',
        `the source has ${S} tokens, more than the model's sourceLength ${this.config.sourceLength}`,
      );
    return tf.tidy(() => {
      const rc = this.runContext(B, S, options, 0);
      rc.mask = paddingMask(src, this.config.padId);
      let x = this.embed(src, this.encPos, rc);
      for (const blk of this.encoder) x = blk.forward(x, rc);
      return this.encFinal ? (this.encFinal(x) as tf.Tensor2D) : x;
    });
  }

  /**
   * Teacher-forced decoder: logits `[B, T, vocab]` for decoder inputs `tgtIn` `[B, T]` (`<bos>` + target
   * shifted right) given the encoder memory `[B·S, d]` and the source ids (for the padding mask).
   */
  decode(
    tgtIn: tf.Tensor2D,
    memory: tf.Tensor2D,
    src: tf.Tensor2D,
    options: ForwardOptions = {},
  ): tf.Tensor3D {
    const c = this.config;
    const [B, T] = tgtIn.shape;
    const S = src.shape[1];
    if (T > c.targetLength)
      throw new StrataError(
        'E_USAGE',
        `the decoder input has ${T} tokens, more than targetLength ${c.targetLength}`,
      );
    return tf.tidy(() => {
      const rc = this.runContext(B, T, options, 1_000_003);
      if (rc.dropout || !strataKernelsActive()) rc.mask = this.causal(T);
      const srcMask = paddingMask(src, c.padId);
      let x = this.embed(tgtIn, this.decPos, rc);
      for (const blk of this.decoder) {
        const kv = blk.cross!.memoryKV(memory, B, S, c.nHeads);
        x = blk.forward(x, rc, blk.place.index, { kv, mask: srcMask });
      }
      return this.head(x, B, T);
    });
  }

  private causal(T: number): tf.Tensor2D {
    let m = this.masks.get(T);
    if (!m) {
      m = tf.keep(causalMask(T));
      this.masks.set(T, m);
    }
    return m;
  }

  private head(x: tf.Tensor2D, B: number, T: number): tf.Tensor3D {
    if (this.decFinal) x = this.decFinal(x) as tf.Tensor2D;
    const logits = this.head_
      ? matmul2d(x, this.head_ as tf.Tensor2D)
      : matmulTransposeB(x, this.tokEmb as tf.Tensor2D);
    return tf.reshape(logits, [B, T, this.config.vocabSize]) as tf.Tensor3D;
  }

  /**
   * The {@link LanguageModel} entry point on **packed rows**: `ids` `[B, sourceLength + T]` holds the source
   * (first `sourceLength` columns, padded with `padId`) followed by the decoder input (`<bos>` + target
   * shifted right, `T ≤ targetLength`). Returns the decoder's logits `[B, T, vocab]` (the trainer's targets
   * are then `[B·T]`, `-1` at padding).
   */
  forward(ids: tf.Tensor2D, options: ForwardOptions = {}): tf.Tensor3D {
    const c = this.config;
    const [B, L] = ids.shape;
    const S = c.sourceLength;
    if (L <= S || L > c.contextLength)
      throw new StrataError(
        'E_USAGE',
        `an encoder-decoder row packs sourceLength (${S}) source tokens and 1..${c.targetLength} decoder tokens; got ${L} tokens`,
      );
    return tf.tidy(() => {
      const src = tf.slice(ids, [0, 0], [B, S]) as tf.Tensor2D;
      const tgt = tf.slice(ids, [0, S], [B, L - S]) as tf.Tensor2D;
      return this.decode(tgt, this.encode(src, options), src, options);
    });
  }

  /**
   * The forward pass in stages for per-block recomputation (the trainer's `recompute`): the stream is the
   * encoder rows `[B·S, d]` stacked on the decoder rows `[B·T, d]`. Stages 0…N−1 are the encoder blocks
   * (the decoder rows pass through), stage N the encoder's final norm (identity without one), stages
   * N+1…N+M the decoder blocks (the encoder output rows pass through, feeding each cross-attention), then
   * the head on the decoder rows. Dropout masks are replayed on re-runs, so the gradients equal the plain
   * path's up to float rounding.
   */
  stages(ids: tf.Tensor2D, options: ForwardOptions = {}): ModelStages {
    const c = this.config;
    const [B, L] = ids.shape;
    const S = c.sourceLength;
    const T = L - S;
    if (T < 1 || L > c.contextLength)
      throw new StrataError(
        'E_USAGE',
        `an encoder-decoder row packs ${S} source and 1..${c.targetLength} decoder tokens; got ${L}`,
      );
    const N = this.encoder.length;
    const encRc = this.runContext(B, S, options, 0);
    const decRc = this.runContext(B, T, options, 1_000_003);
    const src = () => tf.slice(ids, [0, 0], [B, S]) as tf.Tensor2D;
    const split = (x: tf.Tensor2D) => tf.split(x, [B * S, B * T], 0) as [tf.Tensor2D, tf.Tensor2D];
    const byLayer = new Map<number, tf.Variable[]>();
    const encFinal: tf.Variable[] = [];
    const decFinal: tf.Variable[] = [];
    for (const [name, v] of this.params.variables()) {
      if (!v.trainable) continue;
      const layer = this.params.spec(name).layer;
      if (layer !== undefined) byLayer.set(layer, [...(byLayer.get(layer) ?? []), v]);
      else if (name.startsWith('encoder.final.')) encFinal.push(v);
      else if (name.startsWith('decoder.final.')) decFinal.push(v);
    }
    const starts: number[] = [];
    let embedded = false;
    const quietly = <R>(again: boolean, f: () => R): R => {
      const was = this.recorder.enabled;
      if (again) this.recorder.enabled = false;
      try {
        return f();
      } finally {
        this.recorder.enabled = was;
      }
    };
    const trainable = (vs: (tf.Variable | undefined)[]) => vs.filter((v): v is tf.Variable => !!v?.trainable);
    return {
      numBlocks: N + 1 + this.decoder.length,
      embed: () => {
        const again = embedded;
        embedded = true;
        encRc.dropCount = 0;
        decRc.dropCount = 0;
        return quietly(again, () => {
          const tgt = tf.slice(ids, [0, S], [B, T]) as tf.Tensor2D;
          return tf.concat([this.embed(src(), this.encPos, encRc), this.embed(tgt, this.decPos, decRc)], 0);
        });
      },
      block: (i, x) => {
        const again = starts[i] !== undefined;
        const rc = i < N ? encRc : decRc;
        if (!again) starts[i] = rc.dropCount;
        else rc.dropCount = starts[i]!;
        return quietly(again, () => {
          const [enc, dec] = split(x);
          if (i < N) {
            encRc.mask = paddingMask(src(), c.padId);
            return tf.concat([this.encoder[i]!.forward(enc, encRc), dec], 0);
          }
          if (i === N) return tf.concat([this.encFinal ? (this.encFinal(enc) as tf.Tensor2D) : enc, dec], 0);
          const blk = this.decoder[i - N - 1]!;
          if (decRc.dropout || !strataKernelsActive()) decRc.mask = this.causal(T);
          const memory = { kv: blk.cross!.memoryKV(enc, B, S, c.nHeads), mask: paddingMask(src(), c.padId) };
          return tf.concat([enc, blk.forward(dec, decRc, blk.place.index, memory)], 0);
        });
      },
      head: (x) => tf.reshape(this.head(split(x)[1], B, T), [B * T, c.vocabSize]) as tf.Tensor2D,
      embedVariables: () => trainable([this.tokEmb, this.encPos, this.decPos]),
      blockVariables: (i) =>
        i < N ? (byLayer.get(i) ?? []) : i === N ? encFinal : (byLayer.get(i - 1) ?? []),
      headVariables: () => trainable([...decFinal, this.head_ ?? this.tokEmb]),
    };
  }

  /** Encodes `src` `[B, S]` once and returns a decoder cache holding its cross-attention keys and values. */
  startDecoding(src: tf.Tensor2D): Seq2SeqCache {
    const c = this.config;
    const [B, S] = src.shape;
    const kept = tf.tidy(() => {
      const memory = this.encode(src);
      const out: tf.Tensor[] = [];
      for (const blk of this.decoder) out.push(...blk.cross!.memoryKV(memory, B, S, c.nHeads));
      out.push(paddingMask(src, c.padId));
      return out;
    });
    const cross: [tf.Tensor4D, tf.Tensor4D][] = [];
    for (let j = 0; j < this.decoder.length; j++)
      cross.push([kept[2 * j] as tf.Tensor4D, kept[2 * j + 1] as tf.Tensor4D]);
    return new Seq2SeqCache(cross, kept[kept.length - 1] as tf.Tensor4D, B);
  }

  /**
   * One decoding step: the next-token logits `[B, vocab]` after feeding `ids` (one token per row, at
   * position `cache.length`); the decoder's self-attention keys/values are appended to `cache`. Equal to
   * the last row of {@link decode} on the whole prefix, at the cost of one position.
   */
  step(ids: readonly number[], cache: Seq2SeqCache): tf.Tensor2D {
    const c = this.config;
    const B = ids.length;
    if (B !== cache.batch)
      throw new StrataError('E_USAGE', `step: ${B} tokens for ${cache.batch} hypotheses`);
    if (cache.length >= c.targetLength)
      throw new StrataError('E_USAGE', `step: the decoder is full (targetLength ${c.targetLength})`);
    const H = c.nHeads;
    const out = tf.tidy(() => {
      const rc = this.runContext(B, 1, {}, 0);
      let x = this.embed(tf.tensor2d(Int32Array.from(ids), [B, 1], 'int32'), this.decPos, rc, cache.length);
      this.decoder.forEach((blk, j) => {
        x = blk.attnSite.forward(x, (h) => {
          const [q, k, v] = blk.attn.projectQKV(h, B, 1, H);
          const [kAll, vAll] = cache.append(j, k, v);
          return blk.attn.project(fromHeads(scaledDotAttention(q, kAll, vAll)), blk.attnSite.inner);
        });
        x = blk.crossForward(x, rc, cache.memory(j));
        x = blk.mlpForward(x, rc);
      });
      return tf.reshape(this.head(x, B, 1), [B, c.vocabSize]) as tf.Tensor2D;
    });
    cache.length += 1;
    return out;
  }

  components(): ComponentCount[] {
    const groups = new Map<string, number>();
    for (const s of this.params.specs()) {
      const n = s.shape.reduce((a, b) => a * b, 1);
      const m = /^(encoder|decoder)\.(blocks\.\d+\.(\w+)|final)/.exec(s.name);
      let key: string;
      if (m?.[3]) {
        const isNorm = s.role === 'norm_gain' || s.role === 'norm_bias' || s.role === 'scale';
        key = `${m[1]}.blocks.*.${m[3]}${isNorm ? ' (norm strategy)' : ''}`;
      } else if (m) key = `${m[1]}.final`;
      else key = s.name.split('.')[0]!;
      groups.set(key, (groups.get(key) ?? 0) + n);
    }
    return [...groups].map(([component, params]) => ({ component, params }));
  }

  summary(): string[] {
    const c = this.config;
    const stack = (name: string, n: number, what: string) =>
      `${name}: ${n} layers (${what}), final norm ${this.strategy.createFinal && (name === 'encoder' ? this.encFinal : this.decFinal) ? 'yes' : 'no'}`;
    return [
      `Encoder-decoder: d_model ${c.dModel}, ${c.nHeads} heads (head dim ${c.dModel / c.nHeads}), d_ff ${c.dFF}, ${c.activation}`,
      stack('encoder', c.nEncoderLayers, 'bidirectional self-attention + MLP'),
      stack('decoder', c.nDecoderLayers, 'causal self-attention + cross-attention + MLP'),
      `positions ${c.positions}, source ${c.sourceLength} / target ${c.targetLength} tokens, vocab ${c.vocabSize} (pad ${c.padId}, bos ${c.bosId}, eos ${c.eosId}), ${c.tiedEmbeddings ? 'tied' : 'untied'} head, biases ${c.bias ? 'on' : 'off'}, dropout ${c.dropout}`,
      this.normSummary(c.normKind, c.normEps),
      `parameters ${this.params.count().toLocaleString('en-US')}`,
    ];
  }

  dispose(): void {
    this.disposeParams();
    for (const m of this.masks.values()) m.dispose();
    this.masks.clear();
  }
}

/** The encoder-decoder family (`family: "encdec"` in checkpoints). */
export const encDecFamily: ModelFamily<EncDecConfig> = {
  name: 'encdec',
  version: '1',
  description: 'Encoder-decoder Transformer (DeepNet’s setting) with pluggable residual normalization',
  parseConfig: (raw) => parseEncDecConfig(raw, (name, options) => selectNorm(name, options).selection),
  create: (config, options) => new EncoderDecoder(config, options),
};
