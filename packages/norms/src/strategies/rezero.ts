import { defineNorm, opt } from '@strata/core';
import * as tf from '@tensorflow/tfjs-core';

/**
 * **ReZero** (Bachlechner, Majumder, Mao, Cottrell, McAuley 2020, "ReZero is All You Need: Fast Convergence
 * at Large Depth", arXiv 2003.04887): no normalization at all, one learned scalar per sublayer,
 *
 * `x ← x + a·G(x)`, a initialized to 0
 *
 * so every block starts as the identity; **no final norm**. Trains 120-layer Transformers without warmup;
 * reported unstable in fp16 (DeepNet Table 1).
 *
 * Weights per site: `<site>.alpha` `[1]` (role `scale`, no weight decay).
 */
export const reZero = defineNorm({
  name: 'rezero',
  version: '1.0.0',
  description: 'ReZero: x ← x + a·G(x), no LN, a learned scalar initialized to 0',
  formula: 'x_{l+1} = x_l + a_l·G_l(x_l), a_l = 0 at init',
  options: {
    /** Initial value of each residual weight a. */
    init: opt.number({ default: 0, description: 'initial value of each residual weight a' }),
  },
  createSite(_ctx, opts, host) {
    const a = host.addWeight('alpha', [1], { kind: 'constant', value: opts.init }, { role: 'scale' });
    return { forward: (x, branch) => tf.add(x, tf.mul(branch(x), a)) };
  },
  createFinal: () => null,
});
