import type * as tf from '@tensorflow/tfjs-core';
import { formatChoices, StrataError } from '../errors.js';
import type { ParamStore } from '../params.js';
import type { AttentionEntropy, AttentionObserver } from './attention-entropy.js';

/** Options for one forward pass. */
export interface ForwardOptions {
  /** Enables dropout (when the config has any). */
  training?: boolean;
  /** Seed for dropout masks; the trainer passes one derived from the step, so runs are reproducible. */
  seed?: number;
  /**
   * Diagnostics: called with the attention weights of every layer that materializes them (GAU layers; the
   * standard block's fused attention never does, and families without GAU layers never call it).
   */
  observeAttention?: AttentionObserver;
}

/** Parameter count of one component, for `strata info`. */
export interface ComponentCount {
  /** Component name: a top-level weight group (e.g. `tok_emb`) or a block part (e.g. `attn`, `mlp`). */
  readonly component: string;
  /** Number of scalar parameters in it. */
  readonly params: number;
}

/**
 * A causal language model: what the trainer, evaluator, sampler, checkpoints and growth transforms work on.
 * Every model family (GPT in core, nGPT in `@strata/ngpt`, user families) implements it.
 */
export interface LanguageModel {
  /** Family name (`gpt`, `ngpt`, …), recorded in `config.json`. */
  readonly family: string;
  /** The validated, JSON-serializable config (includes `vocabSize` and `contextLength`). */
  readonly config: ModelConfigBase;
  /** All trainable parameters by name. */
  readonly params: ParamStore;
  /**
   * Next-token logits.
   * @param ids `[batch, seq]` int32 token ids, `seq ≤ contextLength`
   * @returns `[batch, seq, vocab]`
   */
  forward(ids: tf.Tensor2D, options?: ForwardOptions): tf.Tensor3D;
  /** Runs after every optimizer step (norm strategies' hooks, nGPT's re-projection). */
  afterStep(): void;
  /** Parameter counts grouped by component. */
  components(): ComponentCount[];
  /** A short multi-line description of the architecture. */
  summary(): string[];
  /**
   * Turns on recording of each norm's mean input L2 norm during forward passes (DeepNet §3 diagnostic).
   * `takeNormInputs` returns and clears what was recorded.
   */
  setDiagnostics?(on: boolean): void;
  /** Recorded `norm name → mean ‖input‖₂` since the last call. */
  takeNormInputs?(): Promise<Map<string, number>>;
  /**
   * Summary of the model's learned scaling parameters by kind (nGPT: `alpha_A`, `alpha_M`, `s_qk`, `s_u`,
   * `s_nu`, `s_z`), as the effective values the forward pass uses, over all layers. The CLI writes it into
   * every metrics line (`scales`), draws it (`scales.svg`) and prints it in `strata info`.
   */
  scaleSummary?(): Promise<Record<string, ScaleSummary>>;
  /**
   * Entropy of each GAU layer's attention rows on `ids` `[batch, seq]` (`strata eval --attention-entropy`).
   * Throws a `StrataError` (`E_CONFIG`) on a model without GAU layers.
   */
  attentionEntropy?(ids: tf.Tensor2D): Promise<AttentionEntropy>;
  /** Frees every tensor the model owns. */
  dispose(): void;
}

/** Mean, smallest and largest value of one kind of scaling parameter (see {@link LanguageModel.scaleSummary}). */
export interface ScaleSummary {
  /** Mean over all entries of this kind. */
  readonly mean: number;
  /** Smallest entry. */
  readonly min: number;
  /** Largest entry. */
  readonly max: number;
  /** Number of entries summarized. */
  readonly count: number;
}

/** Fields every family's config has. */
export interface ModelConfigBase {
  /** Number of token ids (256 for the byte tokenizer). */
  readonly vocabSize: number;
  /** Longest sequence the model accepts, in tokens. */
  readonly contextLength: number;
  readonly [key: string]: unknown;
}

/** A model family: parses configs and builds models. Registered by name with {@link registerModelFamily}. */
export interface ModelFamily<C extends ModelConfigBase = ModelConfigBase> {
  /** Registry name, e.g. `gpt`; recorded in checkpoints and chosen with `--model`. */
  readonly name: string;
  /** Version of the family's parameter layout, recorded in checkpoints. */
  readonly version: string;
  /** One line for `strata info` and `--help`. */
  readonly description: string;
  /** Validates a raw config (defaults filled); errors name the field. */
  parseConfig(raw: unknown): C;
  /** Builds a freshly initialized model. */
  create(config: C, options: { seed: number }): LanguageModel;
  /**
   * Training settings this family needs by default (e.g. nGPT: no weight decay, no warmup). The CLI applies
   * them under the user's explicit flags.
   */
  readonly trainingDefaults?: Readonly<Record<string, unknown>>;
  /**
   * Whether a model of this config may run at another context length than it was trained at: true when no
   * weight's shape depends on `contextLength` (RoPE or no positions; no learned position table). Absent: decided
   * from the config's `positions` field (`"learned"` or missing: no).
   */
  contextFree?(config: Record<string, unknown>): boolean;
}

/** A model family of any config type (what the registry holds). */
// biome-ignore lint/suspicious/noExplicitAny: registry of heterogeneous families
export type AnyFamily = ModelFamily<any>;
const KEY = Symbol.for('strata.modelFamilies');
function families(): Map<string, AnyFamily> {
  const g = globalThis as unknown as Record<symbol, Map<string, AnyFamily>>;
  g[KEY] ??= new Map();
  return g[KEY];
}

/** Registers a model family (refused if the name is taken, unless `override`). */
export function registerModelFamily(family: AnyFamily, options: { override?: boolean } = {}): void {
  const m = families();
  const existing = m.get(family.name);
  if (existing && existing !== family && !options.override) {
    throw new StrataError('E_PLUGIN', `a model family named "${family.name}" is already registered`);
  }
  m.set(family.name, family);
}

/** Looks up a model family; the error lists the registered ones. */
export function getModelFamily(name: string): AnyFamily {
  const f = families().get(name);
  if (!f) {
    throw new StrataError(
      'E_CONFIG',
      `unknown model family "${name}"; registered: ${formatChoices([...families().keys()].sort())}`,
    );
  }
  return f;
}

/** Names of the registered model families. */
export function listModelFamilies(): string[] {
  return [...families().keys()].sort();
}
