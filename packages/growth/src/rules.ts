import type { ParamSpec } from '@strata/core';
import { StrataError } from '@strata/core';
import type { HostTensor } from './host.js';
import type { ParamLayout } from './spaces.js';

/** How exact a transform is by construction. */
export type Exactness =
  /** Only float round-off separates the grown model from the small one. */
  | 'exact'
  /**
   * Exact up to O(eps/var) of the norm eps (Post-LN/DeepNorm/Admin depth insertion: ≈1e-5 with
   * eps 1e-5; Growth guide, "Depth").
   */
  | 'eps'
  /** Changes the function; needs `allowApprox`. */
  | 'approx';

/** One insertion of consecutive new blocks. */
export interface DepthRun {
  /** Index of the small model's block the new blocks go before (`nLayers` = on top). */
  readonly position: number;
  /** Indices of the new blocks in the grown model, bottom to top. */
  readonly layers: readonly number[];
  /** Grown-model index of the old block right below the run (absent at position 0). */
  readonly prev?: number;
  /** Grown-model index of the old block right above the run (absent on top). */
  readonly next?: number;
}

/** What a depth rule knows while planning. */
export interface DepthPlanContext {
  /** Model family of the model being grown. */
  readonly family: string;
  /** Residual strategy name (GPT family) or undefined (families without strategies). */
  readonly strategy?: string;
  /** The small model's strategy options. */
  readonly options: Readonly<Record<string, unknown>>;
  /** Depth before growth. */
  readonly smallLayers: number;
  /** Depth after growth. */
  readonly bigLayers: number;
  /** The runs of consecutive new blocks, bottom to top. */
  readonly runs: readonly DepthRun[];
  /** The small model's config. */
  readonly config: Readonly<Record<string, unknown>>;
  /** Choices passed to growModel (e.g. `deepnormAlpha`). */
  readonly choices: Readonly<DepthChoices>;
  /**
   * The residual sites of each block of the stack being grown, in forward order: `['attn', 'mlp']`, or
   * `['attn', 'cross', 'mlp']` for an encoder-decoder's decoder. A rule that edits per-site weights must
   * cover every one.
   */
  readonly sites: readonly string[];
  /**
   * The stack being grown, for models with two (encoder-decoder): rules still name its blocks `blocks.{i}.…`
   * (the editor adds `encoder.` / `decoder.`). Absent for single-stack models.
   */
  readonly stack?: 'encoder' | 'decoder';
}

/** User choices that depth rules read. */
export interface DepthChoices {
  /**
   * DeepNorm when the depth changes α = (2N)^¼ (DeepNet, arXiv 2203.00555; Growth guide, "Depth"): `keep` pins the old α (option `alpha`);
   * `absorb` adopts the new depth's α′ and multiplies every existing branch's last linear by α′/α with
   * eps × (α′/α)². Both exact (rows 28, 31).
   */
  readonly deepnormAlpha: 'keep' | 'absorb';
  /** Deliberately broken rules, for negative-control tests only (see {@link Ablations}). */
  readonly ablate?: Ablations;
}

/**
 * Switches that turn off one correction of a rule, so a test can show that the correction is needed
 * (negative controls: Growth guide, "Verifying a transform"). Every ablated transform is reported as `approx` and refused
 * unless `allowApprox`. Never use them for real growth.
 */
export interface Ablations {
  /** Keep the norm eps under the isometric map (expected error ≈5e-4, §3.0 row 3). */
  readonly epsFix?: false;
  /** Skip the q, k × b^(−1/4) factor when the head dim grows. */
  readonly qkFix?: false;
  /** Use the standard RoPE table for the grown head dim (≈2.6, row 7). */
  readonly ropeRepeat?: false;
  /** Post-LN depth: do not move the preceding LN affine into the new block (≈1.7, row 27). */
  readonly postLnAffine?: false;
  /** DeepNorm depth: let α change with depth and absorb nothing (≈1.25, row 30). */
  readonly deepnormAlpha?: false;
  /** nGPT width: forget the √d_model factor of s_ν (≈1.6e-2, row 36). */
  readonly ngptScaleFix?: false;
}

/** The verdict of {@link DepthRule.check}. */
export interface DepthVerdict {
  /** How exact the insertion is by construction. */
  readonly exactness: Exactness;
  /** Why it is not exact, or the recipe used. */
  readonly reason?: string;
}

/**
 * Edits the grown model's tensors during depth growth. New blocks arrive as copies of a neighbor
 * (`depthInit: 'copy'`) or fresh init (`'random'`); the rule turns them into identities.
 */
export interface DepthEditor {
  /** Whether the model has a parameter called `name`. */
  has(name: string): boolean;
  /** The host copy of parameter `name`. */
  get(name: string): HostTensor;
  /** Sets every entry to `value` (a new entry: fresh optimizer moments). */
  fill(name: string, value: number): void;
  /** Sets every entry to 0 (a new entry). */
  zero(name: string): void;
  /** Multiplies the tensor by `factor` (its optimizer moments and learning-rate multiplier follow). */
  scale(name: string, factor: number): void;
  /** Copies tensor `from` (values, provenance, moments) into `to`. */
  move(from: string, to: string): void;
  /**
   * Names of the last linear of each branch of block `layer`: the attention output projection and the MLP
   * output projection with their biases (`role` `attn_out` / `ffn_out`, and `<same>.bias`).
   */
  branchOutputs(layer: number): string[];
  /** Notes shown in the growth report. */
  note(text: string): void;
}

