import * as tf from '@tensorflow/tfjs-core';
import { defineNorm } from './contract.js';

/**
 * Pre-LN (Xiong et al. 2020, "On Layer Normalization in the Transformer Architecture"; GPT-2):
 * `x ← x + G(LN(x))` per sublayer, plus one final LN before the head. Trains without warmup and is
 * stable at depth; Strata's default strategy.
 *
 * Weights per site: `<site>.norm.weight` (+ `.bias` for LayerNorm); final: `final.norm.*`.
 */
export const preLN = defineNorm({
  name: 'pre-ln',
  version: '1.0.0',
  description: 'Pre-LN: x ← x + G(LN(x)), final LN before the head (GPT-2 style)',
  formula: 'x_{l+1} = x_l + G_l(LN(x_l)); y = LN_f(x_L)',
  options: {},
  createSite(_ctx, _opts, host) {
    const ln = host.norm('norm');
    return { forward: (x, branch) => tf.add(x, branch(ln(x) as tf.Tensor2D)) };
  },
  createFinal(_ctx, _opts, host) {
    return host.norm('norm');
  },
});
