import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import {
  type ActiveBackend,
  acquireDirLock,
  ByteTokenizer,
  dirEntriesExceptLock,
  generate,
  getModelFamily,
  type LanguageModel,
  type LoadedCheckpoint,
  learningRateAt,
  loadCheckpoint,
  parseTrainConfig,
  resolveTokenizer,
  StrataError,
  type Tokenizer,
  type TrainConfig,
} from '@strata/core';
import { explicitFlags, type ParsedArgs, UsageError } from '../args.js';
import { type InitFromRecord, planInitFrom } from '../init-from.js';
import { describePhase, parseLrScale, resumePhase } from '../phase.js';
import { progressIsJson } from '../progress.js';
import {
  checkDataFitsModel,
  checkTrainingMemory,
  createModelWithProgress,
  type DataSpec,
  dataSpecFromArg,
  datasetFor,
  describeData,
  locateData,
  modelConfigFromArgs,
  type RunResult,
  resolveCheckpointDir,
  runTraining,
  trainConfigFromArgs,
  trainerOptionsFromArgs,
} from '../run-training.js';
import { setupRuntime, workerSetup } from '../setup.js';
import { trainSpec } from '../specs.js';
import { STOP_EXIT_CODES } from '../stop.js';
import {
  type Arch,
  archModelConfig,
  describeTask,
  familyForArch,
  type TaskSpec,
  taskFromArgs,
  taskModelIds,
  taskTokenizerFor,
} from '../tasks.js';

export { describeData };

/**
 * `strata train`'s own defaults over the CLI's shared ones: the first run a user sees (`npm run train`), spent
 * so that its sample reads as English words after a few minutes on 2 cores. RoPE reaches a given loss on the
 * Brown corpus in far fewer steps than learned positions at this size.
 */
export const TRAIN_MODEL_DEFAULTS: Readonly<Record<string, unknown>> = { positions: 'rope' };
/** See {@link TRAIN_MODEL_DEFAULTS}: the step budget and schedule of the first run. */
export const TRAIN_DEFAULTS: Partial<TrainConfig> = {
  steps: 1000,
  lr: 3e-3,
  warmupSteps: 30,
  evalEvery: 100,
  checkpointEvery: 100,
};

/**
 * Data-parallel ranks when `--workers` is not given: both cores on the wasm/cpu backends when the step is big
 * enough (parameters × tokens per step ≥ 1e8, about 0.6 GFLOP) for the second worker to pay for its gradient
 * exchange. The native backends use every core by themselves.
 */
export function defaultWorkers(
  backend: string,
  parameters: number,
  tokensPerStep: number,
  cores = availableParallelism(),
): number {
  if ((backend !== 'wasm' && backend !== 'cpu') || cores < 2) return 1;
  return parameters * tokensPerStep >= 1e8 ? 2 : 1;
}

const SAMPLE_PROMPT = 'The ';
const SAMPLE_BYTES = 160;

/**
 * A short sample from the trained model (deterministic: seed 1), printed when training ends; not for the
 * synthetic Markov data, whose tokens are not bytes of text.
 */
async function printSample(
  model: LanguageModel,
  data: DataSpec,
  res: { diverged?: unknown; interrupted: boolean },
  json: boolean,
  tokenizer: Tokenizer = new ByteTokenizer(),
): Promise<void> {
  if (res.diverged || res.interrupted || data.kind === 'markov') return;
  if (tokenizer.vocabSize > model.config.vocabSize) return;
  const byte = tokenizer.kind === 'byte';
  const prompt = byte ? SAMPLE_PROMPT : SAMPLE_PROMPT.trim();
  const ids = await generate(model, Array.from(tokenizer.encode(prompt)), {
    maxTokens: byte ? SAMPLE_BYTES : SAMPLE_BYTES / 4,
    seed: 1,
  });
  const text = prompt + tokenizer.decode(ids);
  // stdout carries JSON lines whenever the progress does (not a terminal, or --json): one kind per stream.
  if (progressIsJson(json)) process.stdout.write(`${JSON.stringify({ event: 'sample', prompt, text })}\n`);
  else process.stdout.write(`sample:     ${text.replace(/\s+/g, ' ').trim()}\n`);
}

