/**
 * Worst max |Δlogits| of the growths issue 13 made exact, over the same random models as the test matrix
 * (std 0.3 weights, non-trivial γ, β, biases; cpu backend, float32). Run after `npm run build`:
 *
 *   npx tsx packages/growth/scripts/exactness.ts
 */
import { getModelFamily, initBackend, type LanguageModel, Rng } from '@strata/core';
import { BUILTIN_GROWTH_RULES, type GrowthSpec, growModel } from '@strata/growth';
import { registerNGPT } from '@strata/ngpt';
import { registerBuiltinNorms } from '@strata/norms';

function randomize(m: LanguageModel, seed: number): LanguageModel {
  const rng = Rng.derive(seed, 'randomize');
  const values = new Map<string, Float32Array>();
  for (const s of m.params.specs()) {
    const v = new Float32Array(s.shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < v.length; i++) {
      const z = rng.normal() * 0.3;
      const sScale = typeof s.meta?.sScale === 'number' ? s.meta.sScale : 1;
      v[i] = s.role === 'norm_gain' ? 1 + z : s.role === 'scale' ? sScale * (0.5 + rng.next()) : z;
    }
    values.set(s.name, v);
  }
  m.params.assign(values);
  m.afterStep();
  return m;
}

function model(family: string, raw: Record<string, unknown>, seed = 1): LanguageModel {
  const fam = getModelFamily(family);
  return randomize(fam.create(fam.parseConfig({ vocabSize: 16, contextLength: 8, ...raw }), { seed }), seed);
}

await initBackend('cpu');
registerBuiltinNorms();
registerNGPT();
const STRATEGIES = Object.keys(BUILTIN_GROWTH_RULES);
const rows: [string, string, () => LanguageModel, GrowthSpec][] = [];
for (const s of STRATEGIES) {
  const opts = s === 'mix-ln' ? { fraction: 0.5 } : {};
  for (const normKind of ['layernorm', 'rmsnorm']) {
    const gpt = (extra: Record<string, unknown>) => () =>
      model('gpt', {
        dModel: 8,
        nHeads: 2,
        dFF: 12,
        nLayers: 2,
        norm: { name: s, options: opts },
        normKind,
        ...extra,
      });
    rows.push([`head dim 4→12 RoPE`, s, gpt({ positions: 'rope' }), { headDim: 12 }]);
    rows.push([`head dim 4→8 RoPE`, s, gpt({ positions: 'rope' }), { headDim: 8 }]);
    if (s !== 'rezero')
      rows.push([`tile, tied head`, s, gpt({ tiedEmbeddings: true }), { width: 2, map: 'tile' }]);
  }
}
rows.push([
  'average, Mix-LN w/o Post-LN',
  'mix-ln',
  () =>
    model('gpt', {
      dModel: 8,
      nHeads: 2,
      dFF: 12,
      nLayers: 2,
      norm: { name: 'mix-ln', options: { fraction: 0.25 } },
    }),
  { heads: 3 },
]);
const ngpt = (raw: Record<string, unknown>) => () => model('ngpt', { nLayers: 2, alphaAbs: false, ...raw });
rows.push(['d_ff 12→17', 'ngpt', ngpt({ dModel: 8, nHeads: 2, dFF: 12 }), { dFF: 17 }]);
rows.push(['d_ff ×1.5', 'ngpt', ngpt({ dModel: 8, nHeads: 2, dFF: 12 }), { ffn: 1.5 }]);
rows.push([
  'heads 2→3, head dim 4→8',
  'ngpt',
  ngpt({ dModel: 8, nHeads: 2, dFF: 12 }),
  { heads: 3, headDim: 8 },
]);
rows.push(['--width 1.5 (d_model 16→24)', 'ngpt', ngpt({ dModel: 16, nHeads: 2, dFF: 64 }), { width: 1.5 }]);
rows.push(['head dim 6→12 RoPE', 'ngpt', ngpt({ dModel: 12, nHeads: 2, dFF: 12 }), { headDim: 12 }]);
rows.push(['head dim 8→24 RoPE', 'ngpt', ngpt({ dModel: 16, nHeads: 2, dFF: 12 }), { headDim: 24 }]);

const worst = new Map<string, { abs: number; rel: number; n: number }>();
for (const [label, who, make, spec] of rows) {
  const small = make();
  const r = await growModel(small, spec);
  const key = `${label} | ${who}`;
  const w = worst.get(key) ?? { abs: 0, rel: 0, n: 0 };
  worst.set(key, {
    abs: Math.max(w.abs, r.report.maxAbsDeltaLogits),
    rel: Math.max(w.rel, r.report.relDeltaLogits),
    n: w.n + 1,
  });
  small.dispose();
  r.model.dispose();
}
for (const [k, v] of worst)
  console.log(`${k.padEnd(48)} max |Δlogits| ${v.abs.toExponential(1)}  rel ${v.rel.toExponential(1)}`);
