import { formatChoices, StrataError } from '@strata/core';

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
  vocabSize: 256,
  contextLength: 128,
  dModel: 128,
  nLayers: 4,
  nHeads: 4,
  dFF: null,
  ropeBase: 10000,
  alphaInit: 0.05,
  alphaScale: null,
  alphaAbs: true,
  sQKInit: 1,
  sQKScale: null,
  sUVInit: 1,
  sUVScale: 1,
  sZInit: 1,
  sZScale: null,
  nuGain: null,
  attnScale: null,
  normEps: 1e-12,
} as const satisfies Readonly<Record<string, number | boolean | null>>;

const KEYS = Object.keys(NGPT_DEFAULTS);

function int(raw: Record<string, unknown>, key: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = raw[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new StrataError(
      'E_CONFIG',
      `model.${key} must be an integer in [${min}, ${max}], got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

function num(raw: Record<string, unknown>, key: string, lo: number, hi: number, loOpen = false): number {
  const v = raw[key];
  if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi || (loOpen && v === lo)) {
    throw new StrataError(
      'E_CONFIG',
      `model.${key} must be a number in ${loOpen ? '(' : '['}${lo}, ${hi}], got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

/** A number, or `null` for the derived default. */
function numOr(
  raw: Record<string, unknown>,
  key: string,
  derived: number,
  lo: number,
  hi: number,
  loOpen = false,
): number {
  return raw[key] === null ? derived : num(raw, key, lo, hi, loOpen);
}

function bool(raw: Record<string, unknown>, key: string): boolean {
  const v = raw[key];
  if (typeof v !== 'boolean')
    throw new StrataError('E_CONFIG', `model.${key} must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * Validates an nGPT config and fills defaults (the `null` ones derived from `dModel`: `dFF = 4·dModel`,
 * `alphaScale = sQKScale = sZScale = 1/√dModel`, `nuGain = √dModel`, `attnScale = √(dModel/nHeads)`).
 * Unknown keys and impossible shapes fail with a {@link StrataError} (`E_CONFIG`) naming the field.
 * Idempotent: parsing a parsed config returns an equal config.
 */
export function parseNGPTConfig(input: unknown): NGPTConfig {
  if (input == null || typeof input !== 'object' || Array.isArray(input)) {
    throw new StrataError('E_CONFIG', `model config must be an object, got ${JSON.stringify(input)}`);
  }
  const given = input as Record<string, unknown>;
  for (const k of Object.keys(given)) {
    if (!KEYS.includes(k)) {
      throw new StrataError(
        'E_CONFIG',
        `unknown nGPT model config key "${k}"; valid keys: ${formatChoices(KEYS)}`,
      );
    }
  }
  const raw: Record<string, unknown> = { ...NGPT_DEFAULTS };
  for (const [k, v] of Object.entries(given)) if (v !== undefined) raw[k] = v;
  const dModel = int(raw, 'dModel', 2, 65536);
  const nHeads = int(raw, 'nHeads', 1, 4096);
  if (dModel % nHeads !== 0) {
    throw new StrataError(
      'E_CONFIG',
      `model.dModel (${dModel}) must be divisible by model.nHeads (${nHeads}); e.g. nHeads ${divisorsNear(dModel, nHeads)}`,
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
    vocabSize: int(raw, 'vocabSize', 2, 1 << 24),
    contextLength: int(raw, 'contextLength', 1, 1 << 20),
    dModel,
    nLayers: int(raw, 'nLayers', 1, 100000),
    nHeads,
    dFF: raw.dFF === null ? 4 * dModel : int(raw, 'dFF', 1, 1 << 20),
    ropeBase: num(raw, 'ropeBase', 1, 1e12, true),
    alphaInit: num(raw, 'alphaInit', -BIG, BIG),
    alphaScale: numOr(raw, 'alphaScale', invSqrtD, 0, BIG, true),
    alphaAbs: bool(raw, 'alphaAbs'),
    sQKInit: num(raw, 'sQKInit', -BIG, BIG),
    sQKScale: numOr(raw, 'sQKScale', invSqrtD, 0, BIG, true),
    sUVInit: num(raw, 'sUVInit', -BIG, BIG),
    sUVScale: num(raw, 'sUVScale', 0, BIG, true),
    sZInit: num(raw, 'sZInit', -BIG, BIG),
    sZScale: numOr(raw, 'sZScale', invSqrtD, 0, BIG, true),
    nuGain: numOr(raw, 'nuGain', Math.sqrt(dModel), 0, BIG, true),
    attnScale: numOr(raw, 'attnScale', Math.sqrt(dk), 0, BIG, true),
    normEps: num(raw, 'normEps', 0, 1e-2),
  };
  return cfg;
}

function divisorsNear(d: number, h: number): string {
  const divs: number[] = [];
  for (let i = 1; i <= Math.min(d, 64); i++) if (d % i === 0 && (d / i) % 2 === 0) divs.push(i);
  divs.sort((a, b) => Math.abs(a - h) - Math.abs(b - h));
  return divs
    .slice(0, 3)
    .sort((a, b) => a - b)
    .join(', ');
}
