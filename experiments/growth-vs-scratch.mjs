#!/usr/bin/env node
// Train small → grow (width ×2, depth ×2) → continue, against training the large model from scratch, on the
// same data (Brown corpus), batch, sequence length and constant learning rate. Reports tokens and wall time
// (sum of measured step times) to reach target validation losses, with plots, in OUT/report.md.
//
//   node experiments/growth-vs-scratch.mjs            (OUT=runs/growth-vs-scratch SEEDS=1,2 SMALL_STEPS=150 STEPS=450)
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lineChartSVG } from '@strata/core';

const OUT = process.env.OUT ?? 'runs/growth-vs-scratch';
const SEEDS = (process.env.SEEDS ?? '1,2').split(',').map(Number);
const SMALL_STEPS = Number(process.env.SMALL_STEPS ?? 150);
const STEPS = Number(process.env.STEPS ?? 450); // total steps of every run (small + grown, or scratch)
const BIN = join(import.meta.dirname, '..', 'packages', 'cli', 'dist', 'bin.js');
const COMMON = [
  '--context',
  '64',
  '--batch-size',
  '16',
  '--lr',
  '2e-3',
  '--warmup',
  '20',
  '--schedule',
  'constant',
  '--eval-every',
  '25',
  '--eval-batches',
  '8',
  '--backend',
  'wasm',
  '--json',
];
const BIG = ['--d-model', '128', '--layers', '4', '--heads', '4'];
const SMALL = ['--d-model', '64', '--layers', '2', '--heads', '4'];
const strata = (args) =>
  execFileSync(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
const metrics = (dir) =>
  readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

/** Validation curve as [tokens, seconds, loss] from a metrics file (seconds = cumulative step time). */
function curve(rows) {
  let seconds = 0;
  const out = [];
  for (const r of rows) {
    if (typeof r.ms === 'number') seconds += r.ms / 1000;
    if (typeof r.valLoss === 'number') out.push([r.step * 16 * 64, seconds, r.valLoss]);
  }
  return out;
}

mkdirSync(OUT, { recursive: true });
const runs = [];
for (const seed of SEEDS) {
  const s = ['--seed', String(seed)];
  const scratch = join(OUT, `scratch-s${seed}`);
  strata(['train', ...BIG, ...COMMON, ...s, '--steps', String(STEPS), '--out', scratch, '--force']);
  const small = join(OUT, `small-s${seed}`);
  strata(['train', ...SMALL, ...COMMON, ...s, '--steps', String(SMALL_STEPS), '--out', small, '--force']);
  const grown = join(OUT, `grown-s${seed}`);
  strata([
    'grow',
    '--checkpoint',
    small,
    '--width',
    '2',
    '--depth',
    '2',
    '--noise',
    '1e-3',
    '--seed',
    String(seed),
    '--verify',
    '--out',
    grown,
    '--force',
    '--backend',
    'wasm',
  ]);
  strata(['train', '--resume', grown, '--steps', String(STEPS), '--json']);
  const growth = JSON.parse(readFileSync(join(grown, 'growth.json'), 'utf8'));
  runs.push({
    seed,
    scratch: curve(metrics(scratch)),
    grown: curve(metrics(grown)),
    deltaLogits: growth.report?.maxAbsDeltaLogits,
  });
}

// Targets: the scratch run's validation loss at 1/3, 2/3 and the end of its budget (mean over seeds).
const meanAt = (frac) => {
  const v = runs.map(
    (r) => r.scratch[Math.min(r.scratch.length - 1, Math.round(frac * (r.scratch.length - 1)))][2],
  );
  return v.reduce((a, b) => a + b, 0) / v.length;
};
const targets = [meanAt(1 / 3), meanAt(2 / 3), meanAt(1)];
const first = (c, t) => c.find((p) => p[2] <= t) ?? null;
const lines = ['# Growth vs training from scratch', ''];
lines.push(
  `Large model: d_model 128, 4 layers, 4 heads (${BIG.join(' ')}). Small: d_model 64, 2 layers, grown ×2 in width and ×2 in depth after ${SMALL_STEPS} steps. Same data (Brown corpus), batch 16 × 64 tokens, constant lr 2e-3 after 20 warmup steps, ${STEPS} steps per run, seeds ${SEEDS.join(', ')}. Wall time is the sum of measured step times (evaluation excluded).`,
  '',
);
lines.push(
  `Command: \`node experiments/growth-vs-scratch.mjs\` (OUT=${OUT} SEEDS=${SEEDS.join(',')} SMALL_STEPS=${SMALL_STEPS} STEPS=${STEPS})`,
  '',
);
lines.push(
  '| target val loss | seed | scratch: tokens | scratch: seconds | grown: tokens | grown: seconds | token saving | time saving |',
  '|---|---|---|---|---|---|---|---|',
);
const savings = [];
for (const t of targets) {
  for (const r of runs) {
    const a = first(r.scratch, t);
    const b = first(r.grown, t);
    const tok = a && b ? 1 - b[0] / a[0] : null;
    const sec = a && b ? 1 - b[1] / a[1] : null;
    if (tok !== null) savings.push({ t, tok, sec });
    const f = (p, i, d) => (p ? p[i].toFixed(d) : 'not reached');
    lines.push(
      `| ${t.toFixed(4)} | ${r.seed} | ${f(a, 0, 0)} | ${f(a, 1, 1)} | ${f(b, 0, 0)} | ${f(b, 1, 1)} | ${tok === null ? '—' : `${(100 * tok).toFixed(0)}%`} | ${sec === null ? '—' : `${(100 * sec).toFixed(0)}%`} |`,
    );
  }
}
lines.push(
  '',
  `Function preservation at the growth step (max |Δlogits| on the probe batch): ${runs.map((r) => `seed ${r.seed}: ${r.deltaLogits?.toExponential(2) ?? '?'}`).join(', ')}.`,
  '',
);
lines.push(
  '![validation loss vs tokens](val-vs-tokens.svg)',
  '',
  '![validation loss vs wall time](val-vs-time.svg)',
  '',
);
writeFileSync(join(OUT, 'report.md'), `${lines.join('\n')}\n`);
const series = (x) =>
  runs.flatMap((r) => [
    {
      label: `scratch s${r.seed}`,
      points: r.scratch.map((p) => [p[x], p[2]]),
      color: '#1f77b4',
      dashed: r.seed !== SEEDS[0],
    },
    {
      label: `small→grown s${r.seed}`,
      points: r.grown.map((p) => [p[x], p[2]]),
      color: '#d62728',
      dashed: r.seed !== SEEDS[0],
    },
  ]);
const hLines = targets.map((t, i) => ({ y: t, label: `target ${i + 1}` }));
writeFileSync(
  join(OUT, 'val-vs-tokens.svg'),
  lineChartSVG(series(0), {
    title: 'Validation loss vs training tokens',
    xLabel: 'tokens',
    yLabel: 'loss (nats/byte)',
    hLines,
  }),
);
writeFileSync(
  join(OUT, 'val-vs-time.svg'),
  lineChartSVG(series(1), {
    title: 'Validation loss vs wall time',
    xLabel: 'seconds of training',
    yLabel: 'loss (nats/byte)',
    hLines,
  }),
);
writeFileSync(join(OUT, 'summary.json'), `${JSON.stringify({ targets, runs, savings }, null, 2)}\n`);
console.log(`report: ${join(OUT, 'report.md')}`);
