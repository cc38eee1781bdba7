// Shared by the scripts that post-process a finished `strata compare` grid (length-eval.mjs, gau-entropy.mjs).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A finished grid: OUT is a folder holding compare/ and compare.log (gau-decoder.sh), or the grid's own folder
 * whose log is OUT.log (ngpt-vs-gpt.sh). `best` lists each variant's best learning rate and the checkpoints of its
 * seeds there; `dest(name)` is where a script writes a file about the grid (beside its log).
 */
export function finishedGrid(out) {
  const nested = existsSync(join(out, 'compare.log'));
  const grid = nested ? join(out, 'compare') : out;
  const f = join(grid, 'summary.json');
  if (!existsSync(f)) throw new Error(`${f}: missing (did the comparison finish?)`);
  const summary = JSON.parse(readFileSync(f, 'utf8'));
  const { seeds } = JSON.parse(readFileSync(join(grid, 'compare.json'), 'utf8'));
  const best = summary.variants
    .filter((v) => v.bestLr !== null)
    .map((v) => ({
      variant: v.variant,
      lr: v.bestLr,
      runs: seeds
        .map((seed) => ({
          seed,
          dir: join(grid, 'runs', v.variant, `lr${v.bestLr.toExponential(3)}`, `s${seed}`),
        }))
        .filter((r) => existsSync(join(r.dir, 'checkpoint'))),
    }));
  const dest = (name) => (nested ? join(out, name) : `${out.replace(/\/$/, '')}-${name}`);
  return { grid, best, dest };
}

/** `strata eval ARGS --json` with the built CLI: its JSON object (throws with the command's stderr on failure). */
export function evalJSON(args) {
  const text = execFileSync(process.execPath, ['packages/cli/dist/bin.js', 'eval', ...args, '--json'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return JSON.parse(text.split('\n').find((l) => l.startsWith('{')));
}

/** Mean and sample standard deviation. */
export function meanStd(xs) {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  return { m, sd: Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, xs.length - 1)) };
}
