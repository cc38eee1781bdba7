import { configFields, divisorsNear, StrataError, withDefaults } from '@strata/core';

/**
 * Configuration of the nGPT family (Loshchilov et al., "nGPT: Normalized Transformer with Representation
 * Learning on the Hypersphere", arXiv 2410.01131). Defaults follow the NVIDIA reference (`NVIDIA/ngpt`
 * `model.py`) at a small byte-level size.
 *
 * Every scaling vector `s` uses the init/scale re-parameterization: the stored parameter `p` starts at
 * `sScale` in every entry and the forward pass uses the effective value `s = p · (sInit / sScale)`, so under
 * Adam `s` moves about `lr · sInit/sScale` per step. Fields left `null` in the raw config are derived from
 * `dModel` by {@link parseNGPTConfig} and stored as numbers, so a saved config reproduces the model exactly.
 */
export interface NGPTConfig {
  readonly [key: string]: unknown;
  /** Vocabulary size V (256 for the byte tokenizer). */
  vocabSize: number;
  /** Maximum sequence length. */
  contextLength: number;
  /** Width d_model (the hypersphere's dimension). */
  dModel: number;
  /** Number of blocks L. */
  nLayers: number;
  /** Attention heads H; must divide `dModel`, and `dModel/nHeads` (d_k) must be even for RoPE. */
  nHeads: number;
  /** SwiGLU width per branch d_ff (u and ν each have `dFF` units; NVIDIA: 4·d_model). */
  dFF: number;
  /** RoPE base θ (10000). */
  ropeBase: number;
  /** RoPE frequency repetition r (1 normally; set by head-dim growth): the smaller head's frequencies repeated r times. */
  ropeRepeat: number;
  /** α_A and α_M (eigen learning rates): effective init (0.05). */
  alphaInit: number;
  /** α_A and α_M: scale of the re-parameterization (default 1/√d_model). */
  alphaScale: number;
  /**
   * Effective α is `|p · alphaInit/alphaScale|` when true (NVIDIA, HF), signed `p · alphaInit/alphaScale`
   * when false (lucidrains). Growth needs `false`: a new block with α = 0 is an exact identity, and under
   * `|·|` an α of exactly 0 has zero gradient and never moves.
   */
  alphaAbs: boolean;
  /** s_qk: effective init (1). */
  sQKInit: number;
  /** s_qk: scale (default 1/√d_model). */
  sQKScale: number;
  /** s_u and s_ν: effective init (1). */
  sUVInit: number;
  /** s_u and s_ν: scale (1). */
  sUVScale: number;
  /** s_z (logit temperature per vocabulary entry): effective init (1). */
  sZInit: number;
  /** s_z: scale (default 1/√d_model). */
  sZScale: number;
  /** Constant factor on ν before SiLU (paper eq. 21; default √d_model). */
  nuGain: number;
  /** Softmax scale on q·k (default √d_k; nGPT multiplies, it does not divide). */
  attnScale: number;
  /** ε inside `Norm(x) = x / √(Σx² + ε)` for hidden states, q and k (guards zero vectors; default 1e-12). */
  normEps: number;
}

/** Raw defaults of {@link NGPTConfig}; `null` means "derived from dModel / nHeads". */
export const NGPT_DEFAULTS = {
  /** {@link NGPTConfig.vocabSize}: `256`. */
  vocabSize: 256,
  /** {@link NGPTConfig.contextLength}: `128`. */
  contextLength: 128,
  /** {@link NGPTConfig.dModel}: `128`. */
  dModel: 128,
  /** {@link NGPTConfig.nLayers}: `4`. */
  nLayers: 4,
  /** {@link NGPTConfig.nHeads}: `4`. */
  nHeads: 4,
  /** {@link NGPTConfig.dFF}: derived from `dModel`. */
  dFF: null,
  /** {@link NGPTConfig.ropeBase}: `10000`. */
  ropeBase: 10000,
  /** {@link NGPTConfig.ropeRepeat}: `1`. */
  ropeRepeat: 1,
  /** {@link NGPTConfig.alphaInit}: `0.05`. */
  alphaInit: 0.05,
  /** {@link NGPTConfig.alphaScale}: derived from `dModel`. */
  alphaScale: null,
  /** {@link NGPTConfig.alphaAbs}: `true`. */
  alphaAbs: true,
  /** {@link NGPTConfig.sQKInit}: `1`. */
  sQKInit: 1,
  /** {@link NGPTConfig.sQKScale}: derived from `dModel`. */
  sQKScale: null,
  /** {@link NGPTConfig.sUVInit}: `1`. */
  sUVInit: 1,
  /** {@link NGPTConfig.sUVScale}: `1`. */
  sUVScale: 1,
  /** {@link NGPTConfig.sZInit}: `1`. */
  sZInit: 1,
  /** {@link NGPTConfig.sZScale}: derived from `dModel`. */
  sZScale: null,
  /** {@link NGPTConfig.nuGain}: derived from `dModel`. */
  nuGain: null,
  /** {@link NGPTConfig.attnScale}: derived from `dModel`. */
  attnScale: null,
  /** {@link NGPTConfig.normEps}: `1e-12`. */
  normEps: 1e-12,
} as const satisfies Readonly<Record<string, number | boolean | null>>;

