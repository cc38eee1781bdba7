import {
  defineNorm,
  type InitRequest,
  type InitSpec,
  type NormContext,
  type OptionsOf,
  opt,
  scaleInit,
} from '@strata/core';
import * as tf from '@tensorflow/tfjs-core';
import { deepNormAdamConstants, deepNormAlpha, deepNormBeta, depthsOf } from '../constants.js';
import { frozen, isSublayerRole, isValueOrOutput } from '../util.js';

/** DeepNorm's option schema (see {@link deepNorm}); `parseOptions` validates against it. */
export const deepNormOptions = {
  /** Pins α for every site (default auto: from the architecture and the depth the model was created with). */
  alpha: opt.optionalNumber({
    gt: 0,
    description:
      'pins α for every site (default auto: from the architecture and the depth the model was created with; a grown model keeps its old α this way)',
  }),
  /** Pins the init gain β (default auto: from architecture and depth). */
  beta: opt.optionalNumber({
    gt: 0,
    description: 'pins the init gain β (default auto: from architecture and depth)',
  }),
  /** `deepnet`: α=(2M)^¼, β=(8M)^-¼ (the paper); `adam`: α=(2M)^½, β=(2M)^-½ (Su Jianlin's Adam analysis, GLM-130B). */
  constants: opt.enum(['deepnet', 'adam'], {
    default: 'deepnet',
    description:
      'deepnet: α=(2M)^¼, β=(8M)^-¼ (the paper, derived for SGD-like updates); adam: α=(2M)^½, β=(2M)^-½ (Su Jianlin’s Adam analysis, used by GLM-130B; single-stack models)',
  }),
  /** `paper`: Xavier-normal, gain β on v/out/ffn, 1 on q/k, zero biases; `torchscale`: the model's init with v/out/ffn × β. */
  init: opt.enum(['paper', 'torchscale'], {
    default: 'paper',
    description:
      'paper: Xavier-normal, gain β on v/out/ffn, gain 1 on q/k, zero biases; torchscale: the model’s own init with v/out/ffn weights and biases × β',
  }),
  /** Store each site's α as a frozen scalar weight `<site>.alpha`, so a grown model keeps per-layer α. */
  perLayerAlpha: opt.boolean({
    default: false,
    description:
      'store each site’s α as a frozen scalar weight <site>.alpha (saved with the model; lets a grown model keep per-layer α)',
  }),
};

/** The options of {@link deepNorm}. */
export type DeepNormOptions = OptionsOf<typeof deepNormOptions>;

/**
 * α and β of one DeepNorm site: the `alpha` / `beta` options when set, else the formulas that the `constants`
 * option names — {@link deepNormAlpha} / {@link deepNormBeta} (`deepnet`, the default) or
 * {@link deepNormAdamConstants} (`adam`) — of the site's architecture, stack and the depths in its context (the
 * depths the model was created with).
 */
export function deepNormConstants(
  ctx: Pick<
    NormContext,
    'architecture' | 'stack' | 'numLayers' | 'encoderLayers' | 'decoderLayers' | 'sublayersPerLayer'
  >,
  opts: Pick<DeepNormOptions, 'alpha' | 'beta'> & { constants?: DeepNormOptions['constants'] },
): {
  /** The residual multiplier α of `x ← LN(α·x + G(x))`. */
  alpha: number;
  /** The init gain β of the scaled sublayer weights. */
  beta: number;
} {
  const layers = depthsOf(ctx);
  const formula =
    opts.constants === 'adam'
      ? deepNormAdamConstants(ctx.architecture, layers, ctx.stack)
      : {
          alpha: deepNormAlpha(ctx.architecture, layers, ctx.stack),
          beta: deepNormBeta(ctx.architecture, layers, ctx.stack),
        };
  return { alpha: opts.alpha ?? formula.alpha, beta: opts.beta ?? formula.beta };
}

/**
 * DeepNorm's init rule for one sublayer weight (DeepNet, arXiv 2203.00555, §4.3 and Fig. 2a).
 * - `paper`: Xavier-normal (std = gain·√(2/(fanIn+fanOut))) with gain **β** on the V slice of the fused QKV
 *   matrix, the attention output projection, and the FFN input/gate/output matrices; gain **1** on the Q and
 *   K slices; zero biases.
 * - `torchscale` (microsoft/torchscale `Encoder`/`Decoder` constructors): keep the model's base init and
 *   multiply the weights **and biases** of v/out/ffn by β; q/k untouched.
 */
