import type { ParamSpec } from '@strata/core';
import {
  type Ablations,
  type DepthEditor,
  type DepthPlanContext,
  type DepthRule,
  type DepthRun,
  type DepthVerdict,
  getGrowthRules,
  type LayoutContext,
  registerGrowthRules,
  type StrategyGrowthRules,
} from './rules.js';
import type { ParamLayout } from './spaces.js';

const RESIDUAL_GAIN: ParamLayout = [{ space: 'residual', use: 'gain' }];
const RESIDUAL_BIAS: ParamLayout = [{ space: 'residual', use: 'bias' }];
const RESIDUAL_MULT: ParamLayout = [{ space: 'residual', use: 'mult' }];
const SCALAR: ParamLayout = [{ space: 'fixed', use: 'fixed' }];

/**
 * Layout of a norm created through `WeightHost.norm` (role `norm_gain` / `norm_bias`) over the residual
 * stream: every built-in strategy's `norm`, `norm_in`, `norm_out` and the final norm.
 */
export function residualNormLayout(spec: ParamSpec): ParamLayout | undefined {
  if (spec.role === 'norm_gain') return RESIDUAL_GAIN;
  if (spec.role === 'norm_bias') return RESIDUAL_BIAS;
  return undefined;
}

/**
 * Depth rule for strategies of the form `x ← x + f(G(·))` with f(0) = 0 (Pre-LN, SubLN, LayerScale):
 * the new block's attention and MLP output projections (W_o, b_o, W_2, b_2) are zero, so both branches add
 * exactly 0 — a bitwise identity (G_zero of tongxuluo/prts; Growth guide, "Depth").
 */
export const zeroOutputDepthRule: DepthRule = {
  description: 'new blocks with zero output projections (W_o, b_o, W_2, b_2 = 0): bitwise identity',
  check: () => ({ exactness: 'exact' }),
  apply(run, ed) {
    for (const l of run.layers) for (const n of ed.branchOutputs(l)) ed.zero(n);
  },
};

function postCheck(run: DepthRun): DepthVerdict {
  if (run.position === 0) {
    return {
      exactness: 'approx',
      reason:
        'a Post-LN-type block inserted below block 0 reads the raw embedding, which no norm has normalized yet; insert it higher (Growth guide, "Depth")',
    };
  }
  return {
    exactness: 'eps',
    reason:
      'Post-LN insertion: zero-output blocks and the preceding LN affine moved into the new block; exact up to O(eps/var) (Growth guide, "Depth")',
  };
}

/**
 * The Post-LN insertion recipe (Growth guide, "Depth") for a run of new blocks after
 * old block `prev`: the new blocks' branches output zero; the last new block's MLP norm takes the γ, β of
 * `prev`'s MLP norm (its last LN); `prev`'s last LN and every other LN of the new blocks become γ = 1, β = 0.
 * An already normalized vector is then re-normalized, which is the identity up to O(eps/var). `extra` runs
 * on each new layer (Admin's ω, DeepNorm's stored α); `sites` lists the block's residual sites (default
 * `attn`, `mlp`; a decoder block of an encoder-decoder adds `cross`, whose LN becomes a unit LN too).
 */
export function applyPostLNInsertion(
  run: DepthRun,
  ed: DepthEditor,
  extra?: (layer: number) => void,
  options: { moveAffine?: boolean; sites?: readonly string[] } = {},
): void {
  const norm = (l: number, site: string) => `blocks.${l}.${site}.norm`;
  const last = run.layers[run.layers.length - 1]!;
  // Parameter-free norms (normAffine: false) have no γ, β: nothing to reset or move, and the identity holds
  // the same way (a normalized vector re-normalized).
  const unit = (prefix: string) => {
    if (ed.has(`${prefix}.weight`)) ed.fill(`${prefix}.weight`, 1);
    if (ed.has(`${prefix}.bias`)) ed.zero(`${prefix}.bias`);
  };
  for (const l of run.layers) {
    for (const n of ed.branchOutputs(l)) ed.zero(n);
    for (const site of options.sites ?? ['attn', 'mlp'])
      if (site !== 'mlp' || l !== last || run.prev === undefined) unit(norm(l, site));
    extra?.(l);
  }
  if (run.prev !== undefined) {
    const p = norm(run.prev, 'mlp');
    if (options.moveAffine === false) {
      ed.note('ablation: the preceding LN affine was not moved (negative control)');
      unit(norm(last, 'mlp'));
      return;
    }
    if (ed.has(`${p}.weight`)) ed.move(`${p}.weight`, `${norm(last, 'mlp')}.weight`);
    if (ed.has(`${p}.bias`)) ed.move(`${p}.bias`, `${norm(last, 'mlp')}.bias`);
    unit(p);
  }
}

