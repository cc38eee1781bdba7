/**
 * The growth matrix (growth.md §6.1): every built-in strategy × LayerNorm/RMSNorm × learned/RoPE positions ×
 * tied/untied head × each transform. Exact transforms must reproduce the small model's logits to 1e-5 of
 * max |logit| in float32 on the cpu backend; Post-LN-type depth insertion (exact up to O(eps/var)) to 1e-4;
 * transforms without an exact construction must be refused. Models have random weights with non-trivial
 * γ, β, biases and scales (std 0.3), so every parameter matters.
 */
import { initBackend, isStrataError } from '@strata/core';
import { registerBuiltinNorms } from '@strata/norms';
import { beforeAll, describe, expect, it } from 'vitest';
import { type GrowthSpec, growModel } from '../src/index.js';
import { ropeRepeatSupported, tinyGPT } from './helpers.js';

beforeAll(async () => {
  await initBackend('cpu');
  registerBuiltinNorms();
});

/** Every built-in strategy. */
export const STRATEGIES = [
  'pre-ln',
  'post-ln',
  'deepnorm',
  'subln',
  'sandwich-ln',
  'rezero',
  'layerscale',
  'admin',
  'mix-ln',
] as const;
export type Strategy = (typeof STRATEGIES)[number];
type Kind = 'layernorm' | 'rmsnorm';
type Pos = 'learned' | 'rope';
export type Outcome = 'exact' | 'eps' | 'refuse';

/** Mix-LN with fraction 0.5 over 2 layers: layer 0 Post-LN, layer 1 Pre-LN. */
export const OPTIONS: Partial<Record<Strategy, Record<string, unknown>>> = { 'mix-ln': { fraction: 0.5 } };
export const POST_TYPE = new Set<Strategy>(['post-ln', 'deepnorm', 'admin']);

/** A new block inserted before small block `p` (of 2) is Post-LN-type (growth.md §3.2). */
function postInsertion(s: Strategy, p: number): boolean {
  if (POST_TYPE.has(s)) return true;
  return s === 'mix-ln' && p < 1;
}

function depthOutcome(s: Strategy, positions: number[]): Outcome {
  if (positions.some((p) => p === 0 && postInsertion(s, p))) return 'refuse';
  return positions.some((p) => postInsertion(s, p)) ? 'eps' : 'exact';
}

/** What each transform should do, from growth.md §3 (independent of the implementation's own tables). */
const TRANSFORMS: Record<
  string,
  { spec: GrowthSpec; outcome: (s: Strategy, k: Kind, p: Pos, tied: boolean) => Outcome }
> = {
  'd_model ×2 (heads ×2)': { spec: { width: 2 }, outcome: () => 'exact' },
  'd_model ×2, tile map': {
    spec: { width: 2, map: 'tile' },
    // A tied head reads k·h under the tile map: the norm before the head absorbs ÷k (the final norm, or the
    // last block's LN for Post-LN-type strategies); ReZero has no norm at all.
    outcome: (s, _k, _p, tied) => (tied && s === 'rezero' ? 'refuse' : 'exact'),
  },
  'd_model ×3': { spec: { width: 3 }, outcome: () => 'exact' },
  'd_ff ×2': { spec: { ffn: 2 }, outcome: () => 'exact' },
  'd_ff 12→17 (Net2Net)': {
    spec: { dFF: 17 },
    // SubLN's inner norm over d_ff sees the non-uniform copies.
    outcome: (s) => (s === 'subln' ? 'refuse' : 'exact'),
  },
  'heads 2→3, d_model 8→12': {
    spec: { heads: 3 },
    outcome: (s, k) => {
      if (s === 'subln') return 'refuse';
      if (s === 'rezero') return 'exact'; // no norms: zero-padding works for either kind
      if (k === 'rmsnorm') return 'exact'; // zero-padding (row 17)
      return s === 'pre-ln' ? 'exact' : 'refuse'; // LN: average coordinates, pre-norm only (row 22)
    },
  },
  'head dim 4→8': {
    spec: { headDim: 8 },
    // RoPE needs a repeated frequency table: refused until the GPT config has `ropeRepeat`.
    outcome: (_s, _k, p) => (p === 'rope' && !ropeRepeatSupported('gpt') ? 'refuse' : 'exact'),
  },
  // The small and grown RoPE layouts differ: 3 does not divide the small head's 2 pairs, but the grown head's
  // 6 pairs are the small ones repeated 3× (ropeRepeat 3 is valid for the grown head dim 12).
  'head dim 4→12 (×3)': {
    spec: { headDim: 12 },
    outcome: (_s, _k, p) => (p === 'rope' && !ropeRepeatSupported('gpt') ? 'refuse' : 'exact'),
  },
  'heads 2→4 and head dim 4→12 (d_model ×6)': {
    spec: { heads: 4, headDim: 12 },
    outcome: (_s, _k, p) => (p === 'rope' && !ropeRepeatSupported('gpt') ? 'refuse' : 'exact'),
  },
  'depth ×2 interleaved': { spec: { depth: 2 }, outcome: (s) => depthOutcome(s, [1, 2]) },
  'depth +1 on top': {
    spec: { depth: { layers: 3, placement: 'top' } },
    outcome: (s) => depthOutcome(s, [2]),
  },
  'depth +1 at the bottom': { spec: { depth: { insertAt: [0] } }, outcome: (s) => depthOutcome(s, [0]) },
  'width ×2 + depth ×2 + noise': {
    spec: { width: 2, depth: 2, noise: 0.05 },
    outcome: (s) => depthOutcome(s, [1, 2]),
  },
};

/** Registers the matrix for one norm kind (one test file per kind, so the two run in parallel). */
export function growthMatrix(kind: Kind): void {
  describe.each(STRATEGIES)(`%s (${kind})`, (strategy) => {
    const combos: [Pos, boolean][] = [];
    for (const p of ['learned', 'rope'] as const) for (const t of [true, false]) combos.push([p, t]);
    it.each(combos)('%s positions, tied %s', async (positions, tied) => {
      const small = await tinyGPT({
        norm: strategy,
        normOptions: OPTIONS[strategy] ?? {},
        normKind: kind,
        positions,
        tied,
      });
      const failures: string[] = [];
      for (const [label, t] of Object.entries(TRANSFORMS)) {
        const want = t.outcome(strategy, kind, positions, tied);
        let got: Outcome;
        let rel = Number.NaN;
        try {
          const r = await growModel(small, t.spec);
          rel = r.report.relDeltaLogits;
          got = r.report.exactness === 'approx' ? 'refuse' : r.report.exactness;
          const tol = got === 'eps' ? 1e-4 : 1e-5;
          if (!(rel <= tol)) failures.push(`${label}: rel Δlogits ${rel.toExponential(2)} > ${tol}`);
          if (!r.report.withinTolerance) failures.push(`${label}: report says not within tolerance`);
          if (r.model.params.count() <= small.params.count()) failures.push(`${label}: did not grow`);
          r.model.dispose();
        } catch (e) {
          if (!isStrataError(e) || e.code !== 'E_GROWTH') throw e;
          got = 'refuse';
        }
        if (got !== want) failures.push(`${label}: expected ${want}, got ${got} (rel ${rel})`);
      }
      small.dispose();
      expect(failures).toEqual([]);
    });
  });
}
