/**
 * `strata compare`: fair comparisons by construction (EXPERIMENTS.md). Every variant × learning rate × seed is
 * trained on the same data and budget; each variant gets its own best learning rate (mean final validation loss
 * over seeds), a best rate at the edge of its grid is flagged and, with `--extend-grid`, the grid grows past it;
 * curves are means with min–max bands against steps, tokens, FLOPs and wall time; diverged runs are counted.
 *
 * The grid is a folder of runs, `OUT/runs/<variant>/lr<lr>/s<seed>/`, each trained in its own process
 * (`strata __compare-job DIR`, `--jobs` at once) and marked finished by its `result.json`: running the same
 * command again resumes the grid (finished runs are kept, interrupted ones continue from their checkpoint).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  acquireDirLock,
  dirEntriesExceptLock,
  isCheckpointDir,
  loadCheckpoint,
  readMetrics,
  StrataError,
  trainingFlops,
  writeFileAtomic,
} from '@strata/core';
import { type CommandDef, type ParsedArgs, parseCommandArgs, splitWords, UsageError } from '../args.js';
import {
  type BandPoint,
  type BandSeries,
  bandChart,
  emaPoints,
  lineChart,
  type SweepCell,
  sensitivityChart,
  writePlot,
} from '../plots.js';
import { formatCount, Progress } from '../progress.js';
import { createModel, runTraining, trainerOptionsFromArgs } from '../run-training.js';
import { setupRuntime, workerSetup } from '../setup.js';
import { compareSpec, trainSpec } from '../specs.js';
import { onStop, STOP_EXIT_CODES, type StopReason } from '../stop.js';
import {
  type GrowthBudget,
  type GrowthRecord,
  growthArmOf,
  growthBudget,
  runGrowthJob,
  smallPhaseArgs,
} from './compare-growth.js';
import { planFreshRun } from './train.js';

/** One variant of a comparison: a label, the flags that override the shared ones, and its own lr grid if any. */
export interface Variant {
  /** Name of the variant in reports, plots and run folders. */
  label: string;
  /** Flags that override the shared ones for this variant's runs. */
  args: ParsedArgs;
  /** Learning rates for this variant only (`--variant "x=--lrs 1e-3,2e-3 …"`). */
  lrs?: number[];
}

/** The outcome of one variant × learning rate × seed (`result.json` of its run folder). */
export interface RunSummary {
  /** Label of the variant the run belongs to. */
  variant: string;
  /** Learning rate of the run. */
  lr: number;
  /** Seed of the run. */
  seed: number;
  /** `stalled` = finished closer to the uniform loss than to the best run of the comparison. */
  status: 'ok' | 'diverged' | 'stalled';
  /** Optimizer steps the run took. */
  steps: number;
  /** Validation loss at the first evaluation (NaN when there was none). */
  initialValLoss: number;
  /** Validation loss at the last step (NaN when the run diverged). */
  finalValLoss: number;
  /** Training loss (EMA 0.1) at the last finite step. */
  finalTrainLoss: number;
  /** Mean training milliseconds per optimizer step (evaluation excluded). */
  msPerStep: number;
  /** Total training seconds (evaluation excluded). */
  trainSeconds: number;
  /** Tokens per optimizer step (batch size × sequence length). */
  tokensPerStep: number;
  /** Training FLOPs per token ({@link trainingFlops} of the model as trained). */
  flopsPerToken: number;
  /** Parameter count of the model. */
  params: number;
  /** Model width d_model (0 when the model has none). */
  dModel: number;
  /** ‖ΔF‖ at the first diagnostics step; absent when no diagnostics were recorded. */
  deltaF1?: number;
  /** Step at which the run diverged; absent when it did not. */
  divergedAt?: number;
  /**
   * A growth arm (`--grow-at`): the step it grew at, the small model's FLOPs per token and parameters (the
   * fields above describe the grown model), and where its metrics are.
   */
  growth?: GrowthRecord;
  /** The run's folder (holds `job.json`, `metrics.jsonl` and `result.json`). */
  runDir: string;
}

/** What `compare.json` records: enough to resume, extend and replot the grid. */
export interface CompareSpec {
  /** Format version of `compare.json`. */
  version: 1;
  /** Flags shared by every run (the command line without the comparison's own flags). */
  shared: ParsedArgs;
  /** The variants compared, in report order. */
  variants: Variant[];
  /** Seeds every (variant, learning rate) cell runs. */
  seeds: number[];
  /** The learning rates of each variant's grid, extensions included. */
  lrs: Record<string, number[]>;
  /** The target flags (`target-from`, `target-loss`) the comparison was run with; `--replot` reuses them. */
  target?: ParsedArgs;
}

/** Flags of `compare` itself: they choose which runs exist and how they are reported, not how one run trains. */
const COMPARE_ONLY = new Set([
  'out',
  'force',
  'replot',
  'jobs',
  'lrs',
  'seeds',
  'norms',
  'models',
  'variant',
  'extend-grid',
  'target-loss',
  'target-from',
  'mechanism-lr',
  'json',
]);

/** `--variant` flags: every `train` flag plus `--lrs` and the growth arm's `--grow-at`, `--grow`, `--grown-lr`. */
const variantSpec: CommandDef = {
  ...trainSpec,
  options: [
    ...trainSpec.options,
    { name: 'lrs', type: 'string', arg: 'LIST', description: 'learning-rate grid of this variant' },
    {
      name: 'grow-at',
      type: 'number',
      arg: 'F',
      description: 'growth arm: fraction of the FLOP budget spent on the small model before growing',
    },
    {
      name: 'grow',
      type: 'string',
      arg: 'FLAGS',
      description: 'growth arm: the `strata grow` flags (e.g. "--width 2 --noise 0.01")',
    },
    {
      name: 'grown-lr',
      type: 'number',
      arg: 'FACTOR',
      description:
        "growth arm: the grown phase's peak learning rate as a multiple of the run's lr [default: 1]",
    },
  ],
};

/** Parses a learning-rate list (`1e-3,2e-3,4e-3`): positive, finite, distinct. */
export function parseLrList(text: string, flag = '--lrs'): number[] {
  const parts = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const lrs = parts.map(Number);
  if (!parts.length || lrs.some((x, i) => !Number.isFinite(x) || x <= 0 || parts[i] === ''))
    throw new UsageError(`${flag} must be a comma-separated list of positive numbers, got "${text}"`);
  if (new Set(lrs).size !== lrs.length)
    throw new UsageError(`${flag} lists a learning rate twice: "${text}"`);
  return [...lrs].sort((a, b) => a - b);
}

/** Builds the variant list from --norms, --models and --variant. */
export function variantsFromArgs(args: ParsedArgs): Variant[] {
  const out: Variant[] = [];
  const list = (v: unknown) =>
    String(v)
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  if (args.norms !== undefined) for (const n of list(args.norms)) out.push({ label: n, args: { norm: n } });
  if (args.models !== undefined)
    for (const m of list(args.models)) out.push({ label: m, args: { model: m } });
  for (const v of (args.variant as string[] | undefined) ?? []) {
    const i = v.indexOf('=');
    if (i <= 0) throw new UsageError(`--variant must look like LABEL=FLAGS, got "${v}"`);
    const label = v.slice(0, i).trim();
    const parsed = parseCommandArgs(variantSpec, splitWords(v.slice(i + 1)), { defaults: false });
    const { lrs, ...rest } = parsed;
    out.push({
      label,
      args: Object.fromEntries(Object.entries(rest).filter(([, x]) => x !== undefined)),
      ...(lrs !== undefined ? { lrs: parseLrList(String(lrs), `--variant ${label}: --lrs`) } : {}),
    });
  }
  if (out.length === 0) throw new UsageError('give at least one variant with --norms, --models or --variant');
  const labels = out.map((v) => v.label);
  const dup = labels.find((l, i) => labels.indexOf(l) !== i);
  if (dup) throw new UsageError(`variant label "${dup}" is used twice`);
  for (const l of labels)
    if (!/^[\w.@-]+$/.test(l))
      throw new UsageError(`variant label "${l}" may only contain letters, digits and . _ - @`);
  return out;
}

