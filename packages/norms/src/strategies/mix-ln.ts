import { defineNorm, opt } from '@strata/core';
import * as tf from '@tensorflow/tfjs-core';

/** Number of leading Post-LN layers of a Mix-LN stack: `postLayers` if set, else ⌊fraction·L⌋. */
export function mixLnPostLayers(
  numLayers: number,
  opts: { fraction: number; postLayers: number | null },
): number {
  return Math.min(numLayers, Math.floor(opts.postLayers ?? opts.fraction * numLayers));
}

/**
 * **Mix-LN** (Li, Yin, Liu 2024, "Mix-LN: Unleashing the Power of Deeper Layers by Combining Pre-LN and
 * Post-LN", arXiv 2412.13795; pixeli99/MixLN): the first ⌊α·L⌋ layers are Post-LN, the rest Pre-LN,
 *
 * `x ← LN(x + G(x))` for layer l < ⌊α·L⌋, `x ← x + G(LN(x))` after,
 *
 * with a **final LN** (α = `fraction`, 0.25 in the official scripts: 3 of 12, 6 of 24 layers). Pre-LN starves
 * deep layers of gradient and Post-LN starves shallow ones; the mix balances both. L is the depth the model
 * was created with; `postLayers` pins the count (e.g. after growth).
 *
 * Weights per site: `<site>.norm.*`; final: `final.norm.*`.
 */
export const mixLN = defineNorm({
  name: 'mix-ln',
  version: '1.0.0',
  description: 'Mix-LN: first ⌊fraction·L⌋ layers Post-LN, the rest Pre-LN, final LN',
  formula: 'l < ⌊αL⌋: x ← LN(x + G(x)); else x ← x + G(LN(x)); y = LN_f(x_L)',
  options: {
    /** Fraction α of leading layers that are Post-LN. */
    fraction: opt.number({
      default: 0.25,
      min: 0,
      max: 1,
      description: 'fraction α of leading layers that are Post-LN',
    }),
    /** Pins the number of leading Post-LN layers (default auto: ⌊α·L⌋). */
    postLayers: opt.optionalNumber({
      min: 0,
      description: 'pins the number of leading Post-LN layers (default auto: ⌊α·L⌋)',
    }),
  },
  createSite(ctx, opts, host) {
    const ln = host.norm('norm');
    if (ctx.layer < mixLnPostLayers(ctx.numLayers, opts)) {
      return { forward: (x, branch) => ln(tf.add(x, branch(x))) };
    }
    return { forward: (x, branch) => tf.add(x, branch(ln(x))) };
  },
  createFinal(_ctx, _opts, host) {
    return host.norm('norm');
  },
});