/**
 * A strategy's rule for inserting new blocks (Growth guide, "Depth"). Register one with
 * {@link registerGrowthRules} so a plugin strategy can grow in depth.
 */
export interface DepthRule {
  /** One line for the report. */
  readonly description: string;
  /** How exact inserting `run` is (e.g. Post-LN at position 0 cannot be exact). */
  check(run: DepthRun, ctx: DepthPlanContext): DepthVerdict;
  /** Makes the new blocks of `run` identities. */
  apply(run: DepthRun, editor: DepthEditor, ctx: DepthPlanContext): void;
  /** Strategy options of the grown model (e.g. DeepNorm's pinned α, Mix-LN's `postLayers`). */
  options?(ctx: DepthPlanContext): Record<string, unknown>;
  /** Factor on the model's norm eps (DeepNorm `absorb`: (α′/α)²). */
  epsFactor?(ctx: DepthPlanContext): number;
}

/** A per-model rule flag: decided from the strategy options and the number of layers. */
export type StrategyPredicate = (options: Readonly<Record<string, unknown>>, nLayers: number) => boolean;

/** Facts a width rule may use to lay out a strategy parameter. */
export interface LayoutContext {
  /** Residual width of the model the parameter belongs to. */
  readonly dModel: number;
  /** MLP hidden width of that model. */
  readonly dFF: number;
}

/**
 * What a residual-normalization strategy declares so growth can transform its models. Built-in strategies
 * are registered by `@strata/growth`; a plugin author calls {@link registerGrowthRules} with the plugin's
 * name.
 */
export interface StrategyGrowthRules {
  /**
   * Space and use of each of the strategy's own parameters (names like `blocks.3.attn.norm.weight`,
   * `final.norm.bias`); return undefined for parameters that are not the strategy's. Norm gains/biases over
   * the residual stream are `[{ space: 'residual', use: 'gain' | 'bias' }]`, an elementwise multiplier of
   * the residual stream is `use: 'mult'`, scalars are `[{ space: 'fixed', use: 'fixed' }]`.
   */
  layout(spec: ParamSpec, ctx: LayoutContext): ParamLayout | undefined;
  /**
   * Whether RMSNorm zero-padding of the residual stream (non-integer width) keeps this strategy exact; a
   * function decides per model from the strategy options and the number of layers.
   */
  readonly zeroPad?: boolean | StrategyPredicate;
  /**
   * Whether LayerNorm "average coordinates" (non-integer width) keep this strategy exact: only where every
   * norm is a pre-norm (its output feeds a branch or the head, never the residual stream). A function decides
   * per model (Mix-LN: only without Post-LN layers).
   */
  readonly average?: boolean | StrategyPredicate;
  /**
   * For strategies without a final norm: the prefix of the norm whose output the head reads (Post-LN: the last
   * block's last LN, `blocks.{N−1}.mlp.norm`). The tile map with a tied head divides it by k (Staged Training,
   * arXiv 2203.06211:'s final LN ÷ 2).
   */
  headNorm?(nLayers: number, options: Readonly<Record<string, unknown>>): string | undefined;
  /**
   * Whether the strategy has norms over internal widths (SubLN's inner norms): they need eps unchanged, so
   * width growth uses the tile map (eps unchanged) rather than the isometric map (eps ÷ k).
   */
  readonly internalNorms?: boolean;
  /** How new blocks become identities; absent: depth growth is refused (or approximate when allowed). */
  readonly depth?: DepthRule;
}

const KEY = Symbol.for('strata.growthRules');
function store(): Map<string, StrategyGrowthRules> {
  const g = globalThis as unknown as Record<symbol, Map<string, StrategyGrowthRules>>;
  g[KEY] ??= new Map();
  return g[KEY];
}

/**
 * Registers the growth rules of a residual-normalization strategy by its name. A taken name is refused
 * unless `override`.
 */
export function registerGrowthRules(
  strategy: string,
  rules: StrategyGrowthRules,
  options: { override?: boolean } = {},
): void {
  const s = store();
  const existing = s.get(strategy);
  if (existing && existing !== rules && !options.override) {
    throw new StrataError(
      'E_PLUGIN',
      `growth rules for strategy "${strategy}" are already registered; pass { override: true } to replace them`,
    );
  }
  s.set(strategy, rules);
}

/** The growth rules of a strategy, or undefined when none are registered. */
export function getGrowthRules(strategy: string): StrategyGrowthRules | undefined {
  return store().get(strategy);
}

/** Names of the strategies with growth rules. */
export function listGrowthRules(): string[] {
  return [...store().keys()].sort();
}
