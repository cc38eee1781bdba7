// Evaluates the best-learning-rate runs of a `strata compare` grid at several contexts (`strata eval --context`)
// and writes length.jsonl (one line per run and context) and length.md (mean ± std over seeds) beside its log.
// Usage: node experiments/length-eval.mjs OUT CTX1 CTX2 …
//   OUT is a folder holding compare/ and compare.log (gau-decoder.sh), or a grid's output folder whose log is
//   OUT.log (ngpt-vs-gpt.sh: runs/ngpt-vs-gpt/ctx64-steps800 and ctx64-steps800.log); the first context is the
//   training context.
import { writeFileSync } from 'node:fs';
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
process.stdout.write(`${lines.join('\n')}\n`);