/** The default grid around a learning rate: ×¼, ×½, ×1, ×2 (log-spaced, ≥ 4 points, EXPERIMENTS.md §1). */
export function defaultLrGrid(lr: number): number[] {
  return [lr / 4, lr / 2, lr, lr * 2];
}

/**
 * Each variant's learning-rate grid: its own `--lrs`, else its own `--lr` (one point), else the shared `--lrs`,
 * else the shared `--lr` (one point), else {@link defaultLrGrid} around the family's default rate.
 */
export function lrGrids(args: ParsedArgs, variants: readonly Variant[]): Record<string, number[]> {
  const shared = args.lrs !== undefined ? parseLrList(String(args.lrs)) : undefined;
  const out: Record<string, number[]> = {};
  for (const v of variants) {
    if (v.lrs) out[v.label] = v.lrs;
    else if (v.args.lr !== undefined) out[v.label] = [Number(v.args.lr)];
    else if (shared) out[v.label] = shared;
    else if (args.lr !== undefined) out[v.label] = [Number(args.lr)];
    else out[v.label] = defaultLrGrid(planFreshRun({ ...args, ...v.args }).training.lr);
  }
  return out;
}

/** The flags one run trains with: shared ⊕ variant ⊕ { lr, seed }, without the comparison's own flags. */
export function jobArgs(shared: ParsedArgs, variant: Variant, lr: number, seed: number): ParsedArgs {
  const merged: ParsedArgs = { ...shared, ...variant.args, lr, seed };
  for (const k of Object.keys(merged)) if (COMPARE_ONLY.has(k) || merged[k] === undefined) delete merged[k];
  return merged;
}

