// Shared by the scripts that post-process finished `strata compare` grids (length-eval.mjs, gau-entropy.mjs,
// ngpt-summary.mjs, ngpt-conditioning.mjs).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
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

/** Median (the mean of the middle two for an even count). */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * The finished grids of experiments/ngpt-vs-gpt.sh under OUT (folders ctxC-stepsS holding summary.json), by budget
 * then context; throws when there is none.
 */
export function contextGrids(out) {
  const grids = existsSync(out)
    ? readdirSync(out)
        .map((name) => ({ name, m: /^ctx(\d+)-steps(\d+)$/.exec(name) }))
        .filter(({ name, m }) => m && existsSync(join(out, name, 'summary.json')))
        .map(({ name, m }) => ({ name, context: Number(m[1]), steps: Number(m[2]) }))
        .sort((a, b) => a.steps - b.steps || a.context - b.context)
    : [];
  if (grids.length === 0) throw new Error(`${out}: no finished grid (ctxC-stepsS/summary.json)`);
  return grids;
}
