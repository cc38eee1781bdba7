import { defineNorm, opt } from '@strata/core';
import * as tf from '@tensorflow/tfjs-core';
import { layerScaleInit } from '../constants.js';

/**
 * **LayerScale** (CaiT — Touvron, Cord, Sablayrolles, Synnaeve, Jégou 2021, "Going deeper with Image
 * Transformers", arXiv 2103.17239): Pre-LN with a learnable per-channel diagonal on each branch,
 *
 * `x ← x + diag(λ)·G(LN(x))`
 *
 * with λ filled with ε = 0.1 up to depth 18, 1e-5 up to depth 24 and 1e-6 deeper ({@link layerScaleInit},
 * from the depth the model was created with; `init` overrides), and a **final LN**.
 *
 * Weights per site: `<site>.norm.*`, `<site>.scale` `[dModel]` (role `scale`, no weight decay);
 * final: `final.norm.*`.
 */
export const layerScale = defineNorm({
  name: 'layerscale',
  version: '1.0.0',
  description: 'LayerScale (CaiT): x ← x + diag(λ)·G(LN(x)), λ = 0.1 / 1e-5 / 1e-6 by depth, final LN',
  formula: 'x_{l+1} = x_l + diag(λ_l)·G_l(LN(x_l))',
  options: {
    /** Initial λ (default auto: 0.1 for depth ≤ 18, 1e-5 ≤ 24, 1e-6 deeper). */
    init: opt.optionalNumber({
      description: 'initial λ (default auto: 0.1 for depth ≤ 18, 1e-5 ≤ 24, 1e-6 deeper)',
    }),
  },
  createSite(ctx, opts, host) {
    const ln = host.norm('norm');
    const value = opts.init ?? layerScaleInit(ctx.numLayers);
    const lambda = host.addWeight('scale', [ctx.dModel], { kind: 'constant', value }, { role: 'scale' });
    return { forward: (x, branch) => tf.add(x, tf.mul(branch(ln(x)), lambda)) };
  },
  createFinal(_ctx, _opts, host) {
    return host.norm('norm');
  },
});
