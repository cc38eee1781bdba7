// Task metrics of a `strata compare` grid at its last evaluation: for every variant and learning rate, the mean ±
// std over seeds of the final validation loss, token accuracy and exact match that encoder-decoder tasks (and
// masked-LM encoders: masked accuracy) log in each run's metrics.jsonl; the best rate per variant is marked as the
// report chose it. Writes DIR/task-metrics.md and prints it.
// Usage: node experiments/task-metrics.mjs DIR      (DIR holds compare.json, summary.json and runs/)
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
if (!dir || !existsSync(join(dir, 'compare.json')))
  throw new Error('usage: task-metrics.mjs DIR (a strata compare report directory with compare.json)');
const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'));
const best = new Map(summary.variants.map((v) => [v.variant, v.bestLr]));
const steps = summary.runs[0]?.steps;
const stat = (xs) => {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1)) : 0;
  return { m, sd, lo: Math.min(...xs), hi: Math.max(...xs) };
};
const pct = (s) =>
  `${(100 * s.m).toFixed(1)} ± ${(100 * s.sd).toFixed(1)} % [${(100 * s.lo).toFixed(1)}–${(100 * s.hi).toFixed(1)}]`;
const lines = [
  '| variant | lr | seeds | final val loss | token accuracy | exact match |',
  '|---|---|---|---|---|---|',
];
for (const variant of readdirSync(join(dir, 'runs')).sort()) {
  const lrDirs = readdirSync(join(dir, 'runs', variant)).sort(
    (a, b) => Number(a.slice(2)) - Number(b.slice(2)),
  );
  for (const lrDir of lrDirs) {
    const finals = [];
    for (const s of readdirSync(join(dir, 'runs', variant, lrDir)).sort()) {
      const run = join(dir, 'runs', variant, lrDir, s);
      if (!existsSync(join(run, 'result.json'))) continue;
      const metrics = ['metrics.jsonl', 'grown/metrics.jsonl'].map((f) => join(run, f)).find(existsSync);
      const evals = readFileSync(metrics, 'utf8')
        .split('\n')
        .filter((l) => l.includes('"valAccuracy"'))
        .map((l) => JSON.parse(l));
      if (evals.length) finals.push(evals.at(-1));
    }
    if (!finals.length) continue;
    const lr = Number(lrDir.slice(2));
    const isBest = best.get(variant) !== undefined && Math.abs(best.get(variant) - lr) <= 1e-12;
    const loss = stat(finals.map((e) => e.valLoss));
    const acc = stat(finals.map((e) => e.valAccuracy));
    const em = finals.every((e) => typeof e.valExactMatch === 'number')
      ? pct(stat(finals.map((e) => e.valExactMatch)))
      : '—';
    lines.push(
      `| ${variant} | ${lr.toExponential(1)}${isBest ? ' (best)' : ''} | ${finals.length} | ${loss.m.toFixed(3)} ± ${loss.sd.toFixed(3)} | ${pct(acc)} | ${em} |`,
    );
  }
}
const text = `Task metrics at each run's last evaluation (step ${steps}), mean ± std [min–max] over seeds; "(best)" is the report's best rate.\n\n${lines.join('\n')}\n`;
writeFileSync(join(dir, 'task-metrics.md'), text);
process.stdout.write(text);
