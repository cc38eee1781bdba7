import { defineNorm } from '@strata/core';
import * as tf from '@tensorflow/tfjs-core';

/**
 * **Sandwich-LN** (CogView, Ding et al. 2021, arXiv 2105.13290; the same placement is Peri-LN, Kim et al.
 * 2025, arXiv 2502.02732): Pre-LN plus an LN at the end of each branch,
 *
 * `x ← x + LN_out(G(LN_in(x)))`
 *
 * with a **final LN**. Bounds what each branch can add to the residual stream; made fp16 training of the
 * 48-layer CogView converge where Pre-LN blew up.
 *
 * Weights per site: `<site>.norm_in.*`, `<site>.norm_out.*`; final: `final.norm.*`.
 */
export const sandwichLN = defineNorm({
  name: 'sandwich-ln',
  version: '1.0.0',
  description: 'Sandwich-LN (CogView) / Peri-LN: x ← x + LN_out(G(LN_in(x))), final LN',
  formula: 'x_{l+1} = x_l + LN_out(G_l(LN_in(x_l)))',
  options: {},
  createSite(_ctx, _opts, host) {
    const lnIn = host.norm('norm_in');
    const lnOut = host.norm('norm_out');
    return { forward: (x, branch) => tf.add(x, lnOut(branch(lnIn(x)))) };
  },
  createFinal(_ctx, _opts, host) {
    return host.norm('norm');
  },
});