export function deepNormInit(req: InitRequest, beta: number, mode: DeepNormOptions['init']): InitSpec {
  if (!isSublayerRole(req.role)) return req.base;
  const scaled = isValueOrOutput(req);
  if (mode === 'torchscale') return scaled ? scaleInit(req.base, beta) : req.base;
  if (req.kind === 'bias') return { kind: 'zeros' };
  return { kind: 'xavier-normal', gain: scaled ? beta : 1 };
}

/**
 * **DeepNorm** (DeepNet: Scaling Transformers to 1,000 Layers, Wang, Ma, Dong, Huang, Zhang, Wei 2022,
 * arXiv 2203.00555): Post-LN with the **skip** (not the branch) multiplied by α > 1,
 *
 * `x ← LN(α·x + G(x))`
 *
 * plus an init that scales the value/output/FFN weights by β (see {@link deepNormInit}); **no final norm**.
 * Decoder-only: α = (2M)^(1/4), β = (8M)^(-1/4); encoder-only: α = (2N)^(1/4), β = (8N)^(-1/4);
 * encoder-decoder: encoder α = 0.81·(N⁴M)^(1/16), β = 0.87·(N⁴M)^(-1/16), decoder α = (3M)^(1/4),
 * β = (12M)^(-1/4) ({@link deepNormAlpha}, {@link deepNormBeta}). The formulas count blocks of two residual
 * sublayers; a stack of L GAU layers (one sublayer each) counts as L/2 blocks ({@link depthsOf}), so
 * DeepNorm-GAU gets α = L^(1/4), β = (4L)^(-1/4) (decoder-only or encoder-only). In a GAU layer β scales u, v
 * and the output projection; z (the shared q/k projection) keeps gain 1.
 *
 * `constants: 'adam'` switches to α = (2N)^(1/2), β = (2N)^(-1/2) ({@link deepNormAdamConstants}): Su Jianlin's
 * re-derivation for Adam, whose update size does not scale with the weights (https://kexue.fm/archives/8978),
 * as GLM-130B uses (Zeng et al. 2022, arXiv 2210.02414).
 *
 * α is computed from the depth the model was **created** with. Growing the depth changes the formula's α,
 * which would silently shrink every existing branch; to stay exact, a grown model pins the old α with the
 * `alpha` option (or absorbs α′/α into the existing output projections and keeps `alpha: null`). With
 * `perLayerAlpha: true` each site stores α as a frozen scalar weight `<site>.alpha` (role `scale`,
 * `meta.frozen`), so different layers can carry different α through checkpoints.
 *
 * Weights per site: `<site>.norm.weight` (+ `.bias` for LayerNorm), `<site>.alpha` with `perLayerAlpha`.
 */
export const deepNorm = defineNorm({
  name: 'deepnorm',
  version: '1.0.0',
  description: 'DeepNorm (DeepNet): x ← LN(α·x + G(x)), β-scaled init of v/out/ffn, no final norm',
  formula: 'x_{l+1} = LN(α·x_l + G_l(x_l)); α=(2M)^¼, β=(8M)^-¼ (decoder-only)',
  options: deepNormOptions,
  createSite(ctx, opts, host) {
    const { alpha } = deepNormConstants(ctx, opts);
    const ln = host.norm('norm');
    if (opts.perLayerAlpha) {
      const a = host.addWeight(
        'alpha',
        [1],
        { kind: 'constant', value: alpha },
        { role: 'scale', trainable: false, meta: { frozen: true } },
      );
      return { forward: (x, branch) => ln(tf.add(tf.mul(x, frozen(a)), branch(x))) };
    }
    return { forward: (x, branch) => ln(tf.add(tf.mul(x, alpha), branch(x))) };
  },
  createFinal: () => null,
  init(req, ctx, opts) {
    return deepNormInit(req, deepNormConstants(ctx, opts).beta, opts.init);
  },
});
