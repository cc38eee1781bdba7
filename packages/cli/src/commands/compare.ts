import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getModelFamily, lineChartSVG, readMetrics, type Series, StrataError } from '@strata/core';
import { type ParsedArgs, parseCommandArgs, splitWords, UsageError } from '../args.js';
import { formatDuration } from '../progress.js';
import {
  createModel,
  dataSpecFromArg,
  modelConfigFromArgs,
  type RunResult,
  runTraining,
  trainConfigFromArgs,
  trainerOptionsFromArgs,
} from '../run-training.js';
import { setupRuntime, workerSetup } from '../setup.js';
import { trainSpec } from '../specs.js';

/** One variant of a comparison: a label and the flags that override the shared ones. */
export interface Variant {
  label: string;
  args: ParsedArgs;
}

/** The outcome of one variant × seed, as it appears in the report. */
export interface RunSummary {
  variant: string;
  seed: number;
  status: 'ok' | 'diverged' | 'stalled';
  steps: number;
  initialValLoss: number;
  finalValLoss: number;
  finalTrainLoss: number;
  stepsToTarget: number | null;
  secondsToTarget: number | null;
  msPerStep: number;
  deltaF1?: number;
  runDir: string;
  divergedAt?: number;
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
    const parsed = parseCommandArgs(trainSpec, splitWords(v.slice(i + 1)), { defaults: false });
    out.push({ label, args: Object.fromEntries(Object.entries(parsed).filter(([, x]) => x !== undefined)) });
  }
  if (out.length === 0) throw new UsageError('give at least one variant with --norms, --models or --variant');
  const labels = out.map((v) => v.label);
  const dup = labels.find((l, i) => labels.indexOf(l) !== i);
  if (dup) throw new UsageError(`variant label "${dup}" is used twice`);
  for (const l of labels)
    if (!/^[\w.@/-]+$/.test(l))
      throw new UsageError(`variant label "${l}" may only contain letters, digits and . _ - / @`);
  return out;
}

function ema(values: readonly number[], a = 0.1): number[] {
  const out: number[] = [];
  let m = Number.NaN;
  for (const v of values) {
    if (!Number.isFinite(v)) {
      out.push(Number.NaN);
      continue;
    }
    m = Number.isNaN(m) ? v : (1 - a) * m + a * v;
    out.push(m);
  }
  return out;
}

/** The curves of one run, read back from its metrics file. */
export interface RunCurves {
  train: [number, number][];
  val: [number, number][];
  deltaF: [number, number][];
  grad1?: number[];
}

/** Reads a run's metrics: smoothed training loss, validation points, ‖ΔF‖ and step-1 gradient norms. */
export function curvesFromMetrics(path: string): { curve: RunCurves; rawTrain: number[] } {
  const train: [number, number][] = [];
  const val: [number, number][] = [];
  const deltaF: [number, number][] = [];
  let grad1: number[] | undefined;
  for (const r of readMetrics(path)) {
    if (typeof r.step !== 'number') continue;
    if (typeof r.loss === 'number') train.push([r.step, r.loss]);
    if (typeof r.valLoss === 'number') val.push([r.step, r.valLoss]);
    const d = r.diagnostics as { deltaF?: number; layerGradNorms?: number[] } | undefined;
    if (d?.deltaF !== undefined) deltaF.push([r.step, d.deltaF]);
    if (r.step === 1 && d?.layerGradNorms) grad1 = d.layerGradNorms;
  }
  const smooth = ema(train.map((p) => p[1]));
  return {
    curve: { train: train.map((p, i) => [p[0], smooth[i]!]), val, deltaF, ...(grad1 ? { grad1 } : {}) },
    rawTrain: train.map((p) => p[1]),
  };
}

