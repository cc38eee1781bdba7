import type * as tf from '@tensorflow/tfjs-core';
import { type OptionsOf, type OptionsSchema, parseOptions as parseOptionsLazy } from '../options.js';
import type { InitSpec, ParamRole, ParamStore } from '../params.js';

/** Version of the norm-plugin contract. A plugin built for another version is refused at registration. */
export const NORM_API_VERSION = 1 as const;

/** Which normalization a strategy's LN slots use (a model-level choice, `--norm-kind`). */
export type NormKind = 'layernorm' | 'rmsnorm';

/**
 * The residual sublayers of a block: self-attention, the MLP, and (decoder blocks of an encoder-decoder
 * only) cross-attention over the encoder output; `gau`, the one sublayer of a GAU layer (gated attention
 * unit: attention and MLP in one).
 */
export type SublayerSite = 'attn' | 'cross' | 'mlp' | 'gau';

/** Transformer layout, for constants that depend on it (DeepNorm's α and β). */
export type Architecture = 'decoder-only' | 'encoder-only' | 'encoder-decoder';

/** Where a residual site sits in the model; given to {@link NormStrategy.createSite}. */
export interface NormContext {
  /** 0-based block index within its stack. */
  readonly layer: number;
  /** Number of blocks in this stack (N for an encoder, M for a decoder). */
  readonly numLayers: number;
  /** Which sublayer this residual wraps: `attn`, `cross`, `mlp` or `gau`. */
  readonly site: SublayerSite;
  /** Residual width d_model. */
  readonly dModel: number;
  /** Hidden width of the MLP (for norms inside the MLP, as SubLN has); of u and v (e) in a GAU stack. */
  readonly dFF: number;
  /** The model's LN flavor and epsilon. */
  readonly normKind: NormKind;
  /** The model's norm epsilon. */
  readonly eps: number;
  /** Encoder-only, decoder-only or encoder-decoder: DeepNorm's α and β depend on it. */
  readonly architecture: Architecture;
  /** Which stack this site is in (`decoder` for decoder-only models). */
  readonly stack: 'encoder' | 'decoder';
  /** Encoder depth N (0 for decoder-only). */
  readonly encoderLayers: number;
  /** Decoder depth M (0 for encoder-only). */
  readonly decoderLayers: number;
  /**
   * Residual sublayers per layer of this stack: absent (= 2) for Transformer blocks (attention + MLP), 1 for
   * GAU layers. Depth formulas that count sublayers (DeepNorm's α, β: 2N sublayers for N blocks) read a stack
   * of L GAU layers as L/2 blocks (see `depthsOf` in @strata/norms).
   */
  readonly sublayersPerLayer?: 1 | 2;
}

/** Context for the model-level final norm. */
export type FinalNormContext = Omit<NormContext, 'layer' | 'site'>;

/**
 * A normalization function `[..., dim] → [..., dim]` created through {@link WeightHost.norm}. It keeps the
 * shape, so it keeps the tensor type: `branch(ln(x))` type-checks with `x: tf.Tensor2D`, no cast needed.
 */
export type NormFn = <T extends tf.Tensor>(x: T) => T;

/** Options for {@link WeightHost.addWeight}. */
export interface AddWeightOptions {
  /** Role of the weight (default `scale`). */
  role?: ParamRole;
  /** Apply weight decay to it (default false). */
  decay?: boolean;
  /** False for a saved but never-trained buffer (no gradient, no optimizer update). Default true. */
  trainable?: boolean;
  /** Extra tags stored in the {@link ParamSpec}. */
  meta?: Record<string, string | number | boolean>;
}

/**
 * How a strategy creates weights. The weights live in the model's {@link ParamStore}, so they are saved,
 * loaded, optimized and grown like any other parameter. Names are relative to the site: a strategy at block
 * 3's attention site that adds `ln.weight` creates `blocks.3.attn.ln.weight`.
 */
export interface WeightHost {
  /** The name prefix of this site, e.g. `blocks.3.attn.` or `final.`. */
  readonly prefix: string;
  /** Adds a trainable weight and returns its variable. */
  addWeight(name: string, shape: number[], init: InitSpec, options?: AddWeightOptions): tf.Variable;
  /**
   * Creates a LayerNorm or RMSNorm (the model's `normKind`, or `kind` if given) of width `dim`
   * (default `dModel`) with weights `<name>.weight` (and `<name>.bias` for LayerNorm with bias); none when
   * the model's norms are parameter-free (`normAffine: false`). The returned function records its input norm
   * when diagnostics are on.
   */
  norm(name: string, options?: { dim?: number; kind?: NormKind; eps?: number }): NormFn;
}

