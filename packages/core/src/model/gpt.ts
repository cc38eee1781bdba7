import * as tf from '@tensorflow/tfjs-core';
import type { FinalNormContext, InitRequest, NormContext, NormFn, ResidualSite } from '../norm/contract.js';
import { getNorm, selectNorm } from '../norm/registry.js';
import {
  applyRope,
  batchMatmul,
  causalMask,
  embeddingLookup,
  geluErf,
  geluTanh,
  linear,
  matmul2d,
  ropeTables,
  silu,
} from '../ops.js';
import { type InitSpec, initValues, type ParamRole, ParamStore } from '../params.js';
import { Rng } from '../util/rng.js';
import type { ComponentCount, ForwardOptions, LanguageModel, ModelFamily } from './family.js';
import { type GPTConfig, parseGPTConfig } from './gpt-config.js';
import { NormInputRecorder, ParamWeightHost } from './host.js';

interface Block {
  attnSite: ResidualSite;
  mlpSite: ResidualSite;
  qkvW: tf.Variable;
  qkvB?: tf.Variable;
  projW: tf.Variable;
  projB?: tf.Variable;
  fcW: tf.Variable;
  fcB?: tf.Variable;
  gateW?: tf.Variable;
  gateB?: tf.Variable;
  outW: tf.Variable;
  outB?: tf.Variable;
}

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
export class GPT implements LanguageModel {
  readonly family = 'gpt';
  readonly params = new ParamStore();
  private readonly blocks: Block[] = [];
  private readonly final: NormFn | null;
  private readonly tokEmb: tf.Variable;
  private readonly posEmb?: tf.Variable;
  private readonly head?: tf.Variable;
  private readonly recorder = new NormInputRecorder();
  private readonly cache = new Map<string, tf.Tensor>();
  private readonly strategy;

