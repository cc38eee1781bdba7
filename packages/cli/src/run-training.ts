import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import {
  type ActiveBackend,
  ByteTokenizer,
  evaluateTask,
  getModelFamily,
  isCheckpointDir,
  type LanguageModel,
  loadBrownCorpus,
  type loadCheckpoint,
  loadTextSource,
  MarkovDataset,
  MetricsWriter,
  parseKeyValues,
  parseTrainConfig,
  readMetrics,
  type StepMetrics,
  StrataError,
  saveCheckpoint,
  TextDataset,
  type TextSource,
  type TrainConfig,
  Trainer,
  type TrainerOptions,
} from '@strata/core';
import type { ParsedArgs } from './args.js';
import { UsageError } from './args.js';
import { type BandPoint, type BandSeries, bandChart, runLossChart, writePlot } from './plots.js';
import { formatDuration, Progress } from './progress.js';
import { type TaskSpec, taskSource, taskTokenizer } from './tasks.js';

/** Where the training text comes from; recorded in the checkpoint so `--resume` and `eval` can rebuild it. */
export type DataSpec =
  | { kind: 'brown' }
  | { kind: 'files'; path: string }
  | { kind: 'markov'; vocab: number; successors: number; seed: number };

/** Loads the text a {@link DataSpec} names (text sources only). */
export async function loadData(spec: DataSpec): Promise<TextSource> {
  if (spec.kind === 'markov') throw new StrataError('E_DATA', 'synthetic markov data has no text');
  return spec.kind === 'brown' ? loadBrownCorpus() : loadTextSource(spec.path);
}

/** Parses `--data`: a path, or `markov:VOCAB[:SUCCESSORS]` for the synthetic Markov language. */
export function dataSpecFromArg(arg: unknown, seed: number): DataSpec {
  if (arg === undefined) return { kind: 'brown' };
  const s = String(arg);
  const m = /^markov(?::(\d+))?(?::(\d+))?$/.exec(s);
  if (m) return { kind: 'markov', vocab: Number(m[1] ?? 32), successors: Number(m[2] ?? 2), seed };
  return { kind: 'files', path: s };
}

/** A batch source for a {@link DataSpec}: a tokenized text split, or the synthetic Markov language. */
export async function datasetFor(
  spec: DataSpec,
  training: TrainConfig,
): Promise<TextDataset | MarkovDataset> {
  if (spec.kind === 'markov')
    return new MarkovDataset({ vocab: spec.vocab, successors: spec.successors, seed: spec.seed });
  return new TextDataset(await loadData(spec), new ByteTokenizer(), {
    valFraction: training.valFraction,
    seed: training.seed,
  });
}

/** CLI defaults for the GPT family: small enough to train in a few minutes on 2 CPU cores. */
export const CLI_MODEL_DEFAULTS: Record<string, unknown> = {
  dModel: 128,
  nLayers: 4,
  nHeads: 4,
  contextLength: 64,
};
/** CLI training defaults (over core's TRAIN_DEFAULTS). */
export const CLI_TRAIN_DEFAULTS: Partial<TrainConfig> = {
  steps: 200,
  batchSize: 16,
  lr: 2e-3,
  warmupSteps: 30,
  evalEvery: 50,
  checkpointEvery: 50,
};

function coerceValue(v: string): unknown {
  if (v === 'true') return true;
  if (v === 'false') return false;
  if (v === 'null') return null;
  const n = Number(v);
  return v.trim() !== '' && Number.isFinite(n) ? n : v;
}

function readConfigFile(path: string | undefined): {
  model?: Record<string, unknown>;
  training?: Record<string, unknown>;
} {
  if (!path) return {};
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new StrataError('E_CONFIG', `--config ${path}: file not found or unreadable`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new StrataError('E_CONFIG', `--config ${path}: invalid JSON (${(e as Error).message})`);
  }
  if (!json || typeof json !== 'object' || Array.isArray(json))
    throw new StrataError('E_CONFIG', `--config ${path}: expected an object`);
  const obj = json as Record<string, unknown>;
  for (const k of Object.keys(obj)) {
    if (!['model', 'training', 'data'].includes(k)) {
      throw new StrataError(
        'E_CONFIG',
        `--config ${path}: unknown top-level key "${k}"; valid keys: "model", "training", "data"`,
      );
    }
  }
  return obj as { model?: Record<string, unknown>; training?: Record<string, unknown> };
}