function workersFor(args: ParsedArgs, backend: ActiveBackend, model: LanguageModel, training: TrainConfig) {
  if (args.workers !== undefined) return args.workers as number;
  const n = defaultWorkers(backend.name, model.params.count(), training.batchSize * training.seqLen);
  return Math.min(n, training.batchSize);
}

/**
 * Flags `--resume` honours: settings that may change between phases of a run (the step budget, evaluation
 * and checkpoint cadence, the non-finite and loss-explosion policies, clipping, diagnostics) and runtime
 * options. Each maps to its training-config key (runtime options to `null`). Every other flag is refused on
 * resume, so none is ever ignored.
 */
export const RESUME_HONOURED: Readonly<Record<string, keyof TrainConfig | null>> = {
  steps: 'steps',
  'eval-every': 'evalEvery',
  'eval-batches': 'evalBatches',
  'checkpoint-every': 'checkpointEvery',
  'on-nonfinite': 'onNonFinite',
  'grad-clip': 'gradClip',
  diagnostics: 'diagnosticsEvery',
  'explode-factor': 'explodeFactor',
  'explode-patience': 'explodePatience',
  resume: null,
  'resume-schedule': null,
  phase: null,
  rewarm: null,
  lr: null,
  'min-lr': null,
  'lr-scale': null,
  data: null,
  'text-field': null,
  'text-column': null,
  backend: null,
  plugin: null,
  json: null,
  workers: null,
  recompute: null,
};

/** Training settings a checkpoint must record for `--resume` to continue the same trajectory. */
const RESUME_REQUIRED: readonly (keyof TrainConfig)[] = [
  'steps',
  'batchSize',
  'seqLen',
  'lr',
  'minLr',
  'warmupSteps',
  'decay',
  'seed',
  'valFraction',
];

/** The flags the user gave explicitly (defaults excluded, also for args built without the parser). */
function givenFlags(args: ParsedArgs): string[] {
  const explicit = explicitFlags(args);
  return trainSpec.options
    .map((o) => o.name)
    .filter((name) =>
      explicit
        ? explicit.has(name)
        : args[name] !== undefined && args[name] !== trainSpec.options.find((o) => o.name === name)?.default,
    );
}

/** `strata train`: train a new model, or continue a run with `--resume`. */
export async function run(args: ParsedArgs): Promise<number> {
  if (args.resume) return resume(args);
  if (args['resume-schedule'] !== undefined || args.phase !== undefined || args.rewarm !== undefined)
    throw new UsageError(
      '--phase, --rewarm and --resume-schedule set the schedule of a resumed run: give them with --resume',
    );
  if (args['keep-optimizer'] && !args['init-from'])
    throw new UsageError('--keep-optimizer applies to --init-from (a fine-tuning run)');
  const backend = await setupRuntime(args);
  // --init-from: model, weights and tokenizer from a checkpoint, training from the flags (see init-from.ts).
  const init = args['init-from'] !== undefined ? await planInitFrom(args) : undefined;
  const { family, raw, task, config, training, data, tokenizer } = init
    ? { ...init, raw: init.config }
    : planFreshRun(args, { firstRun: true });
  // The first-run defaults apply to the decoder-only language model (no --task); so do both cores and the sample.
  const firstRun = !task;
  const normName = (config as { norm?: { name?: string } }).norm?.name;
  const runDir = String(
    args.out ?? join('runs', `${family}${normName ? `-${normName}` : ''}-${timestamp()}`),
  );
  let lock: ReturnType<typeof acquireDirLock>;
  try {
    lock = acquireDirLock(runDir, { label: `--out ${runDir}` });
  } catch (e) {
    init?.model.dispose();
    throw e;
  }
  try {
    if (dirEntriesExceptLock(runDir).length > 0 && !args.force) {
      throw new StrataError(
        'E_IO',
        `--out ${runDir} already exists and is not empty; pass --force to overwrite it, or --resume ${runDir} to continue it`,
      );
    }
    const json = Boolean(args.json);
    const trainerOptions = trainerOptionsFromArgs(args, workerSetup);
    checkDataFitsModel(data, config.vocabSize);
    // Data first: a data error is the first (and only) thing the user sees (tasks build theirs in runTraining).
    const dataset = task ? undefined : await datasetFor(data, training, tokenizer);
    checkTrainingMemory(config, training, backend.name, trainerOptions);
    const model = init ? init.model : createModelWithProgress(family, raw, training.seed, json);
    try {
      const workers = firstRun
        ? workersFor(args, backend, model, training)
        : ((args.workers as number | undefined) ?? 1);
      const res = await runTraining({
        runDir,
        model,
        training,
        data,
        ...(dataset ? { dataset } : {}),
        backend,
        label: `${family}${normName ? `/${normName}` : ''}`,
        json,
        trainer: trainerOptionsFromArgs(args, workerSetup, workers),
        banner: [
          `backend ${backend.name} (${backend.pkg}${backend.device ? `, ${backend.device}` : ''})${workers > 1 ? `, ${workers} workers` : ''}; data ${task ? describeTask(task, describeData(data)) : describeData(data)}`,
          ...model.summary(),
        ],
        ...(task ? { task } : {}),
        ...(init
          ? {
              initFrom: init.record,
              notes: init.notes,
              ...(init.optimizer ? { optimizer: init.optimizer } : {}),
            }
          : {}),
        ...(tokenizer ? { tokenizer } : {}),
      });
      if (!task) await printSample(model, data, res, json, tokenizer);
      printPaths(res, json);
      return exitCode(res);
    } finally {
      model.dispose();
    }
  } finally {
    lock.release();
  }
}

