import { defineNorm, type InitRequest, type InitSpec, opt, scaleInit } from '@strata/core';
import * as tf from '@tensorflow/tfjs-core';
import { depthsOf, subLnGamma } from '../constants.js';
import { isSublayerRole, isValueOrOutput } from '../util.js';

/**
 * SubLN's init rule for one sublayer weight (Magneto, arXiv 2210.06423, §2.2/§3; torchscale `subln` init):
 * - `xavier`: Xavier-normal with gain **γ** on the V slice, attention output projection and FFN matrices,
 *   gain 1 on Q and K, zero biases;
 * - `base`: the model's own init, with v/out/ffn weights and biases multiplied by γ (torchscale).
 */
export function subLnInit(req: InitRequest, gamma: number, mode: 'xavier' | 'base'): InitSpec {
  if (!isSublayerRole(req.role)) return req.base;
  const scaled = isValueOrOutput(req);
  if (mode === 'base') return scaled ? scaleInit(req.base, gamma) : req.base;
  if (req.kind === 'bias') return { kind: 'zeros' };
  return { kind: 'xavier-normal', gain: scaled ? gamma : 1 };
}

/**
 * **SubLN** (Magneto — Wang, Ma, Huang et al. 2022, "Foundation Transformers", arXiv 2210.06423;
 * microsoft/torchscale `subln`): Pre-LN plus one extra LN inside each sublayer, just before its output
 * projection,
 *
 * `x ← x + W_out·LN_inner(f(LN(x)))` — attention: `out_proj(LN(Attention(Q,K,V)))`; FFN: `fc2(LN(φ(fc1(LN(x)))))`
 *
 * with a **final LN**, and an init that **up-scales** v, out, ffn-in and ffn-out by
 * γ = √(ln 2N) (decoder-only/encoder-only; encoder-decoder: see {@link subLnGamma}).
 *
 * Encoder-decoder: the decoder's cross-attention keeps only the outer LN (no `inner_norm`) and its weights
 * are not up-scaled (torchscale skips `encoder_attn`); γ per stack as {@link subLnGamma} says.
 *
 * Weights per site: `<site>.norm.*` (outer), `<site>.inner_norm.*` (width dModel for attention, dFF for the
 * MLP; none on cross-attention); final: `final.norm.*`.
 */
export const subLN = defineNorm({
  name: 'subln',
  version: '1.0.0',
  description:
    'SubLN (Magneto): Pre-LN + LN before each output projection, γ=√ln(2N) init up-scaling, final LN',
  formula: 'x_{l+1} = x_l + W_out·LN_in(f(LN(x_l))); γ = √ln(2N)',
  options: {
    /** Pins the init gain γ (default auto: √ln(2N) from depth). */
    gamma: opt.optionalNumber({
      gt: 0,
      description: 'pins the init gain γ (default auto: √ln(2N) from depth)',
    }),
    /** `xavier`: Xavier-normal with gain γ on v/out/ffn, 1 on q/k; `base`: the model's init × γ (torchscale). */
    init: opt.enum(['xavier', 'base'], {
      default: 'xavier',
      description:
        'xavier: Xavier-normal with gain γ on v/out/ffn, 1 on q/k; base: the model’s init × γ (torchscale)',
    }),
  },
  createSite(ctx, _opts, host) {
    const ln = host.norm('norm');
    const forward = (x: tf.Tensor2D, branch: (h: tf.Tensor2D) => tf.Tensor2D) =>
      tf.add(x, branch(ln(x) as tf.Tensor2D)) as tf.Tensor2D;
    // Magneto / torchscale: the decoder's cross-attention has only the outer LN.
    if (ctx.site === 'cross') return { forward };
    // The MLP's hidden width, or a GAU's u ⊙ A·v (width e, given as dFF in a GAU stack's context).
    const inner = host.norm('inner_norm', {
      dim: ctx.site === 'mlp' || ctx.site === 'gau' ? ctx.dFF : ctx.dModel,
    });
    return { forward, inner };
  },
  createFinal(_ctx, _opts, host) {
    return host.norm('norm');
  },
  init(req, ctx, opts) {
    // torchscale's SubLN init skips the decoder's cross-attention (`encoder_attn`): gain 1 there.
    const gamma =
      ctx.site === 'cross' ? 1 : (opts.gamma ?? subLnGamma(ctx.architecture, depthsOf(ctx), ctx.stack));
    return subLnInit(req, gamma, opts.init);
  },
});