/** Post-LN: `x ← LN(x + G(x))`, no final norm (Growth guide, "Depth"). */
const postLNRule: DepthRule = {
  description:
    'Post-LN insertion (Growth guide, "Depth"): zero-output blocks; the preceding block’s last LN affine moves into the new block; exact up to O(eps/var)',
  check: postCheck,
  apply: (run, ed, ctx) =>
    applyPostLNInsertion(run, ed, undefined, {
      moveAffine: !ablated(ctx, 'postLnAffine'),
      sites: ctx.sites,
    }),
};

function ablated(ctx: DepthPlanContext, key: keyof Ablations): boolean {
  return ctx.choices.ablate?.[key] === false;
}

/**
 * DeepNorm's decoder-only α: the pinned `alpha` option, else (2M)^¼ (DeepNet; `@strata/norms` `deepNormAlpha`),
 * or (2M)^½ with `constants: 'adam'` (`@strata/norms` `deepNormAdamConstants`).
 */
export function deepNormAlphaOf(options: Readonly<Record<string, unknown>>, layers: number): number {
  const pinned = options.alpha;
  if (typeof pinned === 'number') return pinned;
  return options.constants === 'adam' ? (2 * layers) ** 0.5 : (2 * layers) ** 0.25;
}

/**
 * DeepNorm: `x ← LN(α·x + G(x))` (DeepNet, arXiv 2203.00555; Growth guide, "Depth"). New blocks follow the Post-LN recipe (`LN(α·ẑ + 0)` is
 * still a re-normalization). α = (2N)^¼ changes with N: `keep` pins the old α in the grown model's options
 * (row 31); `absorb` lets α′ = (2N′)^¼ apply and multiplies every existing branch's W_o, b_o, W_2, b_2 by
 * α′/α with eps × (α′/α)², so LN(α′x + (α′/α)G) with eps(α′/α)² = LN(αx + G) with eps (row 28).
 *
 * Encoder-decoder: each stack's α depends on both depths (encoder 0.81·(N⁴M)^(1/16), decoder (3M)^(1/4)), so
 * growing either stack changes both, and one norm eps serves both stacks (no `absorb`). Exact only when α does
 * not follow the depths: a pinned `alpha`, or `perLayerAlpha` (every site stores its α; new sites copy the
 * α of the neighboring old block of their stack). Otherwise refused.
 */
const deepNormRule: DepthRule = {
  description:
    'DeepNorm insertion: Post-LN recipe; α kept (pinned) or absorbed into the existing output projections (DeepNet, arXiv 2203.00555; Growth guide, "Depth")',
  check(run, ctx) {
    if (ctx.stack && typeof ctx.options.alpha !== 'number' && ctx.options.perLayerAlpha !== true)
      return {
        exactness: 'approx',
        reason:
          'DeepNorm in an encoder-decoder computes each stack’s α from both depths (encoder 0.81·(N⁴M)^(1/16), decoder (3M)^(1/4)), so new blocks change the α of both stacks, and one pinned alpha cannot keep two values: train with --norm-opt perLayerAlpha=true (each site stores its α) or a pinned --norm-opt alpha=… to grow in depth (Growth guide, "Encoder-only and encoder-decoder models")',
      };
    return postCheck(run);
  },
  options(ctx) {
    if (ctx.stack) return { ...ctx.options };
    const alpha = deepNormAlphaOf(ctx.options, ctx.smallLayers);
    if (absorbs(ctx)) return { ...ctx.options };
    if (ablated(ctx, 'deepnormAlpha')) return { ...ctx.options, alpha: null };
    return { ...ctx.options, alpha };
  },
  epsFactor(ctx) {
    if (!absorbs(ctx)) return 1;
    const a = deepNormAlphaOf(ctx.options, ctx.smallLayers);
    const a2 = deepNormAlphaOf({ constants: ctx.options.constants }, ctx.bigLayers);
    return (a2 / a) ** 2;
  },
  apply(run, ed, ctx) {
    const alpha = deepNormAlphaOf(ctx.options, ctx.smallLayers);
    const ref = run.prev ?? run.next;
    if (ctx.stack && ctx.choices.deepnormAlpha === 'absorb')
      ed.note(
        'DeepNorm α kept: absorb is not available for an encoder-decoder (its two stacks share one norm eps)',
      );
    applyPostLNInsertion(
      run,
      ed,
      (l) => {
        for (const site of ctx.sites) {
          const n = `blocks.${l}.${site}.alpha`;
          if (!ed.has(n)) continue;
          // Encoder-decoder: the stack's own α, from an old block of the same stack.
          const stored =
            ctx.stack && ref !== undefined ? ed.get(`blocks.${ref}.${site}.alpha`).data[0] : undefined;
          ed.fill(n, stored ?? alpha);
        }
      },
      { moveAffine: !ablated(ctx, 'postLnAffine'), sites: ctx.sites },
    );
  },
};