/** Builds the raw model config from flags (over a config file, over the family's CLI defaults). */
export function modelConfigFromArgs(
  args: ParsedArgs,
  commandDefaults: Readonly<Record<string, unknown>> = {},
): { family: string; raw: Record<string, unknown> } {
  const file = readConfigFile(args.config as string | undefined);
  const family = String(args.model ?? 'gpt');
  const raw: Record<string, unknown> = {
    ...(family === 'gpt' ? { ...CLI_MODEL_DEFAULTS, ...commandDefaults } : { contextLength: 64 }),
    ...(file.model ?? {}),
  };
  const set = (flag: string, key: string) => {
    if (args[flag] !== undefined) raw[key] = args[flag];
  };
  set('d-model', 'dModel');
  set('layers', 'nLayers');
  set('heads', 'nHeads');
  set('d-ff', 'dFF');
  set('context', 'contextLength');
  set('activation', 'activation');
  set('positions', 'positions');
  set('norm-kind', 'normKind');
  set('dropout', 'dropout');
  set('bias', 'bias');
  if (args.untied) raw.tiedEmbeddings = false;
  if (args.norm !== undefined || args['norm-opt'] !== undefined) {
    const prev = (raw.norm ?? {}) as { name?: string; options?: Record<string, unknown> };
    const name =
      (args.norm as string | undefined) ?? (typeof prev === 'string' ? prev : prev.name) ?? 'pre-ln';
    const opts = parseKeyValues((args['norm-opt'] as string[] | undefined) ?? [], '--norm-opt');
    raw.norm = {
      name,
      options: { ...(typeof prev === 'object' && prev.name === name ? prev.options : {}), ...opts },
    };
  }
  for (const [k, v] of Object.entries(
    parseKeyValues((args['model-opt'] as string[] | undefined) ?? [], '--model-opt'),
  ))
    raw[k] = coerceValue(v);
  return { family, raw };
}

/**
 * Builds the training config from flags, over a config file, over the family's defaults, over the command's
 * own defaults (`commandDefaults`), over the CLI's shared defaults.
 */
export function trainConfigFromArgs(
  args: ParsedArgs,
  familyDefaults: Readonly<Record<string, unknown>> = {},
  contextLength?: number,
  commandDefaults: Partial<TrainConfig> = {},
): TrainConfig {
  const file = readConfigFile(args.config as string | undefined);
  const raw: Record<string, unknown> = {
    ...CLI_TRAIN_DEFAULTS,
    ...commandDefaults,
    ...familyDefaults,
    ...(file.training ?? {}),
  };
  const set = (flag: string, key: keyof TrainConfig) => {
    if (args[flag] !== undefined) raw[key] = args[flag];
  };
  set('steps', 'steps');
  set('batch-size', 'batchSize');
  set('seq-len', 'seqLen');
  set('lr', 'lr');
  set('min-lr', 'minLr');
  set('warmup', 'warmupSteps');
  set('schedule', 'decay');
  set('weight-decay', 'weightDecay');
  set('beta1', 'beta1');
  set('beta2', 'beta2');
  set('eps', 'eps');
  set('grad-accum', 'gradAccum');
  set('grad-clip', 'gradClip');
  set('seed', 'seed');
  set('eval-every', 'evalEvery');
  set('eval-batches', 'evalBatches');
  set('checkpoint-every', 'checkpointEvery');
  set('on-nonfinite', 'onNonFinite');
  set('diagnostics', 'diagnosticsEvery');
  set('val-fraction', 'valFraction');
  if (raw.seqLen === undefined && contextLength !== undefined) raw.seqLen = contextLength;
  if (args['min-lr'] === undefined && file.training?.minLr === undefined) {
    // No floor from the user: the family's schedule shape holds (its floor as a fraction of its own lr, so
    // nGPT keeps decaying to 0 under any --lr); families without one decay to lr/10.
    const famLr = familyDefaults.lr;
    const famMin = familyDefaults.minLr;
    raw.minLr =
      typeof famMin === 'number'
        ? typeof famLr === 'number' && famLr > 0
          ? famMin * ((raw.lr as number) / famLr)
          : famMin
        : (raw.lr as number) / 10;
  }
  if (
    raw.warmupSteps !== undefined &&
    raw.steps !== undefined &&
    (raw.warmupSteps as number) > (raw.steps as number)
  ) {
    raw.warmupSteps = raw.steps;
  }
  return parseTrainConfig(raw, contextLength);
}