  constructor(
    readonly config: GPTConfig,
    options: { seed: number },
  ) {
    const c = config;
    const rng = Rng.derive(options.seed, 'init');
    this.strategy = getNorm(c.norm.name);
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
    this.tokEmb = add('tok_emb.weight', [c.vocabSize, d], 'tok_embedding', { kind: 'normal', std });
    if (c.positions === 'learned') {
      this.posEmb = add('pos_emb.weight', [c.contextLength, d], 'pos_embedding', { kind: 'normal', std });
    }
    const ctxBase = {
      numLayers: c.nLayers,
      dModel: d,
      dFF: c.dFF,
      normKind: c.normKind,
      eps: c.normEps,
      architecture: c.architecture,
      stack: 'decoder' as const,
      encoderLayers: 0,
      decoderLayers: c.nLayers,
    };
    const projStd = std / Math.sqrt(2 * c.nLayers);
    for (let i = 0; i < c.nLayers; i++) {
      const host = (site: string) =>
        new ParamWeightHost(
          `blocks.${i}.${site}.`,
          P,
          rng,
          { normKind: c.normKind, eps: c.normEps, normBias: c.normBias, dModel: d, layer: i },
          this.recorder,
        );
      const actx: NormContext = { ...ctxBase, layer: i, site: 'attn' };
      const mctx: NormContext = { ...ctxBase, layer: i, site: 'mlp' };
      const attnSite = this.strategy.createSite(actx, opts, host('attn'));
      // Weight init: each matrix (and each q/k/v slice of the fused QKV matrix) asks the strategy.
      const initFor = (ctx: NormContext, req: Omit<InitRequest, 'base'>, base: InitSpec) =>
        this.strategy.init ? this.strategy.init({ ...req, base }, ctx, opts) : base;
      const mat = (
        ctx: NormContext,
        role: ParamRole,
        fanIn: number,
        fanOut: number,
        base: InitSpec,
        slice?: 'q' | 'k' | 'v',
      ) =>
        initValues(
          initFor(ctx, { role, kind: 'weight', fanIn, fanOut, ...(slice ? { slice } : {}) }, base),
          [fanIn, fanOut],
          rng,
          fanIn,
          fanOut,
        );
      const biasInit = (
        ctx: NormContext,
        role: ParamRole,
        n: number,
        fanIn: number,
        slice?: 'q' | 'k' | 'v',
      ) =>
        initValues(
          initFor(
            ctx,
            { role, kind: 'bias', fanIn, fanOut: n, ...(slice ? { slice } : {}) },
            { kind: 'zeros' },
          ),
          [n],
          rng,
          fanIn,
          n,
        );
      // Base init of sublayer matrices: GPT-2's N(0, initStd²) with output projections ÷√(2N), or
      // Xavier-normal (gain 1) everywhere, the base the DeepNet paper's experiments use for every strategy.
      const xavier = c.initScheme === 'xavier';
      const normal: InitSpec = xavier ? { kind: 'xavier-normal', gain: 1 } : { kind: 'normal', std };
      const projInit: InitSpec = xavier
        ? { kind: 'xavier-normal', gain: 1 }
        : { kind: 'normal', std: projStd };
      const qkv = interleaveColumns(
        d,
        (['q', 'k', 'v'] as const).map((s) => mat(actx, 'qkv', d, d, normal, s)),
      );
      const b: Partial<Block> = {};
      b.qkvW = P.add(
        { name: `blocks.${i}.attn.qkv.weight`, shape: [d, 3 * d], role: 'qkv', decay: true, layer: i },
        tf.tensor(qkv, [d, 3 * d]),
      );
      if (c.bias) {
        const bq = (['q', 'k', 'v'] as const).map((s) => biasInit(actx, 'qkv', d, d, s));
        const all = new Float32Array(3 * d);
        bq.forEach((v, j) => {
          all.set(v, j * d);
        });
        b.qkvB = P.add(
          { name: `blocks.${i}.attn.qkv.bias`, shape: [3 * d], role: 'bias', decay: false, layer: i },
          tf.tensor(all, [3 * d]),
        );
      }
      b.projW = P.add(
        { name: `blocks.${i}.attn.proj.weight`, shape: [d, d], role: 'attn_out', decay: true, layer: i },
        tf.tensor(mat(actx, 'attn_out', d, d, projInit), [d, d]),
      );
      if (c.bias)
        b.projB = P.add(
          { name: `blocks.${i}.attn.proj.bias`, shape: [d], role: 'bias', decay: false, layer: i },
          tf.tensor(biasInit(actx, 'attn_out', d, d), [d]),
        );
      const mlpSite = this.strategy.createSite(mctx, opts, host('mlp'));
      const f = c.dFF;
      b.fcW = P.add(
        { name: `blocks.${i}.mlp.fc.weight`, shape: [d, f], role: 'ffn_in', decay: true, layer: i },
        tf.tensor(mat(mctx, 'ffn_in', d, f, normal), [d, f]),
      );
      if (c.bias)
        b.fcB = P.add(
          { name: `blocks.${i}.mlp.fc.bias`, shape: [f], role: 'bias', decay: false, layer: i },
          tf.tensor(biasInit(mctx, 'ffn_in', f, d), [f]),
        );
      if (c.activation === 'swiglu') {
        b.gateW = P.add(
          { name: `blocks.${i}.mlp.gate.weight`, shape: [d, f], role: 'ffn_gate', decay: true, layer: i },
          tf.tensor(mat(mctx, 'ffn_gate', d, f, normal), [d, f]),
        );
        if (c.bias)
          b.gateB = P.add(
            { name: `blocks.${i}.mlp.gate.bias`, shape: [f], role: 'bias', decay: false, layer: i },
            tf.tensor(biasInit(mctx, 'ffn_gate', f, d), [f]),
          );
      }
      b.outW = P.add(
        { name: `blocks.${i}.mlp.proj.weight`, shape: [f, d], role: 'ffn_out', decay: true, layer: i },
        tf.tensor(mat(mctx, 'ffn_out', f, d, projInit), [f, d]),
      );
      if (c.bias)
        b.outB = P.add(
          { name: `blocks.${i}.mlp.proj.bias`, shape: [d], role: 'bias', decay: false, layer: i },
          tf.tensor(biasInit(mctx, 'ffn_out', d, f), [d]),
        );
      this.blocks.push({ ...(b as Block), attnSite, mlpSite });
    }
    const fctx: FinalNormContext = ctxBase;
    this.final =
      this.strategy.createFinal?.(
        fctx,
        opts,
        new ParamWeightHost(
          'final.',
          P,
          rng,
          { normKind: c.normKind, eps: c.normEps, normBias: c.normBias, dModel: d },
          this.recorder,
        ),
      ) ?? null;
    if (!c.tiedEmbeddings)
      this.head = add('lm_head.weight', [d, c.vocabSize], 'head', { kind: 'normal', std }, undefined, true);
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
    const drop = options.training && c.dropout > 0;
    let dropCount = 0;
    const dropout = (x: tf.Tensor) =>
      drop ? tf.dropout(x, c.dropout, undefined, (options.seed ?? 0) * 7919 + dropCount++) : x;
    return tf.tidy(() => {
      const d = c.dModel;
      const flat = tf.reshape(ids, [B * T]) as tf.Tensor1D;
      let x = embeddingLookup(this.tokEmb as tf.Tensor2D, flat);
      if (this.posEmb) {
        const pos = tf.slice(this.posEmb, [0, 0], [T, d]);
        x = tf.reshape(tf.add(tf.reshape(x, [B, T, d]), pos), [B * T, d]);
      }
      x = dropout(x) as tf.Tensor2D;
      const mask = this.cached(`mask${T}`, () => causalMask(T));
      const hd = d / c.nHeads;
      let cos: tf.Tensor | undefined;
      let sin: tf.Tensor | undefined;
      if (c.positions === 'rope') {
        const tables = ropeTables(T, hd, c.ropeBase);
        cos = this.cached(`cos${T}`, () => tf.tensor2d(tables.cos, [T, hd]));
        sin = this.cached(`sin${T}`, () => tf.tensor2d(tables.sin, [T, hd]));
      }
      const H = c.nHeads;
      const heads = (t: tf.Tensor) =>
        tf.reshape(tf.transpose(tf.reshape(t, [B, T, H, hd]), [0, 2, 1, 3]), [B * H, T, hd]);
      const scale = 1 / Math.sqrt(hd);
      for (const blk of this.blocks) {
        x = blk.attnSite.forward(x, (h) => {
          const qkv = linear(h, blk.qkvW as tf.Tensor2D, blk.qkvB as tf.Tensor1D | undefined);
          const [q0, k0, v0] = tf.split(qkv, 3, 1);
          let q = heads(q0!);
          let k = heads(k0!);
          const v = heads(v0!) as tf.Tensor3D;
          if (cos && sin) {
            q = applyRope(q, cos, sin);
            k = applyRope(k, cos, sin);
          }
          const scores = tf.add(
            tf.mul(batchMatmul(q as tf.Tensor3D, tf.transpose(k, [0, 2, 1]) as tf.Tensor3D), scale),
            mask,
          );
          const att = dropout(tf.softmax(scores)) as tf.Tensor3D;
          const y = batchMatmul(att, v);
          let merged = tf.reshape(tf.transpose(tf.reshape(y, [B, H, T, hd]), [0, 2, 1, 3]), [
            B * T,
            d,
          ]) as tf.Tensor2D;
          if (blk.attnSite.inner) merged = blk.attnSite.inner(merged) as tf.Tensor2D;
          return dropout(
            linear(merged, blk.projW as tf.Tensor2D, blk.projB as tf.Tensor1D | undefined),
          ) as tf.Tensor2D;
        });
        x = blk.mlpSite.forward(x, (h) => {
          const a = linear(h, blk.fcW as tf.Tensor2D, blk.fcB as tf.Tensor1D | undefined);
          let hidden: tf.Tensor;
          switch (c.activation) {
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
              hidden = tf.mul(
                a,
                silu(linear(h, blk.gateW as tf.Tensor2D, blk.gateB as tf.Tensor1D | undefined)),
              );
              break;
          }
          if (blk.mlpSite.inner) hidden = blk.mlpSite.inner(hidden);
          return dropout(
            linear(hidden as tf.Tensor2D, blk.outW as tf.Tensor2D, blk.outB as tf.Tensor1D | undefined),
          ) as tf.Tensor2D;
        });
      }
      if (this.final) x = this.final(x) as tf.Tensor2D;
      const logits = this.head
        ? matmul2d(x, this.head as tf.Tensor2D)
        : matmul2d(x, tf.transpose(this.tokEmb) as tf.Tensor2D);
      return tf.reshape(logits, [B, T, c.vocabSize]) as tf.Tensor3D;
    });
  }