function absorbs(ctx: DepthPlanContext): boolean {
  return (
    ctx.stack === undefined &&
    ctx.choices.deepnormAlpha === 'absorb' &&
    typeof ctx.options.alpha !== 'number' &&
    ctx.options.perLayerAlpha !== true
  );
}

/** The DeepNorm `absorb` pre-step: existing branch outputs × α′/α (called by the depth stage). */
export function deepNormAbsorb(ctx: DepthPlanContext, ed: DepthEditor, oldLayers: readonly number[]): void {
  if (ctx.strategy !== 'deepnorm' || !absorbs(ctx)) return;
  const a = deepNormAlphaOf(ctx.options, ctx.smallLayers);
  const a2 = deepNormAlphaOf({ constants: ctx.options.constants }, ctx.bigLayers);
  for (const l of oldLayers) for (const n of ed.branchOutputs(l)) ed.scale(n, a2 / a);
  ed.note(
    `DeepNorm α ${a.toPrecision(6)} → ${a2.toPrecision(6)} absorbed: existing W_o, b_o, W_2, b_2 × ${(a2 / a).toPrecision(6)}, eps × ${((a2 / a) ** 2).toPrecision(6)}`,
  );
}

/** Admin: `x ← LN(x ⊙ ω + G(x))`; new sites get a uniform ω (the mean of the neighbor's), then Post-LN recipe. */
const adminRule: DepthRule = {
  description: 'Admin insertion: Post-LN recipe with a uniform ω in the new sites (LN(c·ẑ) = ẑ up to eps)',
  check: postCheck,
  apply(run, ed, ctx) {
    const ref = run.prev ?? run.next;
    applyPostLNInsertion(
      run,
      ed,
      (l) => {
        for (const site of ctx.sites) {
          const n = `blocks.${l}.${site}.omega`;
          if (!ed.has(n)) continue;
          const src = ref !== undefined ? ed.get(`blocks.${ref}.${site}.omega`).data : ed.get(n).data;
          let s = 0;
          for (const v of src) s += Math.abs(v);
          ed.fill(n, src.length ? s / src.length : 1);
        }
      },
      { moveAffine: !ablated(ctx, 'postLnAffine'), sites: ctx.sites },
    );
  },
};

/** Mix-LN's number of leading Post-LN layers (`@strata/norms` `mixLnPostLayers`). */
export function mixLnPostLayersOf(layers: number, options: Readonly<Record<string, unknown>>): number {
  const fraction = typeof options.fraction === 'number' ? options.fraction : 0.25;
  const pinned = typeof options.postLayers === 'number' ? options.postLayers : null;
  return Math.min(layers, Math.floor(pinned ?? fraction * layers));
}

function mixIsPost(run: DepthRun, ctx: DepthPlanContext): boolean {
  const P = mixLnPostLayersOf(ctx.smallLayers, ctx.options);
  return P > 0 && run.position < P;
}

/**
 * Mix-LN: the first P layers are Post-LN, the rest Pre-LN. A run inserted among the Post-LN layers is a
 * Post-LN block (Post-LN recipe); a run at or above P is a Pre-LN block (zero outputs). `postLayers` is pinned
 * to the grown count so every old layer keeps its type.
 */
const mixLNRule: DepthRule = {
  description:
    'Mix-LN insertion: Post-LN recipe among the leading Post-LN layers, zero outputs among the Pre-LN layers; postLayers pinned',
  check: (run, ctx) => {
    if (ctx.stack && mixLnPostLayersOf(ctx.smallLayers, ctx.options) > 0)
      return {
        exactness: 'approx',
        reason:
          'Mix-LN in an encoder-decoder: its one postLayers option counts the leading Post-LN layers of both stacks, so pinning it to the grown stack’s count would change the other stack’s layer types',
      };
    return mixIsPost(run, ctx) ? postCheck(run) : { exactness: 'exact' };
  },
  options(ctx) {
    if (ctx.stack) return { ...ctx.options };
    const P = mixLnPostLayersOf(ctx.smallLayers, ctx.options);
    let added = 0;
    for (const r of ctx.runs) if (P > 0 && r.position < P) added += r.layers.length;
    return { ...ctx.options, postLayers: P + added };
  },
  apply(run, ed, ctx) {
    if (mixIsPost(run, ctx))
      applyPostLNInsertion(run, ed, undefined, {
        moveAffine: !ablated(ctx, 'postLnAffine'),
        sites: ctx.sites,
      });
    else zeroOutputDepthRule.apply(run, ed, ctx);
  },
};