/** Rebuilds DIR/report.md and the plots from the runs a previous `strata compare --out DIR` kept. */
async function replot(dir: string, args: ParsedArgs): Promise<number> {
  const file = join(dir, 'summary.json');
  if (!existsSync(file))
    throw new StrataError('E_IO', `--replot ${dir}: no summary.json (not a compare report directory)`);
  const saved = JSON.parse(readFileSync(file, 'utf8')) as {
    args: ParsedArgs;
    runs: RunSummary[];
    chance?: number;
  };
  const runs = saved.runs;
  const variants: Variant[] = [...new Set(runs.map((r) => r.variant))].map((label) => ({ label, args: {} }));
  const seeds = [...new Set(runs.map((r) => r.seed))];
  const curves = new Map<string, RunCurves>();
  for (const r of runs)
    curves.set(`${r.variant} s${r.seed}`, curvesFromMetrics(join(r.runDir, 'metrics.jsonl')).curve);
  const merged: ParsedArgs = {
    ...saved.args,
    ...Object.fromEntries(Object.entries(args).filter(([k, v]) => v !== undefined && k.startsWith('target'))),
  };
  const target = resolveTarget(merged, runs);
  for (const s of runs) {
    const hit =
      target === undefined
        ? undefined
        : curves.get(`${s.variant} s${s.seed}`)!.val.find(([, l]) => l <= target);
    s.stepsToTarget = hit ? hit[0] : null;
    s.secondsToTarget = hit ? (hit[0] * s.msPerStep) / 1000 : null;
  }
  writeReport(dir, merged, variants, seeds, runs, curves, saved.chance ?? Math.log(256), target);
  process.stdout.write(`report: ${join(dir, 'report.md')}\n`);
  return 0;
}

/** `strata compare`: several variants × seeds on the same data and budget, with plots and a report. */
export async function run(args: ParsedArgs): Promise<number> {
  if (args.replot !== undefined) return replot(String(args.replot), args);
  const variants = variantsFromArgs(args);
  const seeds = String(args.seeds)
    .split(',')
    .map((s) => Number(s.trim()));
  if (seeds.some((s) => !Number.isInteger(s) || s < 0))
    throw new UsageError(`--seeds must be a comma-separated list of integers, got "${String(args.seeds)}"`);
  const outDir = String(args.out ?? join('runs', `compare-${Date.now()}`));
  if (existsSync(outDir) && readdirSync(outDir).length > 0 && !args.force) {
    throw new StrataError(
      'E_IO',
      `--out ${outDir} already exists and is not empty; pass --force to overwrite it`,
    );
  }
  mkdirSync(outDir, { recursive: true });
  const backend = await setupRuntime(args);
  const json = Boolean(args.json);
  const summaries: RunSummary[] = [];
  const curves = new Map<string, RunCurves>();
  const total = variants.length * seeds.length;
  let index = 0;
  const vocabFor: number[] = [];
  for (const variant of variants) {
    for (const seed of seeds) {
      index++;
      const merged: ParsedArgs = { ...args, ...variant.args, seed };
      const { family, raw } = modelConfigFromArgs(merged);
      const fam = getModelFamily(family);
      const config = fam.parseConfig(raw);
      const training = trainConfigFromArgs(merged, fam.trainingDefaults ?? {}, config.contextLength);
      const data = dataSpecFromArg(merged.data, 1);
      const label = `${variant.label} s${seed}`;
      const runDir = join(outDir, `${variant.label.replace(/\//g, '_')}-s${seed}`);
      if (!json) process.stderr.write(`[${index}/${total}] ${label}\n`);
      const model = createModel(family, raw, seed);
      vocabFor.push(model.config.vocabSize);
      let res: RunResult;
      try {
        res = await runTraining({
          runDir,
          model,
          training,
          data,
          backend,
          label,
          json,
          quiet: true,
          trainer: trainerOptionsFromArgs(merged, workerSetup),
        });
      } finally {
        model.dispose();
      }
      const { curve, rawTrain } = curvesFromMetrics(res.metricsPath);
      const { val, deltaF } = curve;
      curves.set(label, curve);
      const tail = rawTrain.slice(-10);
      summaries.push({
        variant: variant.label,
        seed,
        status: res.diverged ? 'diverged' : 'ok',
        steps: res.steps,
        initialValLoss: val[0]?.[1] ?? Number.NaN,
        finalValLoss: res.finalValLoss ?? Number.NaN,
        finalTrainLoss: tail.reduce((a, b) => a + b, 0) / Math.max(1, tail.length),
        stepsToTarget: null,
        secondsToTarget: null,
        msPerStep: res.msPerStep,
        ...(deltaF.length ? { deltaF1: deltaF[0]![1] } : {}),
        runDir,
        ...(res.diverged ? { divergedAt: res.diverged.step } : {}),
      });
      if (!json) {
        const s = summaries[summaries.length - 1]!;
        process.stderr.write(
          `    ${s.status}: final validation loss ${s.finalValLoss.toFixed(4)}, ${s.msPerStep.toFixed(0)} ms/step\n`,
        );
      }
    }
  }
  markStalled(summaries, Math.log(Math.max(...vocabFor)));
  const target = resolveTarget(args, summaries);
  if (target !== undefined) {
    for (const s of summaries) {
      const val = curves.get(`${s.variant} s${s.seed}`)!.val;
      const hit = val.find(([, l]) => l <= target);
      s.stepsToTarget = hit ? hit[0] : null;
      s.secondsToTarget = hit ? (hit[0] * s.msPerStep) / 1000 : null;
    }
  }
  writeReport(outDir, args, variants, seeds, summaries, curves, Math.log(Math.max(...vocabFor)), target);
  if (json) process.stdout.write(`${JSON.stringify({ event: 'compare', outDir, runs: summaries })}\n`);
  else
    process.stdout.write(
      `report: ${join(outDir, 'report.md')}\nplots:  ${join(outDir, 'loss.svg')}, ${join(outDir, 'val.svg')}\n`,
    );
  return 0;
}

