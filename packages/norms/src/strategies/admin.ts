import { defineNorm, type NormContext, opt } from '@strata/core';
import * as tf from '@tensorflow/tfjs-core';
import { adminOmega, depthsOf } from '../constants.js';
import { frozen } from '../util.js';

/**
 * Number of residual sublayers Admin counts for a site's stack: 2N for an encoder-only or decoder-only stack
 * of N layers; in an encoder-decoder, 2N for the encoder and 2N + 3M for the decoder (every sublayer on the
 * path to its output).
 */
export function adminResidualCount(
  ctx: Pick<
    NormContext,
    'architecture' | 'stack' | 'numLayers' | 'encoderLayers' | 'decoderLayers' | 'sublayersPerLayer'
  >,
): number {
  const { encoderLayers: N, decoderLayers: M, sublayersPerLayer: k } = depthsOf(ctx);
  // k residual sublayers per layer: 2 per Transformer block, 1 per GAU layer.
  if (ctx.architecture === 'decoder-only') return k * M;
  if (ctx.architecture === 'encoder-only') return k * N;
  return ctx.stack === 'encoder' ? k * N : k * N + 3 * M;
}

/**
 * **Admin** (Adaptive model initialization — Liu, Liu, Gao, Chen, Han 2020, "Understanding the Difficulty of
 * Training Transformers", arXiv 2004.08249; microsoft/admin-torch): Post-LN with a per-dimension skip scale,
 *
 * `x ← LN(x ⊙ ω + G(x))`
 *
 * with ω (a vector of width dModel, learnable by default) initialized to admin-torch's constant
 * ω = √((n+1)/ln(n+1) − 1) for an O(log n) output change (default), √n for O(1), 1 for O(n) = Post-LN,
 * where n is the number of residual sublayers ({@link adminOmega}, {@link adminResidualCount}). The original
 * paper's profiling pass (ω = √Σ Var[G_j]) is not used. **No final norm.**
 *
 * Weights per site: `<site>.norm.*`, `<site>.omega` `[dModel]` (role `scale`, no weight decay; `meta.frozen`
 * when `learnable` is false).
 */
export const admin = defineNorm({
  name: 'admin',
  version: '1.0.0',
  description: 'Admin: x ← LN(x ⊙ ω + G(x)), ω = √((n+1)/ln(n+1) − 1) (admin-torch), no final norm',
  formula: 'x_{l+1} = LN(x_l ⊙ ω_l + G_l(x_l))',
  options: {
    /** Output-change regime that sets ω at init (admin-torch output_change_scale). */
    scale: opt.enum(['O(logn)', 'O(1)', 'O(n)'], {
      default: 'O(logn)',
      description: 'output-change regime that sets ω at init (admin-torch output_change_scale)',
    }),
    /** Pins the initial ω (default auto: from scale and depth). */
    omega: opt.optionalNumber({
      gt: 0,
      description: 'pins the initial ω (default auto: from scale and depth)',
    }),
    /** Train ω (a vector of width dModel) or keep it fixed. */
    learnable: opt.boolean({
      default: true,
      description: 'train ω (a vector of width dModel) or keep it fixed',
    }),
  },
  createSite(ctx, opts, host) {
    const ln = host.norm('norm');
    const value = opts.omega ?? adminOmega(adminResidualCount(ctx), opts.scale);
    const omega = host.addWeight(
      'omega',
      [ctx.dModel],
      { kind: 'constant', value },
      { role: 'scale', ...(opts.learnable ? {} : { trainable: false, meta: { frozen: true } }) },
    );
    const w = (): tf.Tensor => (opts.learnable ? omega : frozen(omega));
    return { forward: (x, branch) => ln(tf.add(tf.mul(x, w()), branch(x))) };
  },
  createFinal: () => null,
});