/** Sandwich-LN: `x ← x + LN_out(G(LN_in(x)))`: LN_out's γ, β = 0 make the branch add exactly 0. */
const sandwichRule: DepthRule = {
  description: 'new blocks with LN_out γ = β = 0 (the branch adds exactly 0): bitwise identity',
  check: () => ({ exactness: 'exact' }),
  apply(run, ed, ctx) {
    for (const l of run.layers) {
      for (const site of ctx.sites) {
        ed.zero(`blocks.${l}.${site}.norm_out.weight`);
        if (ed.has(`blocks.${l}.${site}.norm_out.bias`)) ed.zero(`blocks.${l}.${site}.norm_out.bias`);
      }
    }
  },
};

/** ReZero: `x ← x + a·G(x)`; new blocks get a = 0 (ReZero's own init): bitwise identity. */
const reZeroRule: DepthRule = {
  description: 'new blocks with residual weight a = 0 (ReZero init): bitwise identity',
  check: () => ({ exactness: 'exact' }),
  apply(run, ed, ctx) {
    for (const l of run.layers) for (const site of ctx.sites) ed.zero(`blocks.${l}.${site}.alpha`);
  },
};

const normsOnly = (spec: ParamSpec) => residualNormLayout(spec);
/** Post-LN-type strategies end with the last block's MLP LN (no final norm): the head reads its output. */
const lastBlockNorm = (nLayers: number) => `blocks.${nLayers - 1}.mlp.norm`;

/** The growth rules of every built-in strategy (core's Pre-LN and `@strata/norms`' eight). */
export const BUILTIN_GROWTH_RULES: Readonly<Record<string, StrategyGrowthRules>> = Object.freeze({
  'pre-ln': { layout: normsOnly, zeroPad: true, average: true, depth: zeroOutputDepthRule },
  'post-ln': { layout: normsOnly, zeroPad: true, average: false, headNorm: lastBlockNorm, depth: postLNRule },
  deepnorm: {
    layout: (spec) => (spec.role === 'scale' ? SCALAR : residualNormLayout(spec)),
    zeroPad: true,
    average: false,
    headNorm: lastBlockNorm,
    depth: deepNormRule,
  },
  subln: {
    layout(spec: ParamSpec, _ctx: LayoutContext) {
      const m = /\.(attn|mlp)\.inner_norm\.(weight|bias)$/.exec(spec.name);
      if (m) {
        return [
          {
            space: m[1] === 'attn' ? 'attn' : 'ffn',
            use: spec.role === 'norm_bias' ? 'bias' : 'gain',
          },
        ] as ParamLayout;
      }
      return residualNormLayout(spec);
    },
    zeroPad: false,
    average: false,
    internalNorms: true,
    depth: zeroOutputDepthRule,
  },
  'sandwich-ln': { layout: normsOnly, zeroPad: true, average: false, depth: sandwichRule },
  rezero: {
    layout: (spec) => (spec.role === 'scale' ? SCALAR : residualNormLayout(spec)),
    zeroPad: true,
    average: false,
    depth: reZeroRule,
  },
  layerscale: {
    layout: (spec) => (spec.role === 'scale' ? RESIDUAL_MULT : residualNormLayout(spec)),
    zeroPad: true,
    average: false,
    depth: zeroOutputDepthRule,
  },
  admin: {
    layout: (spec) => (spec.role === 'scale' ? RESIDUAL_MULT : residualNormLayout(spec)),
    zeroPad: true,
    average: false,
    headNorm: lastBlockNorm,
    depth: adminRule,
  },
  // Without Post-LN layers (P = 0) every Mix-LN norm is a pre-norm: average coordinates are exact.
  'mix-ln': {
    layout: normsOnly,
    zeroPad: true,
    average: (options, nLayers) => mixLnPostLayersOf(nLayers, options) === 0,
    depth: mixLNRule,
  },
});

/** Registers {@link BUILTIN_GROWTH_RULES} (idempotent; names already taken by a plugin are left alone). */
export function registerBuiltinGrowthRules(): void {
  for (const [name, rules] of Object.entries(BUILTIN_GROWTH_RULES)) {
    if (!getGrowthRules(name)) registerGrowthRules(name, rules);
  }
}