/** What a finished (or stopped) run reports. */
export interface RunResult {
  runDir: string;
  checkpointDir: string;
  metricsPath: string;
  plotPath: string;
  /** `scales.svg`, when the model reports scaling values (nGPT). */
  scalesPlotPath?: string;
  steps: number;
  finalTrainLoss: number;
  finalValLoss?: number;
  diverged?: { step: number; message: string };
  interrupted: boolean;
  trainSeconds: number;
  msPerStep: number;
  tokensPerSec: number;
}

/** Everything a run needs. */
export interface RunSetup {
  runDir: string;
  model: LanguageModel;
  training: TrainConfig;
  data: DataSpec;
  backend: ActiveBackend;
  label: string;
  json: boolean;
  resume?: Awaited<ReturnType<typeof loadCheckpoint>>;
  /** Stop (saving a checkpoint) when this returns true; checked after every step. */
  shouldStop?: () => boolean;
  /** Print the one-line summary at the end (default true). */
  quiet?: boolean;
  /** Speed/memory options (`--workers`, `--recompute`). */
  trainer?: TrainerOptions;
  /**
   * A new schedule phase starts at the resumed step (after growth): this record (`event: 'phase'`, `step`,
   * `phaseStart`, `warmupSteps`, `lrScaleSteps`, and a `note` for the log) goes to the metrics first.
   */
  phaseEvent?: Record<string, unknown>;
  /** Encoder-only / encoder-decoder task (masked-LM, span corruption, POS, pairs); absent: next-token. */
  task?: TaskSpec;
}

/** Layout of a run directory. */
export function runPaths(runDir: string) {
  return {
    checkpoint: join(runDir, 'checkpoint'),
    metrics: join(runDir, 'metrics.jsonl'),
    plot: join(runDir, 'loss.svg'),
    scales: join(runDir, 'scales.svg'),
  };
}

/** One line describing the schedule and optimizer a run uses (printed at start and by `strata info`). */
export function describeSchedule(t: TrainConfig): string {
  const g = (x: number) => String(Number(x.toPrecision(4)));
  const accum = t.gradAccum ?? 1;
  return (
    `lr ${g(t.lr)} → ${g(t.decay === 'constant' ? t.lr : t.minLr)} (${t.decay} over ${t.steps} steps, warmup ${t.warmupSteps}); ` +
    `AdamW β₁ ${g(t.beta1)}, β₂ ${g(t.beta2)}, ε ${g(t.eps)}, weight decay ${g(t.weightDecay)}, clip ${g(t.gradClip)}; ` +
    `${t.batchSize}${accum > 1 ? ` × ${accum} micro-batches` : ''} × ${t.seqLen} tokens per step`
  );
}

/**
 * Draws the effective scaling values a run logged (`scales` in its metrics): per kind, the mean as a line and
 * the min–max range as a band (`scales.svg`, with its data and Vega-Lite spec beside it). Returns false (and
 * writes nothing) when the metrics have none.
 */
export async function writeScalesPlot(
  metricsPath: string,
  plotPath: string,
  title: string,
): Promise<boolean> {
  const kinds = new Map<string, BandPoint[]>();
  for (const r of readMetrics(metricsPath)) {
    const sc = r.scales as
      | Record<string, { mean: number; min: number; max: number; count: number }>
      | undefined;
    if (typeof r.step !== 'number' || !sc || typeof sc !== 'object') continue;
    for (const [k, v] of Object.entries(sc)) {
      const points = kinds.get(k) ?? [];
      points.push({ x: r.step, mean: v.mean, lo: v.min, hi: v.max, n: v.count });
      kinds.set(k, points);
    }
  }
  if (kinds.size === 0) return false;
  const series: BandSeries[] = [...kinds].map(([label, points]) => ({ label, points }));
  const positive = series.every((s) => s.points.every((p) => p.lo > 0));
  await writePlot(
    dirname(plotPath),
    basename(plotPath, '.svg'),
    bandChart(series, {
      title,
      subtitle: 'mean over all layers (line) and min–max (band)',
      xLabel: 'step',
      yLabel: positive ? 'effective value (log scale)' : 'effective value',
      ...(positive ? { logY: true } : {}),
    }),
  );
  return true;
}

