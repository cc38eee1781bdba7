/**
 * `@strata-examples/norm-plugin`: a third-party residual-normalization strategy for Strata, written only
 * against the public `@strata/core` plugin API. Use it as a template for your own.
 *
 * ```ts
 * import { registerNorm } from '@strata/core';
 * import { scaledPre } from '@strata-examples/norm-plugin';
 * registerNorm(scaledPre);
 * ```
 * or from the CLI: `strata train --plugin @strata-examples/norm-plugin --norm acme/scaled-pre`.
 *
 * @packageDocumentation
 */

import { defineNorm, type NormFn, opt, type ParamStore, registerNorm, type WeightHost } from '@strata/core';
import * as tf from '@tensorflow/tfjs-core';

const options = {
  init: opt.optionalNumber({
    gt: 0,
    description:
      'initial branch scale s (default auto: 1/√(2N) for N layers, as GPT-2 scales its output projections)',
  }),
  maxScale: opt.optionalNumber({
    gt: 0,
    description: 'after every optimizer step, clamp each |s| to this bound (default none)',
  }),
  norm: opt.enum(['model', 'rmsnorm', 'layernorm'], {
    default: 'model',
    description:
      "which normalization the LN slots use: the model's --norm-kind, or force RMSNorm / LayerNorm",
  }),
};

/** Name suffix of the branch-scale weights this strategy owns. */
export const BRANCH_SCALE = 'branch_scale';

function normOf(host: WeightHost, kind: 'model' | 'rmsnorm' | 'layernorm'): NormFn {
  return kind === 'model' ? host.norm('norm') : host.norm('norm', { kind });
}

/**
 * **acme/scaled-pre** — Pre-LN whose branch is scaled by a learnable scalar per sublayer,
 *
 * `x ← x + s·G(LN(x))`, `s = 1/√(2N)` at init, and a final LN before the head,
 *
 * i.e. the GPT-2 / "Scaled init" depth scaling of residual branches (Radford et al. 2019; Shoeybi et al.
 * 2019, Megatron-LM) moved out of the weight init into one learnable scalar, similar in spirit to
 * SkipInit/ReZero (Bachlechner et al. 2020, arXiv 2003.04887) but starting at 1/√(2N) instead of 0 so that
 * every branch learns from step one.
 *
 * Weights per site: `<site>.norm.weight` (+ `.bias` for LayerNorm), `<site>.branch_scale` `[1]`;
 * final: `final.norm.*`.
 */
export const scaledPre = defineNorm({
  name: 'acme/scaled-pre',
  version: '1.0.0',
  description: 'Pre-LN with a learnable branch scale s (init 1/√(2N)): x ← x + s·G(LN(x)), final LN',
  formula: 'x_{l+1} = x_l + s_l·G_l(LN(x_l)), s_l = 1/√(2N) at init',
  options,
  createSite(ctx, opts, host) {
    const ln = normOf(host, opts.norm);
    const s = host.addWeight(
      BRANCH_SCALE,
      [1],
      { kind: 'constant', value: opts.init ?? 1 / Math.sqrt(2 * ctx.numLayers) },
      { role: 'scale' },
    );
    return { forward: (x, branch) => tf.add(x, tf.mul(branch(ln(x)), s)) };
  },
  createFinal(_ctx, opts, host) {
    return normOf(host, opts.norm);
  },
  afterStep(params: ParamStore, opts) {
    const max = opts.maxScale;
    if (max == null) return;
    for (const name of params.names()) {
      if (!name.endsWith(`.${BRANCH_SCALE}`)) continue;
      const v = params.get(name);
      tf.tidy(() => v.assign(tf.clipByValue(v, -max, max)));
    }
  },
});

declare module '@strata/core' {
  interface NormRegistry {
    'acme/scaled-pre': typeof scaledPre;
  }
}

/**
 * Registers {@link scaledPre} (what `--plugin @strata-examples/norm-plugin` does). Idempotent; pass
 * `override` to replace another strategy registered under the same name.
 */
export function register(options: { override?: boolean } = {}): void {
  registerNorm(scaledPre, options);
}
