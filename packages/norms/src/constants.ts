/**
 * Depth-dependent constants of the built-in strategies, as pure functions so that training code, growth
 * transforms and docs can compute them without building a model.
 *
 * @module
 */
import { type Architecture, StrataError } from '@strata/core';

/** Layer counts of a model: N encoder layers and M decoder layers (0 where the stack does not exist). */
export interface StackDepths {
  /** N, the number of encoder layers. */
  readonly encoderLayers?: number;
  /** M, the number of decoder layers. */
  readonly decoderLayers?: number;
  /**
   * Residual sublayers per layer: 2 (default) for Transformer blocks, 1 for GAU layers. The formulas count
   * blocks of two sublayers (DeepNet's 2N), so L GAU layers enter them as L/2 blocks.
   */
  readonly sublayersPerLayer?: 1 | 2;
}

/** Which stack a residual site belongs to. */
export type Stack = 'encoder' | 'decoder';

function defaultStack(architecture: Architecture): Stack {
  return architecture === 'encoder-only' ? 'encoder' : 'decoder';
}

function count(n: number | undefined, what: string, where: string): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) {
    throw new StrataError('E_CONFIG', `${where}: ${what} must be an integer >= 1, got ${JSON.stringify(n)}`);
  }
  return n;
}

/** Validates (architecture, stack) and returns N and M as the formulas need them. */
function depths(
  architecture: Architecture,
  layers: StackDepths,
  stack: Stack,
  where: string,
): { N: number; M: number } {
  const { N, M } = layerCounts(architecture, layers, stack, where);
  const f = (layers.sublayersPerLayer ?? 2) / 2;
  return { N: f * N, M: f * M };
}

function layerCounts(
  architecture: Architecture,
  layers: StackDepths,
  stack: Stack,
  where: string,
): { N: number; M: number } {
  switch (architecture) {
    case 'decoder-only':
      if (stack !== 'decoder')
        throw new StrataError('E_CONFIG', `${where}: a decoder-only model has no encoder stack`);
      return { N: 0, M: count(layers.decoderLayers, 'decoderLayers (M)', where) };
    case 'encoder-only':
      if (stack !== 'encoder')
        throw new StrataError('E_CONFIG', `${where}: an encoder-only model has no decoder stack`);
      return { N: count(layers.encoderLayers, 'encoderLayers (N)', where), M: 0 };
    case 'encoder-decoder':
      return {
        N: count(layers.encoderLayers, 'encoderLayers (N)', where),
        M: count(layers.decoderLayers, 'decoderLayers (M)', where),
      };
    default:
      throw new StrataError('E_CONFIG', `${where}: unknown architecture ${JSON.stringify(architecture)}`);
  }
}

/**
 * DeepNorm's residual scale **α** (DeepNet, Wang et al. 2022, arXiv 2203.00555, Fig. 2b; identical in
 * microsoft/torchscale `architecture/encoder.py` / `decoder.py`). The skip is multiplied by α:
 * `x ← LN(α·x + G(x))`.
 *
 * | architecture | encoder α | decoder α |
 * |---|---|---|
 * | encoder-only (N) | (2N)^(1/4) | – |
 * | decoder-only (M) | – | (2M)^(1/4) |
 * | encoder-decoder | 0.81·(N⁴M)^(1/16) | (3M)^(1/4) |
 *
 * Fixtures: N = 8 → α = 2; N = 2 → α = √2; N = M = 6 → α_e = 1.4179, α_d = 2.0598.
 *
 * @param architecture model layout
 * @param layers N (`encoderLayers`) and M (`decoderLayers`) — the depths the model was **created** with
 * @param stack which stack's α (default: the only stack of a single-stack model; `decoder` for encoder-decoder)
 */