/** Finds the checkpoint directory for a path that is either a run directory or a checkpoint directory. */
export async function resolveCheckpointDir(
  path: string,
  flag = '--checkpoint',
): Promise<{ checkpointDir: string; runDir?: string }> {
  if (!path) throw new UsageError(`${flag} DIR is required`);
  if (!existsSync(path)) throw new StrataError('E_CHECKPOINT', `${flag} ${path}: no such directory`);
  if (await isCheckpointDir(path)) {
    const parent = dirname(resolve(path));
    return { checkpointDir: path, ...(basename(resolve(path)) === 'checkpoint' ? { runDir: parent } : {}) };
  }
  const inner = join(path, 'checkpoint');
  if (existsSync(inner)) return { checkpointDir: inner, runDir: path };
  throw new StrataError(
    'E_CHECKPOINT',
    `${flag} ${path}: neither a checkpoint directory (config.json + model.safetensors) nor a run directory containing checkpoint/`,
  );
}

/**
 * Writes the loss plot of a run from its metrics file (`loss.svg`, with its data `loss.csv` and Vega-Lite spec
 * `loss.vl.json` beside it).
 */
export async function writeLossPlot(
  metricsPath: string,
  plotPath: string,
  title: string,
  vocabSize?: number,
): Promise<void> {
  const rows = readMetrics(metricsPath);
  const train: [number, number][] = [];
  const val: [number, number][] = [];
  const phases: number[] = [];
  for (const r of rows) {
    if (typeof r.step !== 'number') continue;
    if (r.event === 'phase' && r.step > 0) phases.push(r.step);
    if (typeof r.loss === 'number') train.push([r.step, r.loss]);
    if (typeof r.valLoss === 'number') val.push([r.step, r.valLoss]);
  }
  await writePlot(
    dirname(plotPath),
    basename(plotPath, '.svg'),
    runLossChart({ train, val, phases, ...(vocabSize ? { vocabSize } : {}) }, { title }),
  );
}

/**
 * Runs (or resumes) training with a progress display, periodic evaluation, atomic checkpoints and a metrics
 * file; on SIGINT/SIGTERM it finishes the current step, writes a checkpoint, and returns `interrupted`.
 */
