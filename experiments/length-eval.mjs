// Evaluates the best-learning-rate runs of a `strata compare` grid at several contexts (`strata eval --context`)
// and writes length.jsonl (one line per run and context), length.md (mean ± std over seeds) and length.svg (loss
// against evaluation context per arm, band = min–max over seeds) beside its log.
// Usage: node experiments/length-eval.mjs OUT CTX1 CTX2 …
//   OUT is a folder holding compare/ and compare.log (gau-decoder.sh), or a grid's output folder whose log is
//   OUT.log (ngpt-vs-gpt.sh: runs/ngpt-vs-gpt/ctx64-steps800 and ctx64-steps800.log); the first context is the
//   training context.
import { writeFileSync } from 'node:fs';
import { bandChart, writePlot } from '../packages/cli/dist/plots.js';
import { evalJSON, finishedGrid, meanStd } from './grid.mjs';

const [out, ...contexts] = process.argv.slice(2);
if (!out || contexts.length === 0) throw new Error('usage: length-eval.mjs OUT CTX1 CTX2 …');
const { best, dest } = finishedGrid(out);
const rows = [];
for (const { variant, lr, runs } of best)
  for (const { seed, dir } of runs)
    for (const ctx of contexts) {
      const r = evalJSON(['--checkpoint', dir, '--context', ctx, '--batches', '8']);
      rows.push({ variant, lr, seed, context: Number(ctx), loss: r.loss, tokens: r.tokens });
      process.stderr.write(`${variant} lr ${lr} s${seed} context ${ctx}: loss ${r.loss.toFixed(4)}\n`);
    }
writeFileSync(dest('length.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
const stat = (xs) => {
  const { m, sd } = meanStd(xs);
  return `${m.toFixed(4)} ± ${sd.toFixed(4)} (n=${xs.length})`;
};
const variants = [...new Set(rows.map((r) => r.variant))];
const lines = [
  `| arm (best lr) | ${contexts.map((c) => `loss @ ${c}`).join(' | ')} |`,
  `|---|${contexts.map(() => '---').join('|')}|`,
  ...variants.map((v) => {
    const lr = rows.find((r) => r.variant === v).lr;
    const cells = contexts.map((c) =>
      stat(rows.filter((r) => r.variant === v && r.context === Number(c)).map((r) => r.loss)),
    );
    return `| ${v} (${lr.toExponential(1)}) | ${cells.join(' | ')} |`;
  }),
];
writeFileSync(
  dest('length.md'),
  `Held-out loss (nats/token) by evaluation context, trained at ${contexts[0]}; mean ± std over seeds.\n\n${lines.join('\n')}\n`,
);
const series = variants.map((v) => ({
  label: `${v} (lr ${rows.find((r) => r.variant === v).lr.toExponential(1)})`,
  points: contexts.map((c) => {
    const xs = rows.filter((r) => r.variant === v && r.context === Number(c)).map((r) => r.loss);
    return { x: Number(c), mean: meanStd(xs).m, lo: Math.min(...xs), hi: Math.max(...xs), n: xs.length };
  }),
}));
const name = dest('length').split('/').pop();
await writePlot(
  dest('length').slice(0, -name.length) || '.',
  name,
  bandChart(series, {
    title: `Held-out loss at longer contexts, trained at ${contexts[0]}`,
    subtitle: 'each arm at its best learning rate; mean over seeds, band = min–max',
    xLabel: 'evaluation context (tokens)',
    yLabel: 'validation loss (nats/token)',
    xFormat: 'd',
    // the whole band of every arm (a seed that breaks down at 4× the context is the finding, not an outlier)
    yDomain: [
      Math.min(...series.flatMap((s) => s.points.map((p) => p.lo))) - 0.02,
      Math.max(...series.flatMap((s) => s.points.map((p) => p.hi))) + 0.02,
    ],
  }),
);
process.stdout.write(`${lines.join('\n')}\n`);