  afterStep(): void {
    this.strategy.afterStep?.(this.params, this.config.norm.options);
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
    return [
      `GPT: ${c.nLayers} layers, d_model ${c.dModel}, ${c.nHeads} heads (head dim ${c.dModel / c.nHeads}), d_ff ${c.dFF}, ${c.activation}`,
      `positions ${c.positions}${c.positions === 'rope' ? ` (base ${c.ropeBase})` : ''}, context ${c.contextLength}, vocab ${c.vocabSize}, ${c.tiedEmbeddings ? 'tied' : 'untied'} head, biases ${c.bias ? 'on' : 'off'}, dropout ${c.dropout}`,
      `norm strategy ${c.norm.name}@${c.norm.version} ${JSON.stringify(c.norm.options)} over ${c.normKind} (eps ${c.normEps})`,
      `parameters ${this.params.count().toLocaleString('en-US')}`,
    ];
  }

  setDiagnostics(on: boolean): void {
    this.recorder.enabled = on;
    if (!on) this.recorder.clear();
  }

  takeNormInputs(): Promise<Map<string, number>> {
    return this.recorder.take();
  }

  dispose(): void {
    this.params.dispose();
    this.recorder.clear();
    for (const t of this.cache.values()) t.dispose();
    this.cache.clear();
  }
}

/** Concatenates `[rows, cols]` matrices (given as flat row-major arrays) along columns. */
function interleaveColumns(rows: number, mats: Float32Array[]): Float32Array {
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

/** The GPT model family (`family: "gpt"` in checkpoints). */
export const gptFamily: ModelFamily<GPTConfig> = {
  name: 'gpt',
  version: '1',
  description: 'GPT: causal Transformer with pluggable residual normalization (Pre-LN, Post-LN, DeepNorm, …)',
  parseConfig: (raw) => parseGPTConfig(raw, (name, options) => selectNorm(name, options).selection),
  create: (config, options) => new GPT(config, options),
};