/** `strata train --resume DIR`. */
async function resume(args: ParsedArgs): Promise<number> {
  return (await resumeRun(args, { sample: true })).code;
}

/**
 * `strata train --resume DIR` from code: continues the run (a grown checkpoint starts a new schedule phase) and
 * returns the exit code with the run's result (absent when nothing was trained). `sample: false` skips the
 * text sample at the end (a comparison's growth arm resumes this way).
 */
export async function resumeRun(
  args: ParsedArgs,
  options: { sample: boolean },
): Promise<{ code: number; result?: RunResult }> {
  const given = givenFlags(args);
  const refused = given.filter((k) => !(k in RESUME_HONOURED));
  if (refused.length) {
    throw new StrataError(
      'E_CONFIG',
      `--resume continues the saved configuration; drop ${refused.map((g) => `--${g}`).join(', ')} (use a new --out to train differently; --resume accepts ${Object.keys(
        RESUME_HONOURED,
      )
        .filter((k) => k !== 'resume')
        .map((k) => `--${k}`)
        .join(', ')})`,
    );
  }
  const backend = await setupRuntime(args);
  const path = String(args.resume);
  // Lock before looking inside: a run in progress may not have written its first checkpoint yet.
  if (!existsSync(path)) await resolveCheckpointDir(path, '--resume'); // repairs a crash, or says "no such directory"
  const guess = existsSync(join(path, 'config.json')) ? join(path, '..') : path;
  const lock = acquireDirLock(guess, { label: `--resume ${path}` });
  try {
    const { checkpointDir, runDir: foundRunDir } = await resolveCheckpointDir(path, '--resume');
    const runDir = foundRunDir ?? join(checkpointDir, '..');
    const json = Boolean(args.json);
    const loaded = await loadCheckpoint(checkpointDir, { optimizer: true });
    try {
      const plan = resumePlan(args, given, loaded, checkpointDir);
      const step = loaded.state!.step;
      if (step >= plan.training.steps) {
        process.stderr.write(
          `run already finished (${step}/${plan.training.steps} steps); pass --steps N to train longer\n`,
        );
        return { code: 0 };
      }
      const trainerOptions = trainerOptionsFromArgs(
        args,
        workerSetup,
        plan.task
          ? ((args.workers as number | undefined) ?? 1)
          : workersFor(args, backend, loaded.model, plan.training),
      );
      checkTrainingMemory(loaded.model.config, plan.training, backend.name, trainerOptions);
      const res = await runTraining({
        runDir,
        model: loaded.model,
        training: plan.training,
        data: plan.data,
        backend,
        label: `${loaded.model.family}${normOf(loaded.model.config) ? `/${normOf(loaded.model.config)}` : ''} (resumed at step ${step})`,
        json,
        resume: loaded,
        ...(plan.task ? { task: plan.task } : {}),
        trainer: trainerOptions,
        notes: plan.notes,
        ...(plan.phaseEvent ? { phaseEvent: plan.phaseEvent } : {}),
        ...(plan.initFrom ? { initFrom: plan.initFrom } : {}),
      });
      if (!plan.task && options.sample)
        await printSample(loaded.model, plan.data, res, json, loaded.tokenizer);
      printPaths(res, json);
      return { code: exitCode(res), result: res };
    } finally {
      loaded.model.dispose();
    }
  } finally {
    lock.release();
  }
}

