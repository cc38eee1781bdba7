import { defineNorm } from '@strata/core';
import * as tf from '@tensorflow/tfjs-core';

/**
 * **Post-LN** — the original Transformer (Vaswani et al. 2017, "Attention Is All You Need", arXiv 1706.03762;
 * BERT): the norm comes after the residual add,
 *
 * `x ← LN(x + G(x))`
 *
 * and there is **no final norm** (the last sublayer's LN is the output). Needs warmup and becomes hard to
 * train with depth (Xiong et al. 2020, arXiv 2002.04745; DeepNet §3). α = β = 1 special case of DeepNorm.
 *
 * Weights per site: `<site>.norm.weight` (+ `.bias` for LayerNorm).
 */
export const postLN = defineNorm({
  name: 'post-ln',
  version: '1.0.0',
  description: 'Post-LN: x ← LN(x + G(x)), no final norm (original Transformer, BERT)',
  formula: 'x_{l+1} = LN(x_l + G_l(x_l))',
  options: {},
  createSite(_ctx, _opts, host) {
    const ln = host.norm('norm');
    return { forward: (x, branch) => ln(tf.add(x, branch(x))) };
  },
  createFinal: () => null,
});