export async function runTraining(setup: RunSetup): Promise<RunResult> {
  const { model, training, runDir } = setup;
  const paths = runPaths(runDir);
  mkdirSync(runDir, { recursive: true });
  const tokenizer = setup.task ? taskTokenizer() : new ByteTokenizer();
  if (setup.data.kind === 'markov' && model.config.vocabSize < setup.data.vocab) {
    throw new StrataError(
      'E_CONFIG',
      `model.vocabSize (${model.config.vocabSize}) is smaller than the markov vocabulary (${setup.data.vocab}); pass --model-opt vocabSize=${setup.data.vocab}`,
    );
  }
  const dataset = setup.task
    ? await taskSource(setup.task, setup.data, model.config, training)
    : await datasetFor(setup.data, training);
  const fingerprint = dataset.datasetFingerprint();
  const savedFingerprint = setup.resume?.state?.dataFingerprint;
  if (savedFingerprint !== undefined && savedFingerprint !== fingerprint) {
    throw new StrataError(
      'E_DATA',
      `cannot resume: the training data changed since the checkpoint was written (fingerprint ${String(savedFingerprint)} → ${fingerprint})`,
    );
  }
  const trainer = new Trainer(
    model,
    dataset,
    training,
    {
      ...(setup.resume?.optimizer ? { optimizer: setup.resume.optimizer } : {}),
      ...(setup.resume?.state
        ? {
            state: {
              step: setup.resume.state.step,
              trainSeconds: setup.resume.state.trainSeconds ?? 0,
              skippedSteps: setup.resume.state.skippedSteps ?? 0,
              ...(setup.resume.state.lastValLoss !== undefined
                ? { lastValLoss: setup.resume.state.lastValLoss }
                : {}),
            },
          }
        : {}),
    },
    setup.trainer ?? {},
  );
  const startStep = trainer.state.step;
  const metrics = await MetricsWriter.open(paths.metrics, startStep > 0 ? { resumeFromStep: startStep } : {});
  const progress = new Progress(setup.label, { json: setup.json });
  if (setup.phaseEvent) {
    const { note, ...phase } = setup.phaseEvent;
    // once per boundary (a run stopped before its first step of the phase resumes with the same record)
    if (!readMetrics(paths.metrics).some((r) => r.event === 'phase' && r.step === phase.step))
      metrics.write(phase);
    if (typeof note === 'string') progress.log(note);
  }
  // The schedule this (re)start uses, as a record without `step` (readers of step records skip it).
  const {
    steps,
    lr,
    minLr,
    warmupSteps,
    decay,
    beta1,
    beta2,
    eps,
    weightDecay,
    gradClip,
    batchSize,
    seqLen,
  } = training;
  metrics.write({
    event: 'schedule',
    fromStep: startStep,
    ...{ steps, lr, minLr, warmupSteps, decay, beta1, beta2, eps, weightDecay, gradClip },
    ...{ batchSize, gradAccum: training.gradAccum ?? 1, seqLen },
    backend: setup.backend.name,
  });
  progress.log(`schedule: ${describeSchedule(training)}`);
  const trainingRecord = { ...training, data: setup.data, ...(setup.task ? { task: setup.task } : {}) };
  // Task metrics (masked-LM accuracy; seq2seq token accuracy and exact match) at every evaluation.
  const taskMetrics = async (): Promise<Record<string, number>> => {
    if (!setup.task) return {};
    const batches = dataset.valBatches(training.batchSize, training.seqLen, training.evalBatches);
    const m = await evaluateTask(model, batches, training.batchSize);
    return {
      valAccuracy: m.accuracy,
      ...(m.exactMatch !== undefined ? { valExactMatch: m.exactMatch } : {}),
    };
  };
  let stopSignal: string | undefined;
  const onSignal = (sig: string) => {
    if (stopSignal) {
      progress.log(`${sig} again: exiting without a checkpoint`);
      process.exit(130);
    }
    stopSignal = sig;
    progress.log(
      `${sig}: finishing step ${trainer.state.step + 1}, then writing a checkpoint (press again to abort)`,
    );
  };
  const sigint = () => onSignal('SIGINT');
  const sigterm = () => onSignal('SIGTERM');
  process.on('SIGINT', sigint);
  process.on('SIGTERM', sigterm);
  const save = async () => {
    await saveCheckpoint(paths.checkpoint, model, {
      tokenizer: tokenizer.toJSON(),
      training: trainingRecord,
      optimizer: await trainer.optimizer.exportState(),
      state: {
        ...trainer.state,
        dataFingerprint: fingerprint,
        backend: setup.backend.name,
        savedAt: new Date().toISOString(),
      },
    });
  };
  let last: StepMetrics | undefined;
  let diverged: RunResult['diverged'];
  let lastSavedStep = startStep;
  const t0 = performance.now();
  let stepsRun = 0;
  try {
    if (startStep === 0 && training.steps > 0) {
      const ev = await trainer.evaluate();
      metrics.write({
        step: 0,
        valLoss: ev.loss,
        valPerplexity: ev.perplexity,
        ...(await taskMetrics()),
        backend: setup.backend.name,
      });
      progress.log(
        `step 0: validation loss ${ev.loss.toFixed(4)} (uniform would be ${Math.log(model.config.vocabSize).toFixed(4)})`,
      );
    }
    while (trainer.state.step < training.steps) {
      try {
        last = await trainer.step();
      } catch (e) {
        if ((e as { code?: string }).code === 'E_DIVERGED') {
          diverged = { step: trainer.state.step + 1, message: (e as Error).message };
          metrics.write({ step: trainer.state.step + 1, diverged: true, message: (e as Error).message });
          break;
        }
        throw e;
      }
      stepsRun++;
      // Let the event loop run (signals, stdout) — a wasm step resolves entirely in microtasks.
      await new Promise<void>((r) => setImmediate(r));
      const s = last.step;
      const record: Record<string, unknown> = {
        step: s,
        loss: last.loss,
        lr: last.lr,
        gradNorm: last.gradNorm,
        ms: Math.round(last.ms * 10) / 10,
        tokensPerSec: Math.round(last.tokensPerSec),
        numTensors: last.numTensors,
        backend: setup.backend.name,
      };
      if (last.skipped) record.skipped = true;
      const scales = await model.scaleSummary?.();
      if (scales) record.scales = scales;
      if (last.diagnostics) record.diagnostics = last.diagnostics;
      const evalNow = (training.evalEvery > 0 && s % training.evalEvery === 0) || s === training.steps;
      if (evalNow) {
        const ev = await trainer.evaluate();
        record.valLoss = ev.loss;
        record.valPerplexity = ev.perplexity;
        Object.assign(record, await taskMetrics());
      }
      metrics.write(record);
      progress.update({
        step: s,
        total: training.steps,
        loss: last.loss,
        tokensPerSec: last.tokensPerSec,
        extra: { lr: last.lr, ...(record.valLoss !== undefined ? { valLoss: record.valLoss } : {}) },
      });
      if (evalNow)
        progress.log(
          `step ${s}: train loss ${last.loss.toFixed(4)}, validation loss ${(record.valLoss as number).toFixed(4)}`,
        );
      const stop = stopSignal !== undefined || setup.shouldStop?.() === true;
      if (
        (training.checkpointEvery > 0 && s % training.checkpointEvery === 0) ||
        s === training.steps ||
        stop
      ) {
        await save();
        lastSavedStep = s;
      }
      if (stop) break;
    }
  } finally {
    process.off('SIGINT', sigint);
    process.off('SIGTERM', sigterm);
    progress.done();
    metrics.close();
  }
  if (diverged) {
    diverged.message +=
      lastSavedStep > 0
        ? `; the last good checkpoint (step ${lastSavedStep}) is ${paths.checkpoint}`
        : '; no checkpoint was written';
  }
  await writeLossPlot(paths.metrics, paths.plot, `${setup.label}: loss`, model.config.vocabSize);
  const scalesPlot = await writeScalesPlot(
    paths.metrics,
    paths.scales,
    `${setup.label}: effective scaling values`,
  );
  const seconds = (performance.now() - t0) / 1000;
  await trainer.close?.();
  trainer.dispose();
  const result: RunResult = {
    runDir,
    checkpointDir: paths.checkpoint,
    metricsPath: paths.metrics,
    plotPath: paths.plot,
    ...(scalesPlot ? { scalesPlotPath: paths.scales } : {}),
    steps: trainer.state.step,
    finalTrainLoss: last?.loss ?? Number.NaN,
    ...(trainer.state.lastValLoss !== undefined ? { finalValLoss: trainer.state.lastValLoss } : {}),
    ...(diverged ? { diverged } : {}),
    interrupted: stopSignal !== undefined,
    trainSeconds: trainer.state.trainSeconds,
    msPerStep: stepsRun ? (trainer.state.trainSeconds * 1000) / Math.max(1, trainer.state.step) : 0,
    tokensPerSec: stepsRun
      ? (trainer.tokensPerStep * trainer.state.step) / Math.max(1e-9, trainer.state.trainSeconds)
      : 0,
  };
  if (!setup.quiet) {
    progress.log(
      `${result.interrupted ? 'interrupted' : diverged ? 'diverged' : 'done'}: ${result.steps} steps in ${formatDuration(seconds)}` +
        (result.finalValLoss !== undefined ? `, validation loss ${result.finalValLoss.toFixed(4)}` : ''),
      { event: 'summary', ...result },
    );
  }
  return result;
}

/** Creates a fresh model for `family` from a raw config. */
export function createModel(family: string, raw: Record<string, unknown>, seed: number): LanguageModel {
  const fam = getModelFamily(family);
  return fam.create(fam.parseConfig(raw), { seed });
}

/** Trainer speed/memory options from `--workers` and `--recompute`. */
export function trainerOptionsFromArgs(
  args: ParsedArgs,
  workerSetupModules: () => NonNullable<TrainerOptions['workerSetup']>,
  defaultWorkers = 1,
): TrainerOptions {
  const workers = (args.workers as number | undefined) ?? defaultWorkers;
  return {
    ...(workers > 1 ? { workers, workerSetup: workerSetupModules() } : {}),
    ...(args.recompute ? { recompute: true } : {}),
  };
}