export function deepNormAlpha(
  architecture: Architecture,
  layers: StackDepths,
  stack: Stack = defaultStack(architecture),
): number {
  const { N, M } = depths(architecture, layers, stack, 'deepNormAlpha');
  if (architecture === 'decoder-only') return (2 * M) ** 0.25;
  if (architecture === 'encoder-only') return (2 * N) ** 0.25;
  return stack === 'encoder' ? 0.81 * (N ** 4 * M) ** (1 / 16) : (3 * M) ** 0.25;
}

/**
 * DeepNorm's init gain **β** (DeepNet, arXiv 2203.00555, Fig. 2b), applied to the value projection, the
 * attention output projection and the FFN matrices (never to q/k): Xavier-normal with gain β.
 *
 * | architecture | encoder β | decoder β |
 * |---|---|---|
 * | encoder-only (N) | (8N)^(-1/4) | – |
 * | decoder-only (M) | – | (8M)^(-1/4) |
 * | encoder-decoder | 0.87·(N⁴M)^(-1/16) | (12M)^(-1/4) |
 *
 * Note: torchscale's encoder-decoder *encoder* uses 1.15·(N⁴M)^(-1/16) (it divides by (N⁴M)^(1/16)/1.15),
 * 32 % larger than the paper; this function follows the paper. Pass DeepNorm's `beta` option to override.
 *
 * Fixtures: N = 8 → β = 0.35355; N = 2 → β = 0.5; N = M = 6 → β_e = 0.4970, β_d = 0.3433.
 */
export function deepNormBeta(
  architecture: Architecture,
  layers: StackDepths,
  stack: Stack = defaultStack(architecture),
): number {
  const { N, M } = depths(architecture, layers, stack, 'deepNormBeta');
  if (architecture === 'decoder-only') return (8 * M) ** -0.25;
  if (architecture === 'encoder-only') return (8 * N) ** -0.25;
  return stack === 'encoder' ? 0.87 * (N ** 4 * M) ** (-1 / 16) : (12 * M) ** -0.25;
}

/**
 * DeepNorm's constants for **Adam** as Su Jianlin derives them ("为什么 DeepNet 的 α 要取 (2N)^¼？" —
 * https://kexue.fm/archives/8978: Adam's update size does not shrink with the weight scale, so the
 * per-sublayer update budget is met with α² = 2N instead of α⁴ = 2N) and as GLM-130B trains with
 * (Zeng et al. 2022, arXiv 2210.02414, §2.3 "DeepNorm": `alpha = (2 * num_layers) ** 0.5`):
 * α = (2N)^(1/2), β = (2N)^(-1/2), N = the number of layers of the (single) stack.
 *
 * Defined for decoder-only and encoder-only models; neither source gives encoder-decoder values, so that
 * architecture is refused.
 *
 * Fixtures: N = 8 → α = 4, β = 0.25; N = 2 → α = 2, β = 0.5; N = 24 → α = 6.9282, β = 0.14434.
 */
export function deepNormAdamConstants(
  architecture: Architecture,
  layers: StackDepths,
  stack: Stack = defaultStack(architecture),
): {
  /** The residual multiplier α = (2N)^½. */
  alpha: number;
  /** The init gain β = (2N)^-½. */
  beta: number;
} {
  if (architecture === 'encoder-decoder')
    throw new StrataError(
      'E_CONFIG',
      'deepnorm constants=adam: α=(2N)^½, β=(2N)^-½ are defined for decoder-only and encoder-only models only; use constants=deepnet for encoder-decoder',
    );
  const { N, M } = depths(architecture, layers, stack, 'deepNormAdamConstants');
  const n = architecture === 'decoder-only' ? M : N;
  return { alpha: (2 * n) ** 0.5, beta: (2 * n) ** -0.5 };
}

/**
 * SubLN / Magneto's init up-scaling **γ** (Wang et al. 2022, "Foundation Transformers", arXiv 2210.06423;
 * torchscale `subln` init): v, out, ffn-in and ffn-out weights are multiplied by γ.
 *
 * - encoder-only / decoder-only: γ = √(ln 2N) (resp. √(ln 2M))
 * - encoder-decoder: encoder γ_e = √(ln(3M)·ln(2N)/3), decoder γ_d = √(ln 3M)
 *
 * Fixtures: N = 8 → γ = 1.6651; N = 2 → γ = 1.1774.
 */
