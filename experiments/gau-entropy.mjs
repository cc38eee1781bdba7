// The mechanism behind softmax_plus (Su Jianlin, https://kexue.fm/archives/8823): a softmax's attention entropy
// grows like ln n with the number of visible keys n, so a model trained at context C attends more diffusely at 2C
// and 4C; scaling the scores by ln n / ln C is meant to hold it flat. For each GAU arm of a `strata compare` grid,
// its best-learning-rate runs are evaluated with `strata eval --attention-entropy` at each context, and this writes
//   OUT/entropy.jsonl   one line per (run, context): per-bucket mean entropy over layers, the slope dH/d ln n
//   OUT/entropy.md      slope per arm and context, and the entropy per bucket of n at the longest context
//   OUT/entropy.svg     (+ .vl.json, .csv) mean entropy against ln n at the longest context, one line per arm
//                       (mean over seeds, band = min–max), with H = ln n (uniform attention) for reference
// Usage: node experiments/gau-entropy.mjs OUT CTX1 CTX2 …   (OUT holds compare/ and compare.log; needs a build)
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bandChart, writePlot } from '../packages/cli/dist/plots.js';
import { evalJSON, finishedGrid, meanStd } from './grid.mjs';

const [out, ...contexts] = process.argv.slice(2);
if (!out || contexts.length === 0) throw new Error('usage: gau-entropy.mjs OUT CTX1 CTX2 …');
const rows = [];
for (const { variant, lr, runs } of finishedGrid(out).best)
  for (const { seed, dir } of runs) {
    let stop = false;
    for (const ctx of contexts) {
      let r;
      try {
        r = evalJSON(['--checkpoint', dir, '--context', ctx, '--attention-entropy']);
      } catch (e) {
        // a standard-block arm has no attention weights to read (fused kernel): skip the arm, say so
        process.stderr.write(
          `${variant}: ${
            String(e.stderr ?? e.message)
              .trim()
              .split('\n')[0]
          }\n`,
        );
        stop = true;
        break;
      }
      rows.push({
        variant,
        lr,
        seed,
        context: Number(ctx),
        attentionNorm: r.attentionNorm,
        slope: r.slope.mean,
        buckets: r.buckets.map((b) => ({
          nMin: b.nMin,
          nMax: b.nMax,
          meanLogN: b.meanLogN,
          H: b.meanEntropy,
        })),
      });
      process.stderr.write(
        `${variant} s${seed} context ${ctx}: slope dH/d ln n ${r.slope.mean.toFixed(3)}\n`,
      );
    }
    if (stop) break;
  }
if (rows.length === 0) throw new Error(`${out}: no GAU arm with checkpoints`);
writeFileSync(join(out, 'entropy.jsonl'), `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`);

const mean = (xs) => meanStd(xs).m;
const pm = (xs) => `${meanStd(xs).m.toFixed(3)} ± ${meanStd(xs).sd.toFixed(3)}`;
const variants = [...new Set(rows.map((r) => r.variant))];
const longest = Math.max(...contexts.map(Number));
const at = (v, c) => rows.filter((r) => r.variant === v && r.context === c);
const bucketsOf = (rs) => rs[0].buckets.map((b, i) => ({ ...b, Hs: rs.map((r) => r.buckets[i].H) }));
const slopeTable = [
  `| arm | attention | ${contexts.map((c) => `slope at ${c}`).join(' | ')} |`,
  `|---|---|${contexts.map(() => '---').join('|')}|`,
  ...variants.map(
    (v) =>
      `| ${v} | ${at(v, Number(contexts[0]))[0].attentionNorm} | ${contexts.map((c) => pm(at(v, Number(c)).map((r) => r.slope))).join(' | ')} |`,
  ),
];
const bucketRows = bucketsOf(at(variants[0], longest));
const bucketTable = [
  `| keys n | ln n | ${variants.map((v) => `H ${v}`).join(' | ')} |`,
  `|---|---|${variants.map(() => '---').join('|')}|`,
  ...bucketRows.map(
    (b, i) =>
      `| ${b.nMin === b.nMax ? b.nMin : `${b.nMin}–${b.nMax}`} | ${b.meanLogN.toFixed(3)} | ${variants.map((v) => pm(bucketsOf(at(v, longest))[i].Hs)).join(' | ')} |`,
  ),
];
writeFileSync(
  join(out, 'entropy.md'),
  [
    '# Attention entropy of the GAU arms',
    '',
    `From \`node experiments/gau-entropy.mjs ${out} ${contexts.join(' ')}\`: each arm's best-learning-rate runs (trained at`,
    `context ${contexts[0]}), \`strata eval --attention-entropy\` on the held-out split; entropy H = −Σ A ln A of each`,
    'attention row in nats, mean over layers; mean ± std over seeds. The slope is the least-squares dH/d ln n over',
    'all query rows: 1 = entropy grows like ln n (as uniform attention would), 0 = it stays flat.',
    '',
    ...slopeTable,
    '',
    `Entropy by visible keys n at context ${longest}:`,
    '',
    ...bucketTable,
    '',
  ].join('\n'),
);
const series = variants.map((v) => ({
  label: v,
  points: bucketsOf(at(v, longest))
    .filter((b) => b.nMin > 1)
    .map((b) => ({
      x: b.meanLogN,
      mean: mean(b.Hs),
      lo: Math.min(...b.Hs),
      hi: Math.max(...b.Hs),
      n: b.Hs.length,
    })),
}));
series.push({
  label: 'ln n (uniform attention)',
  points: series[0].points.map((p) => ({ x: p.x, mean: p.x, lo: p.x, hi: p.x, n: 1 })),
});
await writePlot(
  out,
  'entropy',
  bandChart(series, {
    title: `Attention entropy against ln n, evaluated at context ${longest} (trained at ${contexts[0]})`,
    subtitle: 'GAU layers, mean over layers and seeds at each arm’s best rate; band = min–max over seeds',
    xLabel: 'ln n (n = keys a query can attend to, bucket mean)',
    yLabel: 'attention entropy (nats)',
    xFormat: '.1f',
    vLines: [{ x: Math.log(Number(contexts[0])), label: `n = ${contexts[0]} (training context)` }],
  }),
);
process.stdout.write(`${slopeTable.join('\n')}\n\n${bucketTable.join('\n')}\n`);
