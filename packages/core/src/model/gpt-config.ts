import { configFields, divisorsNear, withDefaults } from '../config-fields.js';
import { StrataError } from '../errors.js';
import type { Architecture, NormKind } from '../norm/contract.js';
import type { NormSelection } from '../norm/registry.js';

/** MLP nonlinearity. `gelu` is GPT-2's tanh approximation; `swiglu` is `(xW_fc) ⊙ SiLU(xW_gate)`. */
export type Activation = 'gelu' | 'gelu_erf' | 'relu' | 'swiglu';
/** Position encoding: learned absolute embeddings (GPT-2), rotary (RoPE), or none. */
export type Positions = 'learned' | 'rope' | 'none';
/**
 * The layer type of a stack: `transformer` (self-attention + MLP, two residual sublayers per layer) or `gau`
 * (one gated attention unit per layer, FLASH / GAU-α: one residual sublayer per layer).
 */
export type BlockType = 'transformer' | 'gau';
/**
 * How a GAU turns its scores `a = q·kᵀ/√s` into weights (n = the keys a query may attend to): `softmax`;
 * `relu2`, FLASH's `relu(a)²/n`; `softmax_plus`, GAU-α's `softmax(a·log n / log base)` (Su Jianlin,
 * https://kexue.fm/archives/8823: entropy that does not grow with the length).
 */
export type AttentionNormalization = 'softmax' | 'relu2' | 'softmax_plus';

/** Configuration of Strata's GPT family. Defaults make a small byte-level GPT. */
export interface GPTConfig {
  readonly [key: string]: unknown;
  /** Vocabulary size (256 for the byte tokenizer). */
  vocabSize: number;
  /** Maximum sequence length. */
  contextLength: number;
  /** Residual width d_model. */
  dModel: number;
  /** Number of blocks. */
  nLayers: number;
  /** Attention heads; must divide dModel. */
  nHeads: number;
  /** MLP hidden width (default 4·dModel). */
  dFF: number;
  /** MLP nonlinearity (default `gelu`, GPT-2's tanh approximation). */
  activation: Activation;
  /** Position encoding (default `learned`, as GPT-2). */
  positions: Positions;
  /** RoPE base θ. */
  ropeBase: number;
  /**
   * RoPE frequency repetition r (1 normally; set by head-dim growth): pair p of a head of dim hd rotates at
   * base^(−2·(p mod hd/(2r))/(hd/r)), i.e. the smaller head's frequencies repeated r times.
   */
  ropeRepeat: number;
  /** LayerNorm or RMSNorm in every norm slot. */
  normKind: NormKind;
  /** Norm epsilon (GPT-2: 1e-5). */
  normEps: number;
  /** Whether LayerNorms have a bias (ignored for RMSNorm). */
  normBias: boolean;
  /**
   * False: every norm is parameter-free (no gain, no bias: `x/√(mean x²+eps)` for RMSNorm, as GAU-α and
   * RoFormerV2 use); the checkpoint then holds no norm weights. Default true.
   */
  normAffine: boolean;
  /** A norm (the model's kind, eps and affinity) on the embedding output before the first layer (BERT, RoFormerV2, GAU-α). */
  embedNorm: boolean;
  /** The layer type: `transformer` (attention + MLP) or `gau` (one gated attention unit per layer). */
  block: BlockType;
  /** GAU only: width e of u and v (default 2·dModel). */
  gauDim: number;
  /** GAU only: key size s of the shared q/k projection z (default min(128, dModel); even with RoPE). */
  gauKeyDim: number;
  /** GAU only: the normalization of the attention scores (default `softmax`). */
  attentionNorm: AttentionNormalization;
  /** GAU only: the base of `softmax_plus`'s `log n / log base` (GAU-α: 512, its pretraining length). */
  softmaxPlusBase: number;
  /** Biases on the linear maps (GPT-2: true). */
  bias: boolean;
  /** Output head shares the token-embedding matrix. */
  tiedEmbeddings: boolean;
  /** Dropout on embeddings, attention output and MLP output (0 disables). */
  dropout: number;
  /** Std of the default normal init (GPT-2: 0.02); output projections get std/√(2·nLayers). */
  initStd: number;
  /**
   * Base init of the sublayer matrices (q, k, v, out, ffn): `gpt2` = N(0, initStd²) with output projections
   * ÷√(2·nLayers); `xavier` = Xavier-normal with gain 1 (DeepNet's baseline init). Norm strategies may
   * still override it per role (DeepNorm's paper init is Xavier-normal with gain β).
   */
  initScheme: 'gpt2' | 'xavier';
  /** Residual-normalization strategy and its validated options. */
  norm: NormSelection;
  /**
   * `decoder-only` (the GPT) or `encoder-only` (family `encoder`: bidirectional attention with a padding
   * mask); recorded for strategies whose constants depend on it.
   */
  architecture: Architecture;
}

