// Summarizes the grids of experiments/ngpt-vs-gpt.sh across contexts and budgets: for every finished grid
// OUT/ctxC-stepsS, nGPT's step and wall-time multipliers at equal loss against the RoPE GPT, with their spread over
// seeds, and the length check (OUT/ctxC-stepsS-length.jsonl) at the training context and twice it.
// Writes OUT/summary.md, OUT/multiplier.svg (+ .vl.json, .csv: step multiplier against context, one line per budget,
// band = min–max over seeds) and prints the table.
// Usage: node experiments/ngpt-summary.mjs [OUT]      (default runs/ngpt-vs-gpt; needs `npm run build`)
//
// Definitions:
//   pairs         seed i of GPT against seed i of nGPT, each arm at its own best learning rate
//   L             the worse of the pair's two final validation losses: a loss both runs reach
//   step mult.    GPT's steps to L ÷ nGPT's steps to L (linear between evaluations); above 1 nGPT needs fewer
//                 steps, below 1 more — so an arm that ends worse gets a figure too, not a blank
//   step cost     each arm's s/step = the 5th percentile of every step of that arm in the grid (all rates and
//                 seeds: thousands of steps of the same model). The machine is shared: a run's median step moves
//                 1.5× with other tenants' load (the first reports used it and got 0.86–1.68), while the fast tail
//                 is stable (nGPT ÷ GPT 1.04–1.11 in every grid) and agrees with `strata bench`'s CPU time per step
//   time mult.    step multiplier ÷ (nGPT's step cost ÷ GPT's step cost), per pair
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PALETTE, writePlot } from '../packages/cli/dist/plots.js';
import { contextGrids, meanStd } from './grid.mjs';

const out = process.argv[2] ?? 'runs/ngpt-vs-gpt';
const read = new Map(); // each metrics.jsonl is read once: the step cost and the best runs' curves share it
const lines = (f) => {
  if (!read.has(f))
    read.set(
      f,
      readFileSync(f, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l)),
    );
  return read.get(f);
};
const mean = (xs) => meanStd(xs).m;
/** The first step at which a validation curve [[step, loss]…] is at or below L, linear between evaluations. */
const stepsTo = (curve, L) => {
  for (let i = 1; i < curve.length; i++) {
    const [[s0, l0], [s1, l1]] = [curve[i - 1], curve[i]];
    if (l1 <= L) return l0 <= L ? s0 : s0 + ((l0 - L) / (l0 - l1)) * (s1 - s0);
  }
  return Number.NaN;
};
const spread = (xs, d = 2) =>
  xs.length === 0
    ? '—'
    : `${mean(xs).toFixed(d)} [${Math.min(...xs).toFixed(d)}–${Math.max(...xs).toFixed(d)}]`;
const pm = (xs, d = 3) => {
  const { m, sd } = meanStd(xs);
  return `${m.toFixed(d)} ± ${sd.toFixed(d)}`;
};

const grids = contextGrids(out);

const rows = [];
for (const g of grids) {
  const s = JSON.parse(readFileSync(join(out, g.name, 'summary.json'), 'utf8'));
  const best = Object.fromEntries(s.variants.map((v) => [v.variant, v.bestLr]));
  const edge = Object.fromEntries(s.variants.map((v) => [v.variant, v.bestAtEdge]));
  const at = (variant) => s.runs.filter((r) => r.variant === variant && r.lr === best[variant]);
  const perRun = (r) => {
    const m = lines(join(r.runDir, 'metrics.jsonl'));
    const curve = m.filter((e) => typeof e.valLoss === 'number').map((e) => [e.step, e.valLoss]);
    return { seed: r.seed, final: r.finalValLoss, curve };
  };
  // every timed step of an arm in this grid (all rates and seeds) → its 5th-percentile s/step
  const stepCost = (variant) => {
    const ms = s.runs
      .filter((r) => r.variant === variant)
      .flatMap((r) => lines(join(r.runDir, 'metrics.jsonl')))
      .filter((e) => typeof e.ms === 'number')
      .map((e) => e.ms)
      .sort((a, b) => a - b);
    if (ms.length === 0) throw new Error(`${g.name}: no timed steps for ${variant}`);
    return ms[Math.floor(0.05 * ms.length)] / 1000;
  };
  const cost = { gpt: stepCost('gpt'), ngpt: stepCost('ngpt') };
  const gpt = at('gpt').map(perRun);
  const ngpt = at('ngpt').map(perRun);
  // seed i of one arm against seed i of the other: the loss both reach (the worse final), the steps each needs
  const pairs = gpt
    .map((g) => [g, ngpt.find((n) => n.seed === g.seed)])
    .filter(([, n]) => n)
    .map(([g, n]) => {
      const L = Math.max(g.final, n.final);
      const [sg, sn] = [stepsTo(g.curve, L), stepsTo(n.curve, L)];
      return { L, sg, sn, step: sg / sn, time: (sg * cost.gpt) / (sn * cost.ngpt) };
    });
  rows.push({
    ...g,
    gptLr: best.gpt,
    ngptLr: best.ngpt,
    edge,
    gptFinal: gpt.map((r) => r.final),
    ngptFinal: ngpt.map((r) => r.final),
    ngptAhead: `${pairs.filter((p) => p.step > 1).length}/${pairs.length}`,
    stepMult: pairs.map((p) => p.step),
    timeMult: pairs.map((p) => p.time),
    gptMs: cost.gpt * 1000,
    ngptMs: cost.ngpt * 1000,
    stepCost: cost.ngpt / cost.gpt,
  });
}