/** A residual connection around one sublayer, created by a strategy for one site. */
export interface ResidualSite {
  /**
   * Combines the residual stream with the sublayer.
   * @param x residual stream `[rows, dModel]`
   * @param branch the sublayer G (attention or MLP) as a function of its input `[rows, dModel]`
   * @returns the new residual stream `[rows, dModel]`
   */
  forward(x: tf.Tensor2D, branch: (h: tf.Tensor2D) => tf.Tensor2D): tf.Tensor2D;
  /**
   * Optional norm applied inside the sublayer, just before its output projection (SubLN/Magneto):
   * on the attention's concatenated heads `[rows, dModel]`, or on the MLP's hidden activations `[rows, dFF]`.
   */
  inner?: NormFn;
}

/** Facts about the weight being initialized, given to {@link NormStrategy.init}. */
export interface InitRequest {
  /** What the weight does, e.g. `qkv`, `attn_out`, `ffn_in`, `ffn_gate`, `ffn_out`. */
  readonly role: ParamRole;
  /** `q`, `k` or `v` for the slices of a fused QKV matrix (each initialized separately). */
  readonly slice?: 'q' | 'k' | 'v';
  /** A weight matrix or its bias vector. */
  readonly kind: 'weight' | 'bias';
  /** Input width of the matrix (rows of a tfjs `[in, out]` weight). */
  readonly fanIn: number;
  /** Output width of the matrix (columns; of the slice for `q`/`k`/`v`). */
  readonly fanOut: number;
  /** The model family's default init for this weight. */
  readonly base: InitSpec;
}

/**
 * A residual-normalization strategy: the plugin contract. Make one with {@link defineNorm}; register it with
 * {@link registerNorm}. A strategy can
 * - wrap each sublayer's residual (`createSite`), optionally with a norm inside the branch (`inner`),
 * - own weights that save and load with the model (through the {@link WeightHost}),
 * - add a final norm before the head (`createFinal`),
 * - choose the init of each parameter by role (`init`, e.g. DeepNorm's Xavier-normal with gain β),
 * - run a hook after each optimizer step (`afterStep`),
 * - declare typed, validated options (`options`).
 */
export interface NormStrategy<Name extends string = string, S extends OptionsSchema = OptionsSchema> {
  /** Unique name; third-party strategies should be namespaced, e.g. `acme/my-norm`. */
  readonly name: Name;
  /** The strategy's own semver version, recorded in checkpoints. */
  readonly version: string;
  /** Contract version; must equal {@link NORM_API_VERSION}. */
  readonly apiVersion: typeof NORM_API_VERSION;
  /** One line for `strata norms` and `--help`. */
  readonly description: string;
  /** The paper / formula, shown in docs. */
  readonly formula?: string;
  /** Option schema: validated and defaulted by `parseOptions`. */
  readonly options: S;
  /** Validates raw options (JSON or CLI strings). Provided by {@link defineNorm}. */
  parseOptions(raw: unknown): OptionsOf<S>;
  /** Creates the residual site for one sublayer. */
  createSite(ctx: NormContext, opts: OptionsOf<S>, host: WeightHost): ResidualSite;
  /** Creates the final norm before the head, or returns null for none (Post-LN, DeepNorm). */
  createFinal?(ctx: FinalNormContext, opts: OptionsOf<S>, host: WeightHost): NormFn | null;
  /**
   * Chooses the init of a sublayer weight. Return `req.base` to keep the model's default. Called with the
   * context of the site the weight belongs to.
   */
  init?(req: InitRequest, ctx: NormContext, opts: OptionsOf<S>): InitSpec;
  /** Runs after every optimizer step, with all model parameters (e.g. to re-project weights). */
  afterStep?(params: ParamStore, opts: OptionsOf<S>): void;
}

/** Any strategy, for registries and model configs. */
// biome-ignore lint/suspicious/noExplicitAny: the registry holds strategies of every option type
export type AnyNormStrategy = NormStrategy<string, any>;

/**
 * Identity helper that gives a strategy literal-name and options-type inference, fills `apiVersion`, and
 * derives `parseOptions` from `options`.
 *
 * ```ts
 * export const myNorm = defineNorm({
 *   name: 'acme/scaled-pre', version: '1.0.0', description: 'Pre-LN with a scaled branch',
 *   options: { scale: opt.number({ default: 0.5, gt: 0, description: 'branch multiplier' }) },
 *   createSite(ctx, opts, host) {           // opts: { scale: number }
 *     const ln = host.norm('ln');
 *     return { forward: (x, g) => tf.add(x, tf.mul(g(ln(x) as tf.Tensor2D), opts.scale)) };
 *   },
 *   createFinal: (ctx, opts, host) => host.norm('ln'),
 * });
 * ```
 */
export function defineNorm<const Name extends string, const S extends OptionsSchema>(
  strategy: Omit<NormStrategy<Name, S>, 'apiVersion' | 'parseOptions'> & {
    apiVersion?: typeof NORM_API_VERSION;
    parseOptions?: (raw: unknown) => OptionsOf<S>;
  },
): NormStrategy<Name, S> {
  return Object.freeze({
    apiVersion: NORM_API_VERSION,
    parseOptions: (raw: unknown) => parseOptionsLazy(strategy.options, raw, `norm "${strategy.name}"`),
    ...strategy,
  }) as NormStrategy<Name, S>;
}