/** What a resumed run trains with, and the lines that tell the user what changed. */
function resumePlan(
  args: ParsedArgs,
  given: string[],
  loaded: LoadedCheckpoint,
  checkpointDir: string,
): {
  training: TrainConfig;
  data: DataSpec;
  notes: string[];
  phaseEvent?: Record<string, unknown>;
  task?: TaskSpec;
  initFrom?: InitFromRecord;
} {
  const record = loaded.config.training as (Record<string, unknown> & { data?: DataSpec }) | undefined;
  const missing = [
    ...(record ? RESUME_REQUIRED.filter((k) => record[k] === undefined) : RESUME_REQUIRED),
    ...(record?.data === undefined ? ['data'] : []),
    ...(loaded.state?.step === undefined ? ['state.json "step"'] : []),
    ...(loaded.optimizer ? [] : ['optimizer.safetensors']),
  ];
  if (missing.length) {
    throw new StrataError(
      'E_CHECKPOINT',
      `--resume ${checkpointDir}: the checkpoint does not record ${missing.join(', ')}, which resuming needs to continue the same run (it was saved from code or exported, not by strata train); train a new run with --out, or save it with saveCheckpoint({ training: { ...trainConfig, data }, optimizer, state })`,
    );
  }
  const {
    data: savedData,
    task,
    initFrom,
    ...saved
  } = record as Record<string, unknown> & { data: DataSpec; task?: TaskSpec; initFrom?: InitFromRecord };
  const notes: string[] = [];
  const overrides: Record<string, unknown> = {};
  for (const flag of given) {
    const key = RESUME_HONOURED[flag];
    if (!key || args[flag] === undefined) continue;
    overrides[key] = args[flag];
    if (saved[key] !== args[flag] && key !== 'steps')
      notes.push(`resume: ${key} ${String(saved[key] ?? 'default')} → ${String(args[flag])}`);
  }
  // A new schedule phase (--phase new, or the first resume of a grown checkpoint) re-warms and decays to
  // --steps; otherwise the saved schedule continues, and a changed --steps keeps or stretches it.
  const phase = resumePhase(args, loaded.state as LoadedCheckpoint['state'] & { step: number }, saved);
  const savedSchedule = (saved.scheduleSteps as number | null | undefined) ?? (saved.steps as number);
  let scheduleSteps: number | null =
    saved.scheduleSteps === undefined ? null : (saved.scheduleSteps as number | null);
  const choice = args['resume-schedule'] as 'keep' | 'stretch' | undefined;
  const newSteps = overrides.steps as number | undefined;
  const budgetChanged = newSteps !== undefined && newSteps !== saved.steps;
  if (phase.event) {
    if (choice !== undefined)
      throw new StrataError(
        'E_CONFIG',
        '--resume-schedule applies to a continued schedule, not to --phase new',
      );
    scheduleSteps = null;
  } else if (budgetChanged) {
    scheduleSteps = choice === 'stretch' ? null : savedSchedule;
  } else if (choice !== undefined) {
    throw new StrataError(
      'E_CONFIG',
      '--resume-schedule only applies when --steps changes the step budget of the resumed run',
    );
  }
  const training = parseTrainConfig(
    { ...saved, ...phase.training, ...overrides, scheduleSteps },
    loaded.model.config.contextLength,
  );
  if (budgetChanged && !phase.event)
    notes.push(scheduleNote(training, saved.steps as number, savedSchedule, loaded.state!.step, choice));
  let data: DataSpec;
  if (args.data !== undefined) {
    data = dataSpecFromArg(args.data, training.seed, args);
    notes.push(
      `resume: data ${describeData(savedData)} → ${describeData(data)} (its fingerprint is checked)`,
    );
  } else {
    data = locateData(
      savedData,
      checkpointDir,
      'pass --data PATH to point the run at the moved data (it must be the same text)',
    );
  }
  const phaseEvent = phase.event
    ? { ...phase.event, steps: training.steps, note: describePhase(phase.event, training.steps) }
    : undefined;
  return {
    training,
    data,
    notes,
    ...(phaseEvent ? { phaseEvent } : {}),
    ...(task ? { task } : {}),
    ...(initFrom ? { initFrom } : {}),
  };
}