const lengthRows = [];
for (const g of grids) {
  const f = join(out, `${g.name}-length.jsonl`);
  if (!existsSync(f)) continue;
  const rs = lines(f);
  const by = (variant, ctx) =>
    rs.filter((r) => r.variant === variant && r.context === ctx).map((r) => r.loss);
  lengthRows.push(
    `| ${g.context} | ${g.steps} | ${['gpt', 'ngpt'].map((v) => `${pm(by(v, g.context))} → ${pm(by(v, 2 * g.context))}`).join(' | ')} |`,
  );
}

const fmtLr = (x, e) => `${x.toExponential(1)}${e ? ` (${e} edge)` : ''}`;
const table = [
  '| context | steps | best lr GPT / nGPT | final val loss GPT | final val loss nGPT | seeds where nGPT is ahead | step multiplier | ms/step GPT, nGPT (fastest 5 %) | nGPT ÷ GPT | wall-time multiplier |',
  '|---|---|---|---|---|---|---|---|---|---|',
  ...rows.map(
    (r) =>
      `| ${r.context} | ${r.steps} | ${fmtLr(r.gptLr, r.edge.gpt)} / ${fmtLr(r.ngptLr, r.edge.ngpt)} | ${pm(r.gptFinal)} | ${pm(r.ngptFinal)} | ${r.ngptAhead} | ${spread(r.stepMult)}× | ${r.gptMs.toFixed(1)}, ${r.ngptMs.toFixed(1)} | ${r.stepCost.toFixed(2)} | ${spread(r.timeMult)}× |`,
  ),
];
const md = [
  '# nGPT vs RoPE GPT: multipliers at equal loss',
  '',
  `From \`node experiments/ngpt-summary.mjs ${out}\` over the grids of \`experiments/ngpt-vs-gpt.sh\`. Each row is one`,
  'grid (5+ learning rates per arm, 3 seeds); both arms at their own best rate. Seed i of GPT is paired with seed i',
  'of nGPT; L = the worse of the two final validation losses, which both reach; step multiplier = GPT’s steps to L ÷',
  'nGPT’s steps to L (linear between evaluations): above 1 nGPT needs fewer steps, below 1 more. Step cost: each',
  'arm’s 5th-percentile ms/step over every step it took in the grid (the machine is shared; a run’s median moves',
  '1.5× with other tenants’ load, the fast tail does not). Wall-time multiplier = step multiplier ÷ (nGPT’s step',
  'cost ÷ GPT’s). Mean [min–max] over the seed pairs.',
  '',
  ...table,
  '',
  ...(lengthRows.length
    ? [
        '## Length check: held-out loss at the training context → at twice it',
        '',
        'Best-rate runs of each grid evaluated with `strata eval --context` (mean ± std over seeds).',
        '',
        '| context | steps | GPT (RoPE) | nGPT |',
        '|---|---|---|---|',
        ...lengthRows,
        '',
      ]
    : []),
].join('\n');
writeFileSync(join(out, 'summary.md'), md);

// mean with min–max error bars per (context, budget), budgets side by side, steps and wall time side by side;
// Vega-Lite, as the CLI's plots are
const values = rows
  .filter((r) => r.stepMult.length > 0)
  .flatMap((r) =>
    [
      ['steps', r.stepMult],
      ['wall time', r.timeMult],
    ].map(([metric, xs]) => ({
      metric,
      context: String(r.context),
      budget: `${r.steps} steps`,
      mean: mean(xs),
      lo: Math.min(...xs),
      hi: Math.max(...xs),
      one: 1,
    })),
  );
const budgets = [...new Set(values.map((v) => v.budget))];
const x = {
  field: 'context',
  type: 'ordinal',
  title: 'training context (tokens; 1,024 tokens per step)',
  sort: null,
  axis: { labelAngle: 0 },
};
const color = { field: 'budget', type: 'nominal', title: 'budget', sort: budgets, scale: { range: PALETTE } };
const xOffset = { field: 'budget', type: 'nominal', sort: budgets };
const yMax = Math.max(2, ...values.map((v) => v.hi)) * 1.1;
const panel = (metric, title) => ({
  title: { text: title, fontSize: 12 },
  width: 300,
  height: 260,
  transform: [{ filter: { field: 'metric', equal: metric } }],
  layer: [
    {
      mark: { type: 'rule', strokeDash: [4, 4], color: '#555' },
      encoding: { y: { field: 'one', type: 'quantitative', aggregate: 'max' } },
    },
    {
      mark: { type: 'rule', strokeWidth: 2 },
      encoding: {
        x,
        xOffset,
        color,
        y: {
          field: 'lo',
          type: 'quantitative',
          scale: { domain: [0, yMax] },
          title: 'multiplier (×), nGPT vs GPT',
        },
        y2: { field: 'hi' },
      },
    },
    {
      mark: { type: 'point', filled: true, size: 70 },
      encoding: { x, xOffset, color, y: { field: 'mean', type: 'quantitative' } },
    },
  ],
});
await writePlot(out, 'multiplier', {
  $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
  title: {
    text: 'nGPT against the RoPE GPT: multipliers at equal loss (above 1: nGPT needs less)',
    subtitle:
      'seed i vs seed i, each arm at its best learning rate, at the worse of the pair’s final losses; point = mean of 3 pairs, bar = min–max',
    anchor: 'start',
  },
  data: { values },
  hconcat: [panel('steps', 'in steps'), panel('wall time', 'in wall time (fastest-5 % s/step)')],
  resolve: { scale: { y: 'shared' } },
  config: { font: 'DejaVu Sans', axis: { labelFontSize: 11, titleFontSize: 12 } },
});
process.stdout.write(`${table.join('\n')}\n`);