/** Default GPT config (a small byte-level model that trains in minutes on a laptop CPU). */
export const GPT_DEFAULTS: Omit<GPTConfig, 'dFF' | 'norm' | 'gauDim' | 'gauKeyDim'> & {
  /** `null`: 4·dModel. */
  dFF: number | null;
  /** `null`: 2·dModel. */
  gauDim: number | null;
  /** `null`: min(128, dModel). */
  gauKeyDim: number | null;
  /** The residual-normalization strategy: Pre-LN with its default options. */
  norm: {
    /** Strategy name (`pre-ln`). */
    name: string;
    /** Strategy options (`{}`: the strategy's defaults). */
    options: Record<string, unknown>;
  };
} = {
  vocabSize: 256,
  contextLength: 128,
  dModel: 128,
  nLayers: 4,
  nHeads: 4,
  dFF: null,
  activation: 'gelu',
  positions: 'learned',
  ropeBase: 10000,
  ropeRepeat: 1,
  normKind: 'layernorm',
  normEps: 1e-5,
  normBias: true,
  normAffine: true,
  embedNorm: false,
  block: 'transformer',
  gauDim: null,
  gauKeyDim: null,
  attentionNorm: 'softmax',
  softmaxPlusBase: 512,
  bias: true,
  tiedEmbeddings: true,
  dropout: 0,
  initStd: 0.02,
  initScheme: 'gpt2',
  norm: { name: 'pre-ln', options: {} },
  architecture: 'decoder-only',
};

/**
 * Validates a GPT config, filling defaults. Unknown keys and impossible shapes fail with an error naming the
 * field. `resolveNorm` validates the strategy and its options (it is the norm registry's `selectNorm`).
 */
export function parseGPTConfig(
  input: unknown,
  resolveNorm: (name: string, options: unknown) => NormSelection,
  architectures: readonly Architecture[] = ['decoder-only'],
): GPTConfig {
  const raw = withDefaults('model config', input, GPT_DEFAULTS);
  const { int, num, oneOf, bool } = configFields('model', raw);
  const dModel = int('dModel', 1, 65536);
  const nHeads = int('nHeads', 1, 4096);
  if (dModel % nHeads !== 0) {
    throw new StrataError(
      'E_CONFIG',
      `model.dModel (${dModel}) must be divisible by model.nHeads (${nHeads}); e.g. nHeads ${divisorsNear(dModel, nHeads)}`,
    );
  }
  const positions = oneOf('positions', ['learned', 'rope', 'none'] as const);
  if (positions === 'rope' && (dModel / nHeads) % 2 !== 0) {
    throw new StrataError(
      'E_CONFIG',
      `RoPE needs an even head dimension; dModel/nHeads = ${dModel / nHeads}`,
    );
  }
  const dFF = raw.dFF === null ? 4 * dModel : int('dFF', 1, 1 << 20);
  const norm = raw.norm as { name?: unknown; options?: unknown } | string;
  const normName = typeof norm === 'string' ? norm : norm?.name;
  if (typeof normName !== 'string') {
    throw new StrataError(
      'E_CONFIG',
      `model.norm must be a strategy name or { name, options }, got ${JSON.stringify(norm)}`,
    );
  }
  const cfg: GPTConfig = {
    vocabSize: int('vocabSize', 2, 1 << 24),
    contextLength: int('contextLength', 1, 1 << 20),
    dModel,
    nLayers: int('nLayers', 1, 100000),
    nHeads,
    dFF,
    activation: oneOf('activation', ['gelu', 'gelu_erf', 'relu', 'swiglu'] as const),
    positions,
    ropeBase: num('ropeBase', 1, 1e12, true),
    ropeRepeat: int('ropeRepeat', 1, 65536),
    normKind: oneOf('normKind', ['layernorm', 'rmsnorm'] as const),
    normEps: num('normEps', 0, 1, true),
    normBias: bool('normBias'),
    normAffine: bool('normAffine'),
    embedNorm: bool('embedNorm'),
    block: oneOf('block', ['transformer', 'gau'] as const),
    gauDim: raw.gauDim === null ? 2 * dModel : int('gauDim', 1, 1 << 20),
    gauKeyDim: raw.gauKeyDim === null ? Math.min(128, dModel) : int('gauKeyDim', 1, 1 << 16),
    attentionNorm: oneOf('attentionNorm', ['softmax', 'relu2', 'softmax_plus'] as const),
    softmaxPlusBase: num('softmaxPlusBase', 1, 1e12, true),
    bias: bool('bias'),
    tiedEmbeddings: bool('tiedEmbeddings'),
    dropout: num('dropout', 0, 0.99),
    initStd: num('initStd', 0, 10, true),
    initScheme: oneOf('initScheme', ['gpt2', 'xavier'] as const),
    architecture: oneOf('architecture', architectures),
    norm: resolveNorm(normName, typeof norm === 'string' ? {} : (norm.options ?? {})),
  };
  checkGAU(cfg);
  if (cfg.positions === 'rope' && (dModel / nHeads / 2) % cfg.ropeRepeat !== 0) {
    throw new StrataError(
      'E_CONFIG',
      `model.ropeRepeat (${cfg.ropeRepeat}) must divide half the head dimension (${dModel / nHeads / 2})`,
    );
  }
  return cfg;
}

