// Evaluates the best-learning-rate runs of a `strata compare` grid at several contexts (`strata eval --context`)
// and writes length.jsonl (one line per run and context) and length.md (mean ± std over seeds) beside its log.
// Usage: node experiments/length-eval.mjs OUT CTX1 CTX2 …
//   OUT is a folder holding compare/ and compare.log (gau-decoder.sh), or a grid's output folder whose log is
//   OUT.log (ngpt-vs-gpt.sh: runs/ngpt-vs-gpt/ctx64-steps800 and ctx64-steps800.log); the first context is the
//   training context.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [out, ...contexts] = process.argv.slice(2);
if (!out || contexts.length === 0) throw new Error('usage: length-eval.mjs OUT CTX1 CTX2 …');
const nested = existsSync(join(out, 'compare.log'));
const grid = nested ? join(out, 'compare') : out;
const log = nested ? join(out, 'compare.log') : `${out.replace(/\/$/, '')}.log`;
const dest = (name) => (nested ? join(out, name) : `${out.replace(/\/$/, '')}-${name}`);
const event = readFileSync(log, 'utf8')
  .split('\n')
  .filter((l) => l.startsWith('{'))
  .map((l) => JSON.parse(l))
  .findLast((e) => e.event === 'compare');
if (!event) throw new Error(`${log}: no {"event":"compare"} line (did the comparison finish?)`);
const spec = JSON.parse(readFileSync(join(grid, 'compare.json'), 'utf8'));
const seeds = spec.seeds;
const rows = [];
for (const { variant, bestLr } of event.best) {
  if (bestLr === null) continue;
  for (const seed of seeds) {
    const run = join(grid, 'runs', variant, `lr${bestLr.toExponential(3)}`, `s${seed}`);
    if (!existsSync(join(run, 'checkpoint'))) continue;
    for (const ctx of contexts) {
      const text = execFileSync(
        process.execPath,
        [
          'packages/cli/dist/bin.js',
          'eval',
          '--checkpoint',
          run,
          '--context',
          ctx,
          '--batches',
          '8',
          '--json',
        ],
        { encoding: 'utf8' },
      );
      const r = JSON.parse(text.split('\n').find((l) => l.startsWith('{')));
      rows.push({ variant, lr: bestLr, seed, context: Number(ctx), loss: r.loss, tokens: r.tokens });
      process.stderr.write(`${variant} lr ${bestLr} s${seed} context ${ctx}: loss ${r.loss.toFixed(4)}\n`);
    }
  }
}
writeFileSync(dest('length.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
const stat = (xs) => {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, xs.length - 1));
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
process.stdout.write(`${lines.join('\n')}\n`);