/** Folder of one run: `OUT/runs/<variant>/lr<lr>/s<seed>`. */
export function runDirOf(out: string, variant: string, lr: number, seed: number): string {
  return join(out, 'runs', variant, `lr${lr.toExponential(3)}`, `s${seed}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Analysis (pure: tested without training)

/** One variant's learning-rate sweep, summarized. */
export interface VariantSweep {
  /** Variant label. */
  variant: string;
  /** The grid, ascending. */
  lrs: number[];
  /** One cell per rate of the grid, in the same order. */
  cells: SweepCell[];
  /** Lowest mean final validation loss over seeds among rates where no seed diverged; null when none. */
  bestLr: number | null;
  /** The best rate is the smallest or largest of the grid (the optimum may lie outside it). */
  bestAtEdge: 'low' | 'high' | null;
  /** Rates at which every seed trained (no divergence, no stall). */
  trainingLrs: number[];
  /** Runs at the best rate. */
  best: RunSummary[];
}

const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN);
const std = (xs: readonly number[]) => {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
};

/**
 * A run "stalled" when it finished closer to the uniform-prediction loss ln V than to the best run's final
 * loss (e.g. 24-layer Post-LN stuck at the unigram level while DeepNorm reaches the entropy floor).
 */
export function markStalled(runs: RunSummary[], chance: number): void {
  const ok = runs.filter((r) => r.status !== 'diverged' && Number.isFinite(r.finalValLoss));
  for (const r of ok) r.status = 'ok';
  if (ok.length < 2) return;
  const best = Math.min(...ok.map((r) => r.finalValLoss));
  const midpoint = (best + Math.min(chance, Math.max(...ok.map((r) => r.initialValLoss)))) / 2;
  for (const r of ok) if (r.finalValLoss > midpoint) r.status = 'stalled';
}

/**
 * Summarizes each variant's sweep: per-rate mean and min–max over seeds, the best rate (a rate with a diverged
 * seed cannot be best: divergence counts as an infinite loss), whether it sits at the grid's edge, and the
 * rates at which every seed trained.
 */
export function analyzeSweeps(runs: readonly RunSummary[], grids: Record<string, number[]>): VariantSweep[] {
  return Object.entries(grids).map(([variant, grid]) => {
    const lrs = [...new Set([...grid, ...runs.filter((r) => r.variant === variant).map((r) => r.lr)])].sort(
      (a, b) => a - b,
    );
    const cells: SweepCell[] = lrs.map((lr) => {
      const rs = runs.filter((r) => r.variant === variant && r.lr === lr);
      const f = rs.filter((r) => r.status !== 'diverged').map((r) => r.finalValLoss);
      return {
        variant,
        lr,
        mean: mean(f),
        lo: f.length ? Math.min(...f) : Number.NaN,
        hi: f.length ? Math.max(...f) : Number.NaN,
        runs: rs.length,
        diverged: rs.filter((r) => r.status === 'diverged').length,
        stalled: rs.filter((r) => r.status === 'stalled').length,
      };
    });
    const score = (c: SweepCell) => (c.runs === 0 || c.diverged > 0 ? Number.POSITIVE_INFINITY : c.mean);
    let bestLr: number | null = null;
    let bestScore = Number.POSITIVE_INFINITY;
    for (const c of cells)
      if (score(c) < bestScore) {
        bestScore = score(c);
        bestLr = c.lr;
      }
    const bestAtEdge =
      bestLr === null || lrs.length < 2
        ? null
        : bestLr === lrs[0]
          ? 'low'
          : bestLr === lrs[lrs.length - 1]
            ? 'high'
            : null;
    return {
      variant,
      lrs,
      cells,
      bestLr,
      bestAtEdge,
      trainingLrs: cells.filter((c) => c.runs > 0 && c.diverged === 0 && c.stalled === 0).map((c) => c.lr),
      best: bestLr === null ? [] : runs.filter((r) => r.variant === variant && r.lr === bestLr),
    };
  });
}

/**
 * The rate to add when a variant's best rate sits at the edge of its grid: one grid step (the grid's geometric
 * spacing, ×2 for a one-point grid) past that edge; null when the best is inside.
 */
export function extensionLr(sweep: VariantSweep): number | null {
  if (!sweep.bestAtEdge) return null;
  const { lrs } = sweep;
  const ratio = lrs.length >= 2 ? (lrs[lrs.length - 1]! / lrs[0]!) ** (1 / (lrs.length - 1)) : 2;
  const next = sweep.bestAtEdge === 'low' ? lrs[0]! / ratio : lrs[lrs.length - 1]! * ratio;
  return Number(next.toPrecision(6));
}

/** The target loss: `--target-loss`, or the mean final validation loss of the `--target-from` variant at its best rate. */
export function resolveTarget(args: ParsedArgs, sweeps: readonly VariantSweep[]): number | undefined {
  if (args['target-from'] !== undefined) {
    const ref = sweeps.find((s) => s.variant === args['target-from']);
    const finals = (ref?.best ?? []).filter((r) => r.status !== 'diverged').map((r) => r.finalValLoss);
    if (!finals.length)
      throw new UsageError(`--target-from ${String(args['target-from'])}: no finished run of that variant`);
    return mean(finals);
  }
  return args['target-loss'] as number | undefined;
}

/** A run's curves, read back from its metrics file. */
export interface RunCurves {
  /** Validation loss by step. */
  val: [number, number][];
  /** Training loss (EMA 0.1) by step. */
  train: [number, number][];
  /** Cumulative training seconds by step (evaluation excluded). */
  seconds: Map<number, number>;
  /** ‖ΔF‖ by step. */
  deltaF: [number, number][];
  /** Mean over norm sites of ‖LN input‖ / √d_model, by step. */
  lnInput: [number, number][];
  /** Per-block gradient norms by step. */
  gradNorms: Map<number, number[]>;
}

/** Reads a run's metrics (a resumed run's file holds each step once). */
export function curvesFromMetrics(path: string, dModel: number): RunCurves {
  const c: RunCurves = {
    val: [],
    train: [],
    seconds: new Map(),
    deltaF: [],
    lnInput: [],
    gradNorms: new Map(),
  };
  let t = 0;
  const rawTrain: [number, number][] = [];
  for (const r of readMetrics(path)) {
    if (typeof r.step !== 'number') continue;
    if (typeof r.ms === 'number') {
      t += r.ms / 1000;
      c.seconds.set(r.step, t);
    }
    if (typeof r.loss === 'number' && Number.isFinite(r.loss)) rawTrain.push([r.step, r.loss]);
    if (typeof r.valLoss === 'number') c.val.push([r.step, r.valLoss]);
    const d = r.diagnostics as
      | { deltaF?: number; layerGradNorms?: number[]; normInputs?: Record<string, number> }
      | undefined;
    if (d?.deltaF !== undefined) c.deltaF.push([r.step, d.deltaF]);
    if (d?.layerGradNorms?.length) c.gradNorms.set(r.step, d.layerGradNorms);
    const ins = Object.values(d?.normInputs ?? {});
    if (ins.length && dModel > 0) c.lnInput.push([r.step, mean(ins) / Math.sqrt(dModel)]);
  }
  c.seconds.set(0, 0);
  c.train = emaPoints(rawTrain);
  return c;
}

/** Mean and min–max over runs of curves sampled at the same x (steps); `mapX` turns a step into the plotted x. */
export function bandOf(
  curves: readonly [number, number][][],
  mapX: (step: number, run: number) => number = (s) => s,
): BandPoint[] {
  const bySteps = new Map<number, { v: number; x: number }[]>();
  curves.forEach((pts, run) => {
    for (const [s, v] of pts) {
      if (!Number.isFinite(v)) continue;
      const l = bySteps.get(s) ?? [];
      l.push({ v, x: mapX(s, run) });
      bySteps.set(s, l);
    }
  });
  return [...bySteps.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([, l]) => {
      const vs = l.map((e) => e.v);
      return {
        x: mean(l.map((e) => e.x)),
        mean: mean(vs),
        lo: Math.min(...vs),
        hi: Math.max(...vs),
        n: vs.length,
      };
    });
}

/**
 * Training FLOPs a run has spent by `step`: steps × tokens × FLOPs per token, with a growth arm's steps up to
 * its growth step counted at the small model's cost.
 */
export function flopsAt(
  r: Pick<RunSummary, 'tokensPerStep' | 'flopsPerToken' | 'growth'>,
  step: number,
): number {
  const g = r.growth;
  if (!g) return step * r.tokensPerStep * r.flopsPerToken;
  const small = Math.min(step, g.step);
  return r.tokensPerStep * (small * g.smallFlopsPerToken + Math.max(0, step - g.step) * r.flopsPerToken);
}

/** Steps, tokens, FLOPs and seconds at which a run's validation loss first reached `target` (null if never). */
export function costToTarget(
  r: RunSummary,
  c: RunCurves,
  target: number,
): { steps: number; tokens: number; flops: number; seconds: number } | null {
  const hit = c.val.find(([, l]) => l <= target);
  if (!hit) return null;
  const steps = hit[0];
  return {
    steps,
    tokens: steps * r.tokensPerStep,
    flops: flopsAt(r, steps),
    seconds: c.seconds.get(steps) ?? (steps * r.msPerStep) / 1000,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Running the grid

interface PlannedRun {
  variant: Variant;
  lr: number;
  seed: number;
  dir: string;
  steps: number;
}

/** Path of the built CLI entry that runs one job in a child process. */
function binPath(): string {
  return fileURLToPath(new URL('../bin.js', import.meta.url));
}

function readResult(dir: string): RunSummary | undefined {
  const f = join(dir, 'result.json');
  if (!existsSync(f)) return undefined;
  try {
    return JSON.parse(readFileSync(f, 'utf8')) as RunSummary;
  } catch {
    return undefined;
  }
}

/** Checks that a folder's saved job is the one planned now (resuming with other flags would mix two grids). */
function checkJob(dir: string, args: ParsedArgs): void {
  const f = join(dir, 'job.json');
  if (!existsSync(f)) return;
  const saved = (JSON.parse(readFileSync(f, 'utf8')) as { args: ParsedArgs }).args;
  const keys = [...new Set([...Object.keys(saved), ...Object.keys(args)])].filter(
    (k) => JSON.stringify(saved[k]) !== JSON.stringify(args[k]),
  );
  if (keys.length)
    throw new StrataError(
      'E_CONFIG',
      `${dir} was trained with other flags (${keys.map((k) => `--${k}: ${JSON.stringify(saved[k])} → ${JSON.stringify(args[k])}`).join('; ')}); use a new --out, or --force to start the comparison afresh`,
    );
}

/** Runs the planned jobs, `jobs` at a time, each in its own process, with one progress display for the grid. */
async function executeRuns(
  planned: PlannedRun[],
  opts: {
    jobs: number;
    json: boolean;
    progress: Progress;
  },
): Promise<{ interrupted: StopReason | undefined }> {
  // Steps of the grid: finished runs count whole (read once here), running ones by their last progress line.
  const totalSteps = planned.reduce((a, p) => a + p.steps, 0);
  let doneSteps = 0;
  const queue: PlannedRun[] = [];
  for (const p of planned) {
    if (readResult(p.dir)) doneSteps += p.steps;
    else queue.push(p);
  }
  const live = new Map<ChildProcess, { run: PlannedRun; step: number; loss: number; tokensPerSec: number }>();
  let stopping: StopReason | undefined;
  let failure: Error | undefined;
  const onSignal = (sig: StopReason) => {
    if (stopping) return;
    stopping = sig;
    opts.progress.log(
      `${sig}: stopping the ${live.size} running run(s) at a checkpoint; run the same command again to resume`,
    );
    for (const child of live.keys()) child.kill('SIGTERM');
  };
  // SIGINT, SIGTERM, SIGHUP and a closed output pipe all stop the grid the same way (children checkpoint).
  const offStop = onStop(onSignal);
  const onExit = () => {
    for (const child of live.keys()) child.kill('SIGTERM');
  };
  process.on('exit', onExit);
  let lastDraw = 0;
  const draw = (force = false) => {
    const now = performance.now();
    if (!force && now - lastDraw < (opts.json ? 5000 : 500)) return;
    lastDraw = now;
    let inFlight = 0;
    let loss = Number.NaN;
    let tps = 0;
    for (const s of live.values()) {
      inFlight += s.step;
      loss = s.loss;
      tps += s.tokensPerSec;
    }
    opts.progress.update({
      step: doneSteps + inFlight,
      total: totalSteps,
      loss,
      tokensPerSec: tps,
      note: [...live.values()]
        .map((s) => `${s.run.variant.label}@${s.run.lr.toExponential(1)}/s${s.run.seed}`)
        .join(' '),
    });
  };
  const start = (run: PlannedRun) =>
    new Promise<void>((resolveRun) => {
      const child = spawn(process.execPath, [...process.execArgv, binPath(), '__compare-job', run.dir], {
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
        env: { ...process.env, CI: 'true' },
      });
      const state = { run, step: 0, loss: Number.NaN, tokensPerSec: 0 };
      live.set(child, state);
      let buf = '';
      const errTail: string[] = [];
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        buf += chunk;
        let i = buf.indexOf('\n');
        while (i >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          i = buf.indexOf('\n');
          if (!line.startsWith('{')) continue;
          try {
            const e = JSON.parse(line) as {
              event?: string;
              step?: number;
              loss?: number;
              tokensPerSec?: number;
            };
            if (e.event === 'progress' && typeof e.step === 'number') {
              state.step = e.step;
              state.loss = e.loss ?? Number.NaN;
              state.tokensPerSec = e.tokensPerSec ?? 0;
              draw();
            }
          } catch {
            /* a partial line; the next chunk completes it */
          }
        }
      });
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
        errTail.push(...chunk.split('\n').filter(Boolean));
        errTail.splice(0, Math.max(0, errTail.length - 20));
      });
      child.on('close', (code) => {
        live.delete(child);
        const res = readResult(run.dir);
        if (res) {
          doneSteps += run.steps;
          opts.progress.log(
            `${run.variant.label} lr ${run.lr.toExponential(2)} seed ${run.seed}: ${res.status}, final validation loss ${Number.isFinite(res.finalValLoss) ? res.finalValLoss.toFixed(4) : '—'} (${res.msPerStep.toFixed(0)} ms/step)`,
            { event: 'run', ...res },
          );
        } else if (!stopping) {
          const last = errTail
            .filter((l) => !l.startsWith('    at '))
            .slice(-3)
            .join(' | ');
          failure = new StrataError(
            'E_IO',
            `run ${run.dir} failed (exit ${code ?? 'signal'}): ${last || 'no output'}`,
          );
          onSignal('SIGTERM');
        }
        draw(true);
        resolveRun();
      });
    });
  try {
    const workers = Array.from({ length: Math.max(1, opts.jobs) }, async () => {
      for (let run = queue.shift(); run && !stopping; run = queue.shift()) await start(run);
    });
    await Promise.all(workers);
  } finally {
    offStop();
    process.off('exit', onExit);
    opts.progress.done();
  }
  if (failure) throw failure;
  return { interrupted: stopping };
}

/**
 * `strata __compare-job DIR`: trains the run described by `DIR/job.json` (continuing from `DIR/checkpoint` when
 * an earlier attempt was interrupted) and writes `DIR/result.json` atomically when it ends (done or diverged).
 */
export async function runJob(dir: string): Promise<number> {
  if (!dir) throw new UsageError('__compare-job DIR: DIR is required');
  const job = JSON.parse(readFileSync(join(dir, 'job.json'), 'utf8')) as {
    args: ParsedArgs;
    variant: string;
    lr: number;
    seed: number;
  };
  const args = job.args;
  const label = `${job.variant} lr ${job.lr} s${job.seed}`;
  await setupRuntime(args);
  const arm = growthArmOf(args, job.variant);
  let summary: Omit<RunSummary, 'variant' | 'lr' | 'seed' | 'runDir'> | undefined;
  if (arm) {
    const grown = await runGrowthJob(dir, args, arm, async (runDir, a) => {
      const s = await trainJob(runDir, a, `${label} (small)`);
      return s && { status: s.status === 'diverged' ? 'diverged' : 'ok', ...pick(s) };
    });
    if (!grown) return 130;
    const { outcome, budget, growth } = grown;
    const path = join(dir, growth?.metrics ?? join('small', 'metrics.jsonl'));
    const curves = curvesFromMetrics(path, 0);
    summary = {
      status: outcome.status,
      steps: outcome.steps,
      initialValLoss: curves.val[0]?.[1] ?? Number.NaN,
      finalValLoss: outcome.finalValLoss,
      finalTrainLoss: curves.train.slice(-1)[0]?.[1] ?? Number.NaN,
      msPerStep: (outcome.trainSeconds * 1000) / Math.max(1, outcome.steps),
      trainSeconds: outcome.trainSeconds,
      tokensPerStep: tokensPerStepOf(args),
      flopsPerToken: growth ? budget.grownFlopsPerToken : budget.smallFlopsPerToken,
      params: growth ? budget.grownParams : budget.smallParams,
      dModel: 0,
      ...(outcome.divergedAt !== undefined ? { divergedAt: outcome.divergedAt } : {}),
      ...(growth ? { growth } : {}),
    };
  } else {
    summary = await trainJob(dir, args, label);
    if (!summary) return 130;
  }
  const result: RunSummary = { variant: job.variant, lr: job.lr, seed: job.seed, ...summary, runDir: dir };
  await writeFileAtomic(join(dir, 'result.json'), `${JSON.stringify(result, null, 2)}\n`);
  return 0;
}

function tokensPerStepOf(args: ParsedArgs): number {
  const { training } = planFreshRun(args);
  return training.batchSize * training.seqLen;
}

function pick(s: Omit<RunSummary, 'variant' | 'lr' | 'seed' | 'runDir'>) {
  return {
    steps: s.steps,
    finalValLoss: s.finalValLoss,
    trainSeconds: s.trainSeconds,
    ...(s.divergedAt !== undefined ? { divergedAt: s.divergedAt } : {}),
  };
}

/**
 * Trains one fresh run of the grid in `dir` (continuing from `dir/checkpoint` when an earlier attempt was
 * interrupted); undefined when interrupted.
 */
async function trainJob(
  dir: string,
  args: ParsedArgs,
  label: string,
): Promise<Omit<RunSummary, 'variant' | 'lr' | 'seed' | 'runDir'> | undefined> {
  const backend = await setupRuntime(args);
  // The same reading of the flags as `strata train` (any --arch and --task); one synthetic language for all seeds.
  const { family, raw, training, data, task, tokenizer } = planFreshRun(args, { dataSeed: 1 });
  const ckpt = join(dir, 'checkpoint');
  let resume: Awaited<ReturnType<typeof loadCheckpoint>> | undefined;
  if (existsSync(ckpt) && (await isCheckpointDir(ckpt))) {
    const loaded = await loadCheckpoint(ckpt, { optimizer: true });
    if (loaded.optimizer && loaded.state) resume = loaded;
    else loaded.model.dispose();
  }
  const model = resume?.model ?? createModel(family, raw, training.seed);
  const flops = trainingFlops(model, training.seqLen);
  const res = await runTraining({
    runDir: dir,
    model,
    training,
    data,
    backend,
    label,
    json: true,
    quiet: true,
    ...(resume ? { resume } : {}),
    ...(task ? { task } : {}),
    ...(tokenizer ? { tokenizer } : {}),
    trainer: trainerOptionsFromArgs(args, workerSetup),
  });
  const params = model.params.count();
  const dModel = Number(model.config.dModel ?? 0);
  model.dispose();
  if (res.interrupted) return undefined;
  const curves = curvesFromMetrics(res.metricsPath, dModel);
  const tail = curves.train.slice(-1);
  return {
    status: res.diverged ? 'diverged' : 'ok',
    steps: res.steps,
    initialValLoss: curves.val[0]?.[1] ?? Number.NaN,
    finalValLoss: res.diverged ? Number.NaN : (res.finalValLoss ?? Number.NaN),
    finalTrainLoss: tail[0]?.[1] ?? Number.NaN,
    msPerStep: res.msPerStep,
    trainSeconds: res.trainSeconds,
    tokensPerStep: training.batchSize * training.seqLen,
    flopsPerToken: flops.flopsPerToken,
    params,
    dModel,
    ...(curves.deltaF.length ? { deltaF1: curves.deltaF[0]![1] } : {}),
    ...(res.diverged ? { divergedAt: res.diverged.step } : {}),
  };
}

/** How many runs to train at once by default: one per core (each single-threaded), at most 2 (see the docs). */
export function defaultJobs(workersPerRun: number): number {
  return Math.max(1, Math.floor(Math.min(2, availableParallelism()) / Math.max(1, workersPerRun)));
}

function loadSpec(out: string): CompareSpec | undefined {
  const f = join(out, 'compare.json');
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as CompareSpec) : undefined;
}

function collectResults(out: string, spec: CompareSpec): RunSummary[] {
  const runs: RunSummary[] = [];
  for (const v of spec.variants)
    for (const lr of spec.lrs[v.label] ?? [])
      for (const seed of spec.seeds) {
        const dir = runDirOf(out, v.label, lr, seed);
        const r = readResult(dir);
        // the folder as seen from here (the grid may have been moved, or run from another directory)
        if (r) runs.push({ ...r, runDir: dir });
      }
  return runs;
}

/** `strata compare`: the grid of variants × learning rates × seeds, then the report. */
export async function run(args: ParsedArgs): Promise<number> {
  if (args.replot !== undefined) return replot(String(args.replot), args);
  const variants = variantsFromArgs(args);
  const seeds = String(args.seeds)
    .split(',')
    .map((s) => Number(s.trim()));
  if (seeds.some((s) => !Number.isInteger(s) || s < 0) || new Set(seeds).size !== seeds.length)
    throw new UsageError(
      `--seeds must be a comma-separated list of distinct integers ≥ 0, got "${String(args.seeds)}"`,
    );
  const extend = (args['extend-grid'] as number | undefined) ?? 2;
  if (!Number.isInteger(extend) || extend < 0)
    throw new UsageError(`--extend-grid must be an integer ≥ 0, got ${extend}`);
  const outDir = String(args.out ?? join('runs', `compare-${Date.now()}`));
  const json = Boolean(args.json);
  const backend = await setupRuntime(args);
  const shared: ParsedArgs = Object.fromEntries(
    Object.entries(args).filter(([k, v]) => v !== undefined && !COMPARE_ONLY.has(k)),
  );
  // Validate every variant's configuration here, so a bad flag is one line now, not a failed child later.
  // A growth arm's budget split (small steps, grown steps) is known before any run starts.
  const budgets = new Map<string, GrowthBudget>();
  for (const v of variants) {
    const a = { ...shared, ...v.args };
    const arm = growthArmOf(a, `--variant ${v.label}`);
    planFreshRun(smallPhaseArgs(a));
    if (arm) budgets.set(v.label, await growthBudget(a, arm));
  }
  // One comparison per folder at a time: a second `strata compare --out` on it fails naming the holder.
  const lock = acquireDirLock(outDir, { label: `--out ${outDir}` });
  try {
    return await runGrid(args, { outDir, variants, seeds, extend, json, backend, shared, budgets });
  } finally {
    lock.release();
  }
}

async function runGrid(
  args: ParsedArgs,
  o: {
    outDir: string;
    variants: Variant[];
    seeds: number[];
    extend: number;
    json: boolean;
    backend: { name: string };
    shared: ParsedArgs;
    budgets: Map<string, GrowthBudget>;
  },
): Promise<number> {
  const { outDir, variants, seeds, extend, json, backend, shared, budgets } = o;
  let spec = loadSpec(outDir);
  if (args.force && existsSync(outDir)) {
    for (const e of dirEntriesExceptLock(outDir)) rmSync(join(outDir, e), { recursive: true, force: true });
    spec = undefined;
  } else if (!spec && existsSync(outDir) && dirEntriesExceptLock(outDir).length > 0) {
    throw new StrataError(
      'E_IO',
      `--out ${outDir} exists, is not empty and holds no compare.json; pass --force to overwrite it`,
    );
  }
  const grids = lrGrids(args, variants);
  if (spec) {
    // Resume: the saved grid (with its extensions) plus whatever this command adds.
    for (const [label, lrs] of Object.entries(spec.lrs))
      if (grids[label]) grids[label] = [...new Set([...grids[label]!, ...lrs])].sort((a, b) => a - b);
  }
  const targetFlags = Object.fromEntries(
    Object.entries(args).filter(([k, v]) => v !== undefined && k.startsWith('target')),
  );
  spec = { version: 1, shared, variants, seeds, lrs: grids, target: targetFlags };
  mkdirSync(outDir, { recursive: true });
  const saveSpec = () => writeFileSync(join(outDir, 'compare.json'), `${JSON.stringify(spec, null, 2)}\n`);
  saveSpec();
  const plan = (): PlannedRun[] => {
    const out: PlannedRun[] = [];
    // Seed-major order: an interrupted grid has whole seeds of every variant and rate, not whole variants.
    for (const seed of seeds)
      for (const v of variants)
        for (const lr of spec!.lrs[v.label]!) {
          const a = jobArgs(shared, v, lr, seed);
          const dir = runDirOf(outDir, v.label, lr, seed);
          checkJob(dir, a);
          if (!existsSync(join(dir, 'job.json'))) {
            mkdirSync(dir, { recursive: true });
            writeFileSync(
              join(dir, 'job.json'),
              `${JSON.stringify({ variant: v.label, lr, seed, args: a }, null, 2)}\n`,
            );
          }
          const b = budgets.get(v.label);
          const steps = b ? b.smallSteps + b.grownSteps : planFreshRun(a).training.steps;
          out.push({ variant: v, lr, seed, dir, steps });
        }
    return out;
  };
  const workersPerRun = (args.workers as number | undefined) ?? 1;
  const jobs = (args.jobs as number | undefined) ?? defaultJobs(workersPerRun);
  if (!Number.isInteger(jobs) || jobs < 1) throw new UsageError(`--jobs must be an integer ≥ 1, got ${jobs}`);
  const progress = new Progress('compare', { json });
  const started = new Date();
  const load0 = loadavg()[0]!;
  let planned = plan();
  const totalRuns = () => planned.length;
  if (!json)
    process.stderr.write(
      `compare: ${variants.length} variant(s) × ${Object.values(spec.lrs).reduce((a, l) => a + l.length, 0) / variants.length} learning rate(s) on average × ${seeds.length} seed(s) = ${totalRuns()} runs, ${jobs} at a time (backend ${backend.name}); ${planned.filter((p) => readResult(p.dir)).length} already finished\n`,
    );
  for (const [label, lrs] of Object.entries(spec.lrs))
    if (lrs.length < 4)
      progress.log(
        `note: ${label} has ${lrs.length} learning rate(s); a fair comparison tunes each variant over ≥ 4 (--lrs)`,
      );
  const extensions: Record<string, number> = {};
  for (;;) {
    const { interrupted } = await executeRuns(planned, { jobs, json, progress });
    if (interrupted) {
      process.stderr.write(
        `interrupted: finished runs are kept in ${outDir}; run the same command to resume\n`,
      );
      return STOP_EXIT_CODES[interrupted];
    }
    const runs = collectResults(outDir, spec);
    markStalled(runs, chanceOf(runs, shared));
    let grew = false;
    for (const sweep of analyzeSweeps(runs, spec.lrs)) {
      const next = extensionLr(sweep);
      if (next === null || (extensions[sweep.variant] ?? 0) >= extend) continue;
      extensions[sweep.variant] = (extensions[sweep.variant] ?? 0) + 1;
      spec.lrs[sweep.variant] = [...spec.lrs[sweep.variant]!, next].sort((a, b) => a - b);
      progress.log(
        `${sweep.variant}: best learning rate ${sweep.bestLr!.toExponential(2)} is at the ${sweep.bestAtEdge} edge of its grid; adding ${next.toExponential(2)}`,
      );
      grew = true;
    }
    if (!grew) break;
    saveSpec();
    planned = plan();
  }
  const runs = collectResults(outDir, spec);
  await writeReport(outDir, spec, runs, args, {
    started,
    finished: new Date(),
    load: [load0, loadavg()[0]!],
    jobs,
    backend: backend.name,
  });
  const sweeps = analyzeSweeps(runs, spec.lrs);
  if (json)
    process.stdout.write(
      `${JSON.stringify({ event: 'compare', outDir, best: sweeps.map((s) => ({ variant: s.variant, bestLr: s.bestLr, bestAtEdge: s.bestAtEdge, trainingLrs: s.trainingLrs })) })}\n`,
    );
  else {
    for (const s of sweeps) {
      const f = s.best.filter((r) => r.status !== 'diverged').map((r) => r.finalValLoss);
      process.stdout.write(
        `${s.variant}: best lr ${s.bestLr === null ? '—' : s.bestLr.toExponential(2)}${s.bestAtEdge ? ` (at the ${s.bestAtEdge} edge)` : ''}, final validation loss ${fmtMeanStd(f)}\n`,
      );
    }
    process.stdout.write(`report: ${join(outDir, 'report.md')}\n`);
  }
  return 0;
}

/** ln V of the comparison's vocabulary (the uniform-prediction loss). */
function chanceOf(runs: readonly RunSummary[], shared: ParsedArgs): number {
  const first = runs[0];
  if (first && Number.isFinite(first.initialValLoss)) {
    // the vocabulary is in the job's model; read it from the first run's checkpoint config
    const cfg = join(first.runDir, 'checkpoint', 'config.json');
    if (existsSync(cfg)) {
      const v = (JSON.parse(readFileSync(cfg, 'utf8')) as { model?: { vocabSize?: number } }).model
        ?.vocabSize;
      if (typeof v === 'number') return Math.log(v);
    }
  }
  // the model's vocabulary as a run of the grid builds it (a --tokenizer sets it)
  return Math.log(Number(planFreshRun(shared).config.vocabSize));
}

/** Rebuilds DIR/report.md and the plots from the runs kept there (e.g. with a new `--target-*`). */
async function replot(dir: string, args: ParsedArgs): Promise<number> {
  const spec = loadSpec(dir);
  if (!spec)
    throw new StrataError('E_IO', `--replot ${dir}: no compare.json (not a compare report directory)`);
  await setupRuntime({ ...spec.shared, backend: 'cpu' });
  const runs = collectResults(dir, spec);
  if (!runs.length) throw new StrataError('E_IO', `--replot ${dir}: no finished run yet`);
  await writeReport(dir, spec, runs, args, undefined);
  process.stdout.write(`report: ${join(dir, 'report.md')}\n`);
  return 0;
}

// ---------------------------------------------------------------------------------------------------------------
// Report

function fmt(x: number | null | undefined, digits = 4): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(digits);
}
function fmtMeanStd(xs: readonly number[], digits = 4): string {
  if (!xs.length) return '—';
  if (xs.length === 1) return xs[0]!.toFixed(digits);
  return `${mean(xs).toFixed(digits)} ± ${std(xs).toFixed(digits)} [${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}]`;
}
function fmtSI(x: number): string {
  if (!Number.isFinite(x)) return '—';
  const units: [number, string][] = [
    [1e15, 'P'],
    [1e12, 'T'],
    [1e9, 'G'],
    [1e6, 'M'],
    [1e3, 'k'],
  ];
  for (const [v, u] of units) if (Math.abs(x) >= v) return `${(x / v).toPrecision(3)}${u}`;
  return x.toPrecision(3);
}
function fmtSpread(xs: readonly number[], f: (x: number) => string): string {
  if (!xs.length) return '—';
  if (xs.length === 1) return f(xs[0]!);
  return `${f(mean(xs))} [${f(Math.min(...xs))}–${f(Math.max(...xs))}]`;
}

function gitCommit(): string {
  // The commit of the Strata checkout this CLI runs from (with "+changes" when its tree is dirty).
  const cwd = fileURLToPath(new URL('.', import.meta.url));
  const head = spawnSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd, encoding: 'utf8' });
  if (head.status !== 0) return 'unknown (not a git checkout)';
  const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], {
    cwd,
    encoding: 'utf8',
  });
  return `${head.stdout.trim()}${dirty.stdout.trim() ? '+changes' : ''}`;
}

interface RunInfo {
  started: Date;
  finished: Date;
  load: [number, number];
  jobs: number;
  backend: string;
}

async function writeReport(
  outDir: string,
  spec: CompareSpec,
  runs: RunSummary[],
  args: ParsedArgs,
  info: RunInfo | undefined,
): Promise<void> {
  const chance = chanceOf(runs, spec.shared);
  markStalled(runs, chance);
  const sweeps = analyzeSweeps(runs, spec.lrs);
  const curveCache = new Map<string, RunCurves>();
  const curvesOf = (r: RunSummary) => {
    let c = curveCache.get(r.runDir);
    if (!c) {
      c = curvesFromMetrics(join(r.runDir, r.growth?.metrics ?? 'metrics.jsonl'), r.dModel);
      curveCache.set(r.runDir, c);
    }
    return c;
  };
  // The target the comparison was run with, unless this call (a --replot) names another.
  const given = Object.fromEntries(
    Object.entries(args).filter(([k, v]) => v !== undefined && k.startsWith('target')),
  );
  const merged: ParsedArgs = { ...spec.shared, ...(Object.keys(given).length ? given : (spec.target ?? {})) };
  const target = resolveTarget(merged, sweeps);
  const labels = sweeps.map((s) => s.variant);
  const hl = [{ y: chance, label: `ln V = ${chance.toFixed(2)} (uniform)` }];
  if (target !== undefined) hl.push({ y: target, label: `target ${target.toFixed(3)}` });
  const plots: { file: string; caption: string }[] = [];
  const plot = async (name: string, specV: Parameters<typeof writePlot>[2], caption: string) => {
    plots.push({ file: await writePlot(outDir, name, specV), caption });
  };
  const bestLabel = (s: VariantSweep) =>
    `${s.variant} (lr ${s.bestLr === null ? '—' : s.bestLr.toExponential(1)}, n=${s.best.length})`;
  const withBest = sweeps.filter((s) => s.best.length);
  const nSeeds = spec.seeds.length;
  const sub = `mean over ${nSeeds} seed(s) at each variant's best learning rate; band = min–max`;
  const axes: { name: string; x: string; map: (r: RunSummary, c: RunCurves) => (s: number) => number }[] = [
    { name: 'steps', x: 'optimizer step', map: () => (s) => s },
    { name: 'tokens', x: 'tokens seen', map: (r) => (s) => s * r.tokensPerStep },
    {
      name: 'flops',
      x: 'training FLOPs (6N + 12·T·d_attn per token)',
      map: (r) => (s) => flopsAt(r, s),
    },
    {
      name: 'time',
      x: 'training seconds (evaluation excluded)',
      map: (_r, c) => (s) => c.seconds.get(s) ?? Number.NaN,
    },
  ];
  for (const a of axes) {
    const series: BandSeries[] = withBest.map((s) => {
      const rs = s.best;
      const maps = rs.map((r) => a.map(r, curvesOf(r)));
      return {
        label: bestLabel(s),
        points: bandOf(
          rs.map((r) => curvesOf(r).val),
          (step, i) => maps[i]!(step),
        ),
      };
    });
    await plot(
      `val-${a.name}`,
      bandChart(series, {
        title: `Validation loss vs ${a.name}`,
        subtitle: sub,
        xLabel: a.x,
        yLabel: 'validation loss (nats/token)',
        hLines: hl,
      }),
      `Validation loss against ${a.x}.`,
    );
  }
  await plot(
    'train-steps',
    bandChart(
      withBest.map((s) => ({ label: bestLabel(s), points: bandOf(s.best.map((r) => curvesOf(r).train)) })),
      {
        title: 'Training loss (EMA 0.1) vs steps',
        subtitle: sub,
        xLabel: 'optimizer step',
        yLabel: 'training loss (nats/token)',
        hLines: hl,
      },
    ),
    'Training loss (exponential moving average, 0.1).',
  );
  const cells = sweeps.flatMap((s) => s.cells);
  await plot(
    'lr-sensitivity',
    sensitivityChart(cells, {
      title: 'Learning-rate sensitivity: final validation loss',
      subtitle: `mean over seeds, bars = min–max; × = a seed diverged (drawn at ln V)`,
      xLabel: 'peak learning rate (log scale)',
      yLabel: 'final validation loss (nats/token)',
      logX: true,
      ceiling: chance,
      hLines: target !== undefined ? [{ y: target, label: `target ${target.toFixed(3)}` }] : [],
    }),
    'Final validation loss against the learning rate, one line per variant (the stable range is where the line is low and flat).',
  );
  // Mechanism: diagnostics at each variant's best rate and at one shared rate.
  const hasDiag = runs.some((r) => curvesOf(r).deltaF.length);
  let sharedLr: number | undefined;
  if (hasDiag) {
    const common = labels.length
      ? sweeps.map((s) => s.lrs).reduce((a, b) => a.filter((x) => b.includes(x)))
      : [];
    sharedLr =
      args['mechanism-lr'] !== undefined
        ? Number(args['mechanism-lr'])
        : common.length
          ? common[Math.floor((common.length - 1) / 2)]
          : undefined;
    const groups: {
      tag: string;
      title: string;
      pick: (s: VariantSweep) => RunSummary[];
      lrOf: (s: VariantSweep) => number | null;
    }[] = [{ tag: 'best', title: "each variant's best lr", pick: (s) => s.best, lrOf: (s) => s.bestLr }];
    if (sharedLr !== undefined)
      groups.push({
        tag: 'shared',
        title: `shared lr ${sharedLr.toExponential(1)}`,
        pick: (s) => runs.filter((r) => r.variant === s.variant && r.lr === sharedLr),
        lrOf: () => sharedLr!,
      });
    for (const g of groups) {
      const sel = sweeps.map((s) => ({ s, rs: g.pick(s) })).filter((x) => x.rs.length);
      const lab = (x: { s: VariantSweep; rs: RunSummary[] }) =>
        `${x.s.variant} (lr ${g.lrOf(x.s)?.toExponential(1)}, n=${x.rs.length})`;
      await plot(
        `delta-f-${g.tag}`,
        bandChart(
          sel.map((x) => ({ label: lab(x), points: bandOf(x.rs.map((r) => curvesOf(r).deltaF)) })),
          {
            title: `Model update ‖F(x,θ_t) − F(x,θ_0)‖ (DeepNet §3), ${g.title}`,
            subtitle: 'per position, on a fixed probe batch; mean and min–max over seeds',
            xLabel: 'step (log scale)',
            yLabel: '‖ΔF‖ (log scale)',
            logX: true,
            logY: true,
          },
        ),
        `‖ΔF‖ over training, ${g.title}.`,
      );
      await plot(
        `ln-input-${g.tag}`,
        bandChart(
          sel.map((x) => ({ label: lab(x), points: bandOf(x.rs.map((r) => curvesOf(r).lnInput)) })),
          {
            title: `Mean LN input norm / √d over all norm sites, ${g.title}`,
            subtitle: 'DeepNet §3 attributes Post-LN failure to large LN inputs; mean and min–max over seeds',
            xLabel: 'step (log scale)',
            yLabel: '‖LN input‖ / √d',
            logX: true,
          },
        ),
        `Mean norm of the LayerNorm inputs (÷√d), ${g.title}.`,
      );
      const ratio = (c: RunCurves): [number, number][] =>
        [...c.gradNorms.entries()]
          .filter(([, g2]) => g2.length >= 2 && g2[g2.length - 1]! > 0)
          .map(([step, g2]) => [step, g2[0]! / g2[g2.length - 1]!]);
      await plot(
        `grad-ratio-${g.tag}`,
        bandChart(
          sel.map((x) => ({ label: lab(x), points: bandOf(x.rs.map((r) => ratio(curvesOf(r)))) })),
          {
            title: `Gradient norm of the lowest block ÷ the highest block, ${g.title}`,
            subtitle: 'below 1: lower layers get vanishing gradients; mean and min–max over seeds',
            xLabel: 'step (log scale)',
            yLabel: '‖∇ block 0‖ / ‖∇ block L−1‖ (log)',
            logX: true,
            logY: true,
          },
        ),
        `Bottom-to-top gradient-norm ratio over training, ${g.title}.`,
      );
      const stepsWith = sel.flatMap((x) => x.rs.flatMap((r) => [...curvesOf(r).gradNorms.keys()]));
      const late = stepsWith.filter((s) => s <= 100).reduce((a, b) => Math.max(a, b), 1);
      for (const step of [1, late].filter((s, i, a) => a.indexOf(s) === i)) {
        const series = sel.map((x) => {
          const per = x.rs.map((r) => curvesOf(r).gradNorms.get(step)).filter((v): v is number[] => !!v);
          const L = Math.max(0, ...per.map((p) => p.length));
          return {
            label: lab(x),
            points: Array.from(
              { length: L },
              (_, i) => [i, mean(per.map((p) => p[i]!).filter(Number.isFinite))] as [number, number],
            ),
          };
        });
        await plot(
          `grad-blocks-step${step}-${g.tag}`,
          lineChart(series, {
            title: `Gradient norm per block at step ${step}, ${g.title}`,
            subtitle: 'mean over seeds',
            xLabel: 'block (0 = next to the embedding)',
            yLabel: '‖∇θ_block‖ (log scale)',
            xFormat: 'd',
            logY: true,
          }),
          `Per-block gradient norms at step ${step}, ${g.title}.`,
        );
      }
    }
  }

  // The tables.
  // How the grid was run (command, machine, load): kept beside the report so that --replot can repeat it.
  const infoFile = join(outDir, 'run-info.json');
  const quote = (a: string) => (/[\s"'$]/.test(a) ? `'${a.replace(/'/g, "'\\''")}'` : a);
  if (info)
    writeFileSync(
      infoFile,
      `${JSON.stringify({ ...info, commit: gitCommit(), command: `strata compare ${process.argv.slice(3).map(quote).join(' ')}` }, null, 2)}\n`,
    );
  const saved = existsSync(infoFile)
    ? (JSON.parse(readFileSync(infoFile, 'utf8')) as Omit<RunInfo, 'started' | 'finished'> & {
        started: string;
        finished: string;
        command: string;
        commit?: string;
        note?: string;
      })
    : undefined;
  const perToken = (r: RunSummary | undefined) =>
    !r ? '—' : `${r.growth ? `${fmtSI(r.growth.smallFlopsPerToken)} → ` : ''}${fmtSI(r.flopsPerToken)}`;
  const L: string[] = [];
  L.push('# strata compare', '');
  L.push(
    `Command: \`${saved?.command ?? `strata compare ${process.argv.slice(3).map(quote).join(' ')}`}\``,
    '',
  );
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  L.push(
    `Commit ${saved?.commit ?? gitCommit()}; ${cpus().length} × ${cpu}; Node ${process.version}${saved ? `; backend ${saved.backend}; ${saved.jobs} run(s) at a time; load average ${saved.load[0].toFixed(2)} at the start, ${saved.load[1].toFixed(2)} at the end of the last invocation; ${saved.started} → ${saved.finished}` : ''}.${saved?.note ? ` ${saved.note}.` : ''}`,
    '',
  );
  const first = runs[0];
  L.push(
    `Seeds: ${spec.seeds.join(', ')}. Budget per run: ${first?.steps ?? '?'} steps × ${first ? formatCount(first.tokensPerStep) : '?'} tokens.` +
      ' Learning-rate grids: ' +
      sweeps.map((s) => `${s.variant} {${s.lrs.map((x) => x.toExponential(1)).join(', ')}}`).join('; ') +
      '.',
    '',
    'Each variant is reported at its own best learning rate: the lowest mean final validation loss over seeds among rates where no seed diverged. ' +
      '"stalled" = finished closer to the uniform loss ln V than to the best run of the comparison; "diverged" = a non-finite loss (counted, never dropped). ' +
      'Spreads are mean ± sample std [min–max] over seeds.',
    '',
  );
  L.push('## Best learning rate per variant', '');
  L.push(
    '| variant | best lr | final val loss at best lr | rates that train (all seeds) | runs | stalled | diverged | FLOPs/token | FLOPs/run | params |',
    '|---|---|---|---|---|---|---|---|---|---|',
  );
  for (const s of sweeps) {
    const rs = runs.filter((r) => r.variant === s.variant);
    const f = s.best.filter((r) => r.status !== 'diverged').map((r) => r.finalValLoss);
    const edge = s.bestAtEdge
      ? ` ⚠ at the ${s.bestAtEdge} edge of the grid`
      : s.lrs.length < 2
        ? ' (one rate: not tuned)'
        : '';
    const range = s.trainingLrs.length
      ? `${s.trainingLrs[0]!.toExponential(1)} – ${s.trainingLrs[s.trainingLrs.length - 1]!.toExponential(1)} (${s.trainingLrs.length}/${s.lrs.length})`
      : 'none';
    L.push(
      `| ${s.variant} | ${s.bestLr === null ? '—' : s.bestLr.toExponential(2)}${edge} | ${fmtMeanStd(f)} | ${range} | ${rs.length} | ${rs.filter((r) => r.status === 'stalled').length} | ${rs.filter((r) => r.status === 'diverged').length} | ${perToken(rs[0])} | ${fmtSI(rs[0] ? flopsAt(rs[0], rs[0].steps) : Number.NaN)} | ${rs[0]?.growth ? `${fmtSI(rs[0].growth.smallParams)} → ` : ''}${fmtSI(rs[0]?.params ?? Number.NaN)} |`,
    );
  }
  // Equal compute is the point of a comparison: say so when the arms' budgets differ (> 2%).
  const budgetsPerVariant = sweeps
    .map((s) => ({ v: s.variant, r: runs.find((r) => r.variant === s.variant && r.status !== 'diverged') }))
    .filter((x) => x.r)
    .map((x) => ({ v: x.v, f: flopsAt(x.r!, x.r!.steps) }));
  const fMin = Math.min(...budgetsPerVariant.map((x) => x.f));
  const fMax = Math.max(...budgetsPerVariant.map((x) => x.f));
  if (budgetsPerVariant.length > 1 && fMax > fMin * 1.02)
    L.push(
      '',
      `⚠ The variants' training budgets differ (${budgetsPerVariant.map((x) => `${x.v} ${fmtSI(x.f)}`).join(', ')} FLOPs per run): compare them against FLOPs, not steps — this is not an equal-compute comparison.`,
    );
  const grownRuns = runs.filter((r) => r.growth);
  if (grownRuns.length) {
    L.push(
      '',
      '## Growth arms',
      '',
      'A growth arm trains the small model for its share of the FLOP budget, grows it (function-preserving, Adam state grown) and trains the grown model in a new schedule phase; `--steps` counts grown-model steps, so every arm spends the same FLOPs.',
      '',
      '| variant | grew at step | then grown steps | grown phase peak lr | params | FLOPs/run | max \\|Δlogits\\| at growth (max over runs) |',
      '|---|---|---|---|---|---|---|',
    );
    for (const s of sweeps) {
      const rs = grownRuns.filter((r) => r.variant === s.variant);
      const r = rs[0];
      if (!r?.growth) continue;
      L.push(
        `| ${s.variant} | ${r.growth.step} | ${r.steps - r.growth.step} | ${r.growth.grownLr === undefined ? 'lr' : `${r.growth.grownLr} × lr`} | ${fmtSI(r.growth.smallParams)} → ${fmtSI(r.params)} | ${fmtSI(flopsAt(r, r.steps))} | ${Math.max(...rs.map((x) => x.growth!.maxAbsDeltaLogits)).toExponential(1)} |`,
      );
    }
  }
  L.push('', '## Final validation loss over the grid (mean ± std over seeds; stalled/diverged counts)', '');
  const allLrs = [...new Set(sweeps.flatMap((s) => s.lrs))].sort((a, b) => a - b);
  L.push(
    `| variant | ${allLrs.map((x) => x.toExponential(1)).join(' | ')} |`,
    `|---|${allLrs.map(() => '---').join('|')}|`,
  );
  for (const s of sweeps) {
    const row = allLrs.map((lr) => {
      const c = s.cells.find((x) => x.lr === lr);
      if (!c || c.runs === 0) return '';
      const f = runs
        .filter((r) => r.variant === s.variant && r.lr === lr && r.status !== 'diverged')
        .map((r) => r.finalValLoss);
      const flags = [c.stalled ? `${c.stalled} stalled` : '', c.diverged ? `${c.diverged} diverged` : '']
        .filter(Boolean)
        .join(', ');
      const body = f.length ? `${mean(f).toFixed(3)} ± ${std(f).toFixed(3)}` : '—';
      return `${lr === s.bestLr ? `**${body}**` : body}${flags ? ` (${flags})` : ''}`;
    });
    L.push(`| ${s.variant} | ${row.join(' | ')} |`);
  }
  if (target !== undefined) {
    const ref = merged['target-from'] as string | undefined;
    L.push(
      '',
      `## Cost to reach validation loss ${target.toFixed(4)}${ref ? ` (the mean final loss of ${ref} at its best rate)` : ''}`,
      '',
      "At each variant's best rate; counted at evaluation points (every --eval-every steps). Mean [min–max] over the seeds that reach it.",
      '',
      `| variant | runs reaching | steps | tokens | FLOPs | seconds |${ref ? ` FLOPs ratio vs ${ref} | time ratio vs ${ref} |` : ''}`,
      `|---|---|---|---|---|---|${ref ? '---|---|' : ''}`,
    );
    const costs = new Map(
      sweeps.map(
        (s) =>
          [
            s.variant,
            s.best.map((r) => costToTarget(r, curvesOf(r), target)).filter((x) => x !== null),
          ] as const,
      ),
    );
    const refCost = ref ? costs.get(ref) : undefined;
    for (const s of sweeps) {
      const c = costs.get(s.variant)!;
      const ratio =
        refCost?.length && c.length
          ? ` ${(mean(refCost.map((x) => x.flops)) / mean(c.map((x) => x.flops))).toFixed(2)}× | ${(mean(refCost.map((x) => x.seconds)) / mean(c.map((x) => x.seconds))).toFixed(2)}× |`
          : ref
            ? ' — | — |'
            : '';
      L.push(
        `| ${s.variant} | ${c.length}/${s.best.length} | ${fmtSpread(
          c.map((x) => x.steps),
          (x) => x.toFixed(0),
        )} | ${fmtSpread(
          c.map((x) => x.tokens),
          fmtSI,
        )} | ${fmtSpread(
          c.map((x) => x.flops),
          fmtSI,
        )} | ${fmtSpread(
          c.map((x) => x.seconds),
          (x) => x.toFixed(1),
        )} |${ratio}`,
      );
    }
    if (ref) L.push('', `A ratio above 1: the variant needs less than ${ref} to reach the target.`);
  }
  L.push(
    '',
    '## Plots',
    '',
    'Each plot has its data (`.csv`) and its Vega-Lite spec (`.vl.json`, data inline) beside it.',
    '',
  );
  for (const p of plots) L.push(`![${p.file}](${p.file})`, '', p.caption, '');
  L.push(
    '## Every run',
    '',
    '| variant | lr | seed | status | initial val | final val | final train (EMA) | ms/step | ‖ΔF‖ step 1 |',
    '|---|---|---|---|---|---|---|---|---|',
  );
  for (const r of [...runs].sort(
    (a, b) => a.variant.localeCompare(b.variant) || a.lr - b.lr || a.seed - b.seed,
  ))
    L.push(
      `| ${r.variant} | ${r.lr.toExponential(2)} | ${r.seed} | ${r.status}${r.divergedAt ? ` (step ${r.divergedAt})` : ''} | ${fmt(r.initialValLoss)} | ${fmt(r.finalValLoss)} | ${fmt(r.finalTrainLoss)} | ${r.msPerStep.toFixed(0)} | ${fmt(r.deltaF1, 3)} |`,
    );
  writeFileSync(join(outDir, 'report.md'), `${L.join('\n')}\n`);
  writeFileSync(
    join(outDir, 'summary.json'),
    `${JSON.stringify(
      {
        chance,
        target: target ?? null,
        sharedLr: sharedLr ?? null,
        variants: sweeps.map((s) => ({
          variant: s.variant,
          lrs: s.lrs,
          bestLr: s.bestLr,
          bestAtEdge: s.bestAtEdge,
          trainingLrs: s.trainingLrs,
          cells: s.cells,
        })),
        runs,
      },
      null,
      2,
    )}\n`,
  );
}

/** Options of {@link compare}, the programmatic form of `strata compare`. */
export interface CompareOptions {
  /** Report directory (resumed when it holds the same comparison). */
  out: string;
  /** Variants by label: the flags each adds to the shared ones, e.g. `{ deepnorm: '--norm deepnorm' }`. */
  variants: Record<string, string>;
  /** Flags every run shares, as on the command line (e.g. `'--layers 24 --d-model 32 --steps 300'`). */
  shared?: string;
  /** Learning-rate grid (default: ×¼ … ×2 around each family's default rate). */
  lrs?: readonly number[];
  /** Seeds (default 1, 2, 3). */
  seeds?: readonly number[];
  /** Runs at once (default: one per core, at most 2). */
  jobs?: number;
  /** Grid extensions allowed per variant when its best rate sits at an edge (default 2). */
  extendGrid?: number;
  /** Report cost to this variant's final loss. */
  targetFrom?: string;
}

/**
 * Runs a comparison from code, exactly as `strata compare` does, and returns what `summary.json` holds (each
 * variant's grid, best rate and sweep cells, and every run).
 */
export async function compare(o: CompareOptions): Promise<{
  /** Each variant's sweep summary (grid, best rate, sweep cells). */
  variants: unknown[];
  /** Every run of the comparison. */
  runs: RunSummary[];
}> {
  const argv = [
    '--out',
    o.out,
    ...Object.entries(o.variants).flatMap(([label, flags]) => ['--variant', `${label}=${flags}`]),
    ...(o.lrs ? ['--lrs', o.lrs.join(',')] : []),
    ...(o.seeds ? ['--seeds', o.seeds.join(',')] : []),
    ...(o.jobs !== undefined ? ['--jobs', String(o.jobs)] : []),
    ...(o.extendGrid !== undefined ? ['--extend-grid', String(o.extendGrid)] : []),
    ...(o.targetFrom ? ['--target-from', o.targetFrom] : []),
    '--json',
    ...splitWords(o.shared ?? ''),
  ];
  const code = await run(parseCommandArgs(compareSpec, argv));
  if (code !== 0) throw new StrataError('E_IO', `compare stopped with exit code ${code}`);
  return JSON.parse(readFileSync(join(o.out, 'summary.json'), 'utf8')) as {
    variants: unknown[];
    runs: RunSummary[];
  };
}