/** The GAU fields' cross-checks (and the refusal of GAU-only settings on a Transformer stack). */
function checkGAU(cfg: GPTConfig): void {
  if (cfg.block !== 'gau') {
    if (cfg.attentionNorm !== 'softmax')
      throw new StrataError(
        'E_CONFIG',
        `model.attentionNorm "${cfg.attentionNorm}" applies to GAU layers only (model.block "gau"); a Transformer block uses softmax`,
      );
    return;
  }
  if (cfg.positions === 'rope' && cfg.gauKeyDim % 2 !== 0)
    throw new StrataError('E_CONFIG', `RoPE needs an even GAU key size; model.gauKeyDim = ${cfg.gauKeyDim}`);
  if (cfg.positions === 'rope' && cfg.ropeRepeat !== 1)
    throw new StrataError('E_CONFIG', `model.ropeRepeat must be 1 for GAU layers, got ${cfg.ropeRepeat}`);
  if (cfg.activation !== GPT_DEFAULTS.activation)
    throw new StrataError(
      'E_CONFIG',
      `model.activation does not apply to GAU layers (they use SiLU on [u|v|z]); drop it or use model.block "transformer"`,
    );
}

/** Config of the encoder-only family (`encoder`): the GPT's fields with `architecture: "encoder-only"`, plus the padding id. */
export interface EncoderConfig extends GPTConfig {
  /** Token id that marks padding: no position attends to it (null: no padding mask). */
  padId: number | null;
}

/**
 * Validates an encoder-only config: the GPT's fields (defaults filled, `architecture` forced to
 * `encoder-only`) plus `padId` (default 256, the `<pad>` of the byte-special tokenizer; the default
 * vocabulary is that tokenizer's 276 ids).
 */
export function parseEncoderConfig(
  input: unknown,
  resolveNorm: (name: string, options: unknown) => NormSelection,
): EncoderConfig {
  if (input === null || typeof input !== 'object' || Array.isArray(input))
    throw new StrataError('E_CONFIG', `model config must be an object, got ${JSON.stringify(input)}`);
  const { padId = 256, architecture = 'encoder-only', ...rest } = input as Record<string, unknown>;
  if (architecture !== 'encoder-only')
    throw new StrataError(
      'E_CONFIG',
      `model.architecture must be "encoder-only" for the encoder family, got ${JSON.stringify(architecture)}`,
    );
  const cfg = parseGPTConfig({ vocabSize: 276, ...rest, architecture: 'encoder-only' }, resolveNorm, [
    'encoder-only',
  ]);
  if (
    padId !== null &&
    (!Number.isInteger(padId) || (padId as number) < 0 || (padId as number) >= cfg.vocabSize)
  )
    throw new StrataError(
      'E_CONFIG',
      `model.padId must be null or an integer in [0, ${cfg.vocabSize}) (model.vocabSize), got ${JSON.stringify(padId)}`,
    );
  return { ...cfg, padId: padId as number | null };
}