/** The target loss: `--target-loss`, or the mean final validation loss of the `--target-from` variant. */
export function resolveTarget(args: ParsedArgs, runs: readonly RunSummary[]): number | undefined {
  if (args['target-from'] !== undefined) {
    const ref = runs.filter((r) => r.variant === args['target-from'] && Number.isFinite(r.finalValLoss));
    if (!ref.length)
      throw new UsageError(`--target-from ${String(args['target-from'])}: no finished run of that variant`);
    return ref.reduce((a, r) => a + r.finalValLoss, 0) / ref.length;
  }
  return args['target-loss'] as number | undefined;
}

/**
 * A run "stalled" when it finished closer to the uniform-prediction loss ln V than to the best run's final
 * loss (e.g. 24-layer Post-LN stuck at the unigram level while DeepNorm reaches the entropy floor).
 */
export function markStalled(runs: RunSummary[], chance: number): void {
  const ok = runs.filter((r) => r.status === 'ok' && Number.isFinite(r.finalValLoss));
  if (ok.length < 2) return;
  const best = Math.min(...ok.map((r) => r.finalValLoss));
  const midpoint = (best + Math.min(chance, Math.max(...ok.map((r) => r.initialValLoss)))) / 2;
  for (const r of ok) if (r.finalValLoss > midpoint) r.status = 'stalled';
}

function fmt(x: number | null | undefined, digits = 4): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(digits);
}