export function subLnGamma(
  architecture: Architecture,
  layers: StackDepths,
  stack: Stack = defaultStack(architecture),
): number {
  const { N, M } = depths(architecture, layers, stack, 'subLnGamma');
  if (architecture === 'decoder-only') return Math.sqrt(Math.log(2 * M));
  if (architecture === 'encoder-only') return Math.sqrt(Math.log(2 * N));
  return stack === 'encoder'
    ? Math.sqrt((Math.log(3 * M) * Math.log(2 * N)) / 3)
    : Math.sqrt(Math.log(3 * M));
}

/**
 * LayerScale's initial diagonal **λ = ε** by depth (CaiT, Touvron et al. 2021, arXiv 2103.17239, §2; timm/deit
 * `init_values`): ε = 0.1 for depth ≤ 18, 1e-5 for depth ≤ 24, 1e-6 deeper.
 * @param depth number of blocks
 */
export function layerScaleInit(depth: number): number {
  if (depth <= 18) return 0.1;
  if (depth <= 24) return 1e-5;
  return 1e-6;
}

/** Admin's output-change regimes (microsoft/admin-torch `output_change_scale`). */
export type AdminScale = 'O(logn)' | 'O(1)' | 'O(n)';

/**
 * Admin's skip scale **ω** at init (Liu et al. 2020, "Understanding the Difficulty of Training Transformers",
 * arXiv 2004.08249; microsoft/admin-torch `calculate_init`), for `x ← LN(x ⊙ ω + G(x))`:
 * - `O(logn)` (default): ω = √((n+1)/ln(n+1) − 1)
 * - `O(1)`: ω = √n
 * - `O(n)`: ω = 1 (plain Post-LN)
 *
 * @param n number of residual sublayers (2N for an N-layer encoder or decoder-only stack)
 */
export function adminOmega(n: number, scale: AdminScale = 'O(logn)'): number {
  if (!(n >= 1)) throw new StrataError('E_CONFIG', `adminOmega: n must be >= 1, got ${n}`);
  if (scale === 'O(n)') return 1;
  if (scale === 'O(1)') return Math.sqrt(n);
  return Math.sqrt((n + 1) / Math.log(n + 1) - 1);
}

/**
 * The depths of the model a residual site belongs to, in the form the constants above take. Falls back to
 * `numLayers` for single-stack models whose context leaves the stack's own count at 0.
 *
 * The constants count **Transformer blocks of two residual sublayers** (DeepNet's N-layer encoder has 2N
 * sublayers: α = (2N)^¼ = (sublayers)^¼). A GAU layer is one sublayer (`sublayersPerLayer: 1`, passed on in
 * the result), so the formulas read a stack of L GAU layers as L/2 blocks: DeepNorm-GAU gets α = L^¼,
 * β = (4L)^-¼, the values of a Transformer with the same number of sublayers (GAU-α's 24 layers ≙ BERT-base's
 * 12 blocks).
 */
export function depthsOf(ctx: {
  readonly architecture: Architecture;
  readonly numLayers: number;
  readonly encoderLayers: number;
  readonly decoderLayers: number;
  readonly sublayersPerLayer?: 1 | 2;
}): Required<StackDepths> {
  const sublayersPerLayer = ctx.sublayersPerLayer ?? 2;
  if (ctx.architecture === 'decoder-only')
    return { encoderLayers: 0, decoderLayers: ctx.decoderLayers || ctx.numLayers, sublayersPerLayer };
  if (ctx.architecture === 'encoder-only')
    return { encoderLayers: ctx.encoderLayers || ctx.numLayers, decoderLayers: 0, sublayersPerLayer };
  return { encoderLayers: ctx.encoderLayers, decoderLayers: ctx.decoderLayers, sublayersPerLayer };
}