/** The line that states what happens to the learning rate when `--steps` changes on resume. */
function scheduleNote(
  t: TrainConfig,
  oldSteps: number,
  oldSchedule: number,
  step: number,
  choice: 'keep' | 'stretch' | undefined,
): string {
  const at = (total: number) =>
    learningRateAt(step, {
      lr: t.lr,
      minLr: t.minLr,
      warmupSteps: t.warmupSteps,
      totalSteps: total,
      decay: t.decay,
      phaseStart: t.phaseStart,
    }).toExponential(2);
  const kept = `kept (${t.decay} over ${oldSchedule} steps${t.steps > oldSchedule && t.decay === 'cosine' ? `, then constant at ${t.minLr.toExponential(2)}` : ''}): lr ${at(oldSchedule)} at step ${step + 1}`;
  const stretched = `stretched over ${t.steps} steps: lr ${at(t.steps)} at step ${step + 1}`;
  return choice === 'stretch'
    ? `resume: steps ${oldSteps} → ${t.steps}; learning-rate schedule ${stretched} (it would be ${at(oldSchedule)} if kept)`
    : `resume: steps ${oldSteps} → ${t.steps}; learning-rate schedule ${kept}${choice ? '' : ' — pass --resume-schedule stretch to stretch it'} (stretched: ${at(t.steps)})`;
}

/** The norm strategy's name in a model config, if it has one. */
function normOf(config: Readonly<Record<string, unknown>>): string | undefined {
  return (config as { norm?: { name?: string } }).norm?.name;
}

/** Exit code of a finished run: 0, 3 when diverged, 128 + signal when stopped. */
function exitCode(res: RunResult): number {
  if (res.interrupted) return STOP_EXIT_CODES[res.stopReason ?? 'SIGINT'];
  return res.diverged ? 3 : 0;
}

/**
 * Prints where the results are. With `--json` the summary line carries them; when stdout is not a terminal
 * it carries JSON progress lines, so the paths go to stderr and each stream holds one kind of output.
 */
function printPaths(res: RunResult, json: boolean): void {
  if (json) return;
  if (res.diverged) process.stderr.write(`error [E_DIVERGED]: ${res.diverged.message}\n`);
  const text =
    (res.checkpointWritten ? `checkpoint: ${res.checkpointDir}\n` : 'checkpoint: none written\n') +
    `metrics:    ${res.metricsPath}\nloss plot:  ${res.plotPath}\n` +
    (res.scalesPlotPath ? `scales:     ${res.scalesPlotPath}\n` : '');
  (progressIsJson(json) ? process.stderr : process.stdout).write(text);
}