function writeReport(
  outDir: string,
  args: ParsedArgs,
  variants: Variant[],
  seeds: number[],
  runs: RunSummary[],
  curves: Map<string, RunCurves>,
  chance: number,
  target: number | undefined,
): void {
  const palette = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
  const colorOf = (label: string) =>
    palette[variants.findIndex((v) => label.startsWith(`${v.label} s`)) % palette.length]!;
  const series = (pick: 'train' | 'val' | 'deltaF'): Series[] =>
    [...curves].map(([label, c]) => ({
      label,
      points: c[pick],
      color: colorOf(label),
      dashed: !label.endsWith(`s${seeds[0]}`),
    }));
  const hl = [{ y: chance, label: `ln V = ${chance.toFixed(2)} (uniform)` }];
  writeFileSync(
    join(outDir, 'loss.svg'),
    lineChartSVG(series('train'), {
      title: 'Training loss (EMA 0.1)',
      xLabel: 'step',
      yLabel: 'loss (nats/token)',
      hLines: hl,
    }),
  );
  writeFileSync(
    join(outDir, 'val.svg'),
    lineChartSVG(series('val'), {
      title: 'Validation loss',
      xLabel: 'step',
      yLabel: 'loss (nats/token)',
      hLines: hl,
    }),
  );
  const plots = ['loss.svg', 'val.svg'];
  if ([...curves.values()].some((c) => c.deltaF.length)) {
    writeFileSync(
      join(outDir, 'delta-f.svg'),
      lineChartSVG(series('deltaF'), {
        title: 'Model update ‖F(x,θ_t) − F(x,θ_0)‖ / √positions (DeepNet §3)',
        xLabel: 'step (log scale)',
        yLabel: '‖ΔF‖',
        logY: true,
        logX: true,
      }),
    );
    plots.push('delta-f.svg');
    const g: Series[] = [...curves]
      .filter(([label, c]) => c.grad1 && label.endsWith(`s${seeds[0]}`))
      .map(([label, c]) => ({
        label,
        points: c.grad1!.map((v, i) => [i, v] as [number, number]),
        color: colorOf(label),
      }));
    if (g.length) {
      writeFileSync(
        join(outDir, 'grad-norms.svg'),
        lineChartSVG(g, {
          title: 'Gradient norm per block at step 1',
          xLabel: 'block',
          yLabel: '‖∇θ_block‖',
          logY: true,
        }),
      );
      plots.push('grad-norms.svg');
    }
  }
  const lines: string[] = [];
  lines.push('# strata compare', '');
  lines.push(`Command: \`strata compare ${process.argv.slice(3).join(' ')}\``, '');
  lines.push(
    `Seeds: ${seeds.join(', ')}. Status "stalled" = finished closer to the uniform loss than to the best run; "diverged" = non-finite loss.`,
    '',
  );
  lines.push(
    '| variant | seed | status | initial val loss | final val loss | final train loss (last 10) | steps to target | seconds to target | ms/step | ‖ΔF‖ at step 1 |',
  );
  lines.push('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of runs) {
    lines.push(
      `| ${r.variant} | ${r.seed} | ${r.status}${r.divergedAt ? ` (step ${r.divergedAt})` : ''} | ${fmt(r.initialValLoss)} | ${fmt(r.finalValLoss)} | ${fmt(r.finalTrainLoss)} | ${r.stepsToTarget ?? '—'} | ${r.secondsToTarget === null ? '—' : formatDuration(r.secondsToTarget)} | ${r.msPerStep.toFixed(0)} | ${fmt(r.deltaF1, 3)} |`,
    );
  }
  lines.push(
    '',
    '## Per variant (over seeds)',
    '',
    '| variant | runs | ok | stalled | diverged | mean final val loss | min | max |',
    '|---|---|---|---|---|---|---|---|',
  );
  for (const v of variants) {
    const rs = runs.filter((r) => r.variant === v.label);
    const f = rs.map((r) => r.finalValLoss).filter(Number.isFinite);
    const mean = f.reduce((a, b) => a + b, 0) / Math.max(1, f.length);
    lines.push(
      `| ${v.label} | ${rs.length} | ${rs.filter((r) => r.status === 'ok').length} | ${rs.filter((r) => r.status === 'stalled').length} | ${rs.filter((r) => r.status === 'diverged').length} | ${fmt(mean)} | ${fmt(Math.min(...f))} | ${fmt(Math.max(...f))} |`,
    );
  }
  if (target !== undefined) {
    const ref = args['target-from'] as string | undefined;
    lines.push(
      '',
      `## Steps to the target validation loss ${target.toFixed(4)}${ref ? ` (mean final loss of ${ref})` : ''}`,
      '',
    );
    const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN);
    const stats = (v: string) => {
      const rs = runs.filter((r) => r.variant === v);
      const hit = rs.filter((r) => r.stepsToTarget !== null);
      return {
        n: rs.length,
        hit: hit.length,
        steps: mean(hit.map((r) => r.stepsToTarget!)),
        seconds: mean(hit.map((r) => r.secondsToTarget!)),
      };
    };
    lines.push(
      `| variant | runs reaching target | mean steps | mean seconds |${ref ? ` step ratio vs ${ref} | time ratio vs ${ref} |` : ''}`,
    );
    lines.push(`|---|---|---|---|${ref ? '---|---|' : ''}`);
    const r0 = ref ? stats(ref) : undefined;
    for (const v of variants) {
      const s = stats(v.label);
      const ratio =
        r0 && s.hit
          ? ` ${(r0.steps / s.steps).toFixed(2)}× | ${(r0.seconds / s.seconds).toFixed(2)}× |`
          : ref
            ? ' — | — |'
            : '';
      lines.push(`| ${v.label} | ${s.hit}/${s.n} | ${fmt(s.steps, 0)} | ${fmt(s.seconds, 1)} |${ratio}`);
    }
    lines.push(
      '',
      `Steps are counted at evaluation points (every --eval-every steps). A ratio above 1 means the variant reached the target in fewer steps (less time) than ${ref ?? 'the reference'}.`,
    );
  }
  lines.push('', ...plots.map((p) => `![${p}](${p})`), '');
  writeFileSync(join(outDir, 'report.md'), `${lines.join('\n')}\n`);
  writeFileSync(
    join(outDir, 'summary.json'),
    `${JSON.stringify({ args: Object.fromEntries(Object.entries(args).filter(([, v]) => v !== undefined)), chance, runs }, null, 2)}\n`,
  );
}