/**
 * Validates an nGPT config and fills defaults (the `null` ones derived from `dModel`: `dFF = 4·dModel`,
 * `alphaScale = sQKScale = sZScale = 1/√dModel`, `nuGain = √dModel`, `attnScale = √(dModel/nHeads)`).
 * Unknown keys and impossible shapes fail with a {@link StrataError} (`E_CONFIG`) naming the field.
 * Idempotent: parsing a parsed config returns an equal config.
 */
export function parseNGPTConfig(input: unknown): NGPTConfig {
  const raw = withDefaults('nGPT model config', input, NGPT_DEFAULTS);
  const { int, num, numOr, bool } = configFields('model', raw);
  const dModel = int('dModel', 2, 65536);
  const nHeads = int('nHeads', 1, 4096);
  if (dModel % nHeads !== 0) {
    throw new StrataError(
      'E_CONFIG',
      `model.dModel (${dModel}) must be divisible by model.nHeads (${nHeads}); e.g. nHeads ${divisorsNear(dModel, nHeads, (h) => (dModel / h) % 2 === 0)}`,
    );
  }
  const dk = dModel / nHeads;
  if (dk % 2 !== 0) {
    throw new StrataError(
      'E_CONFIG',
      `RoPE needs an even head dimension: model.dModel/model.nHeads = ${dModel}/${nHeads} = ${dk}`,
    );
  }
  const invSqrtD = 1 / Math.sqrt(dModel);
  const BIG = 1e6;
  const cfg: NGPTConfig = {
    vocabSize: int('vocabSize', 2, 1 << 24),
    contextLength: int('contextLength', 1, 1 << 20),
    dModel,
    nLayers: int('nLayers', 1, 100000),
    nHeads,
    dFF: raw.dFF === null ? 4 * dModel : int('dFF', 1, 1 << 20),
    ropeBase: num('ropeBase', 1, 1e12, true),
    ropeRepeat: int('ropeRepeat', 1, 65536),
    alphaInit: num('alphaInit', -BIG, BIG),
    alphaScale: numOr('alphaScale', invSqrtD, 0, BIG, true),
    alphaAbs: bool('alphaAbs'),
    sQKInit: num('sQKInit', -BIG, BIG),
    sQKScale: numOr('sQKScale', invSqrtD, 0, BIG, true),
    sUVInit: num('sUVInit', -BIG, BIG),
    sUVScale: num('sUVScale', 0, BIG, true),
    sZInit: num('sZInit', -BIG, BIG),
    sZScale: numOr('sZScale', invSqrtD, 0, BIG, true),
    nuGain: numOr('nuGain', Math.sqrt(dModel), 0, BIG, true),
    attnScale: numOr('attnScale', Math.sqrt(dk), 0, BIG, true),
    normEps: num('normEps', 0, 1e-2),
  };
  if ((dModel / nHeads / 2) % cfg.ropeRepeat !== 0) {
    throw new StrataError(
      'E_CONFIG',
      `model.ropeRepeat (${cfg.ropeRepeat}) must divide half the head dimension (${dModel / nHeads / 2})`,
    );
  }
  return cfg;
}