function timestamp(): string {
  const d = new Date();
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/**
 * Everything a new run needs from its flags: the model family and config for `--arch`, the task, the training
 * config (with the family's defaults) and the data. `strata train` and every run of a `strata compare` grid
 * build their runs with it, so both read the flags the same way.
 */
export function planFreshRun(
  args: ParsedArgs,
  options: {
    /** Seed of a synthetic (`markov:`) language; default the run's seed. A comparison keeps one language for all seeds. */
    dataSeed?: number;
    /**
     * `strata train`'s first-run defaults ({@link TRAIN_MODEL_DEFAULTS}, {@link TRAIN_DEFAULTS}) for a
     * decoder-only model; without it the CLI's shared defaults apply (as in a comparison).
     */
    firstRun?: boolean;
  } = {},
): {
  family: string;
  raw: Record<string, unknown>;
  config: ReturnType<ReturnType<typeof getModelFamily>['parseConfig']>;
  task: TaskSpec | undefined;
  training: TrainConfig;
  data: DataSpec;
  /** The `--tokenizer` of the run (absent: byte, or byte-special for a task). */
  tokenizer?: Tokenizer;
} {
  const { arch, family } = familyForArch(args);
  const firstRun = options.firstRun === true && arch === 'decoder-only';
  const raw = archModelConfig(
    arch,
    args,
    modelConfigFromArgs({ ...args, model: family }, firstRun ? TRAIN_MODEL_DEFAULTS : {}).raw,
  );
  const task = taskFromArgs(arch, args);
  const tokenizer = tokenizerFromArgs(args, arch, task, raw);
  const fam = getModelFamily(family);
  const config = fam.parseConfig(raw);
  const training = trainConfigFromArgs(
    args,
    {
      ...(fam.trainingDefaults ?? {}),
      ...(args['lr-scale'] !== undefined ? { lrScaleSteps: parseLrScale(args['lr-scale']) } : {}),
    },
    config.contextLength,
    firstRun ? TRAIN_DEFAULTS : {},
  );
  if (arch === 'encoder-decoder' && training.seqLen !== config.contextLength)
    throw new UsageError(
      `--seq-len does not apply to --arch encoder-decoder: a training row is the source plus the target (${config.contextLength} tokens); set --source-length and --target-length`,
    );
  const data: DataSpec =
    task?.kind === 'pairs' || task?.kind === 'pos'
      ? { kind: 'brown' }
      : dataSpecFromArg(args.data, options.dataSeed ?? training.seed, args);
  if (task && data.kind === 'markov')
    throw new StrataError('E_CONFIG', `--task ${task.kind} needs text; synthetic markov data has none`);
  if (tokenizer && data.kind === 'markov')
    throw new UsageError('--tokenizer applies to text; synthetic markov data is already tokens');
  return { family, raw, config, task, training, data, ...(tokenizer ? { tokenizer } : {}) };
}

/**
 * The `--tokenizer` of a new run, setting the model's `vocabSize` to the tokenizer's unless it was given
 * (`--model-opt vocabSize=…` or `--config`), which must then be at least as large. For a task
 * (`--task mlm|span|pairs|pos`) the tokenizer must have the special tokens the task needs (GPT-2's gets them
 * appended, see {@link taskTokenizerFor}), and the model's `padId`/`bosId`/`eosId` follow it.
 */
function tokenizerFromArgs(
  args: ParsedArgs,
  arch: Arch,
  task: TaskSpec | undefined,
  raw: Record<string, unknown>,
): Tokenizer | undefined {
  if (args.tokenizer === undefined) return undefined;
  const given = resolveTokenizer(String(args.tokenizer));
  const tokenizer = task ? taskTokenizerFor(given, task.kind) : given;
  if (task)
    for (const [key, id] of Object.entries(taskModelIds(tokenizer, arch))) {
      if (raw[key] === undefined) raw[key] = id;
      else if (raw[key] !== id)
        throw new UsageError(
          `model.${key} ${String(raw[key])} is not the ${tokenizer.kind} tokenizer's ${key.replace(/Id$/, '')} (${String(id)}); drop it (it follows the tokenizer)`,
        );
    }
  if (raw.vocabSize === undefined) raw.vocabSize = tokenizer.vocabSize;
  else if (Number(raw.vocabSize) < tokenizer.vocabSize)
    throw new UsageError(
      `vocabSize ${String(raw.vocabSize)} is smaller than the ${tokenizer.kind} tokenizer's ${tokenizer.vocabSize} ids; drop it (it follows the tokenizer) or raise it`,
    );
  return tokenizer;
}
