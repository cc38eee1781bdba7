/**
 * `strata train --init-from CKPT`: fine-tuning (nanoGPT's `init_from`). The model — family, config and
 * weights — comes from the checkpoint (native, grown or imported); the data, learning rate, schedule and step
 * budget come from the flags, as for a new run. The optimizer starts fresh unless `--keep-optimizer` carries
 * the checkpoint's Adam moments over. The run records where it started (`training.initFrom` in the
 * checkpoint's `config.json`, an `init` record in `metrics.jsonl`), and `strata train --resume` continues it
 * like any other run.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  getModelFamily,
  type LanguageModel,
  loadCheckpoint,
  type OptimizerState,
  StrataError,
  type Tokenizer,
  type TrainConfig,
} from '@strata/core';
import { explicitFlags, type ParsedArgs, UsageError } from './args.js';
import { type DataSpec, dataSpecFromArg, resolveCheckpointDir, trainConfigFromArgs } from './run-training.js';
import { ARCH_OPTIONS, MODEL_OPTIONS } from './specs.js';
import { type Arch, type TaskSpec, taskFromArgs } from './tasks.js';

/** Where a fine-tuning run started: recorded as `training.initFrom` and as the `init` metrics record. */
export interface InitFromRecord {
  /** Absolute path of the checkpoint the weights came from. */
  checkpoint: string;
  /** Its model family. */
  family: string;
  /** The step it was saved at (`null` for a checkpoint without run state, e.g. an imported one). */
  step: number | null;
  /** Whether the Adam moments were carried over (`--keep-optimizer`). */
  keptOptimizer: boolean;
  /** What it came from before (`imported`, `grown`, `trained`), from its run state. */
  origin: string;
  /** The source of an imported checkpoint (`hf-gpt2 /path`), or the checkpoint a grown one was grown from. */
  source?: string;
  /** Model config keys the run changed (only `dropout`). */
  overrides?: Record<string, unknown>;
}

/** Everything a fine-tuning run needs: the loaded model, the new training config and data, the record. */
export interface InitFromPlan {
  /** Model family of the checkpoint. */
  family: string;
  /** The model, with the checkpoint's weights (the caller disposes it). */
  model: LanguageModel;
  /** Its validated config. */
  config: Readonly<Record<string, unknown>>;
  /** Training config from the flags (new lr, schedule, steps, …). */
  training: TrainConfig;
  /** The data to fine-tune on (`--data`; the Brown corpus by default). */
  data: DataSpec;
  /** Task of an encoder-only / encoder-decoder checkpoint (`--task`, else the one it was trained with). */
  task: TaskSpec | undefined;
  /** The record of where the run started. */
  record: InitFromRecord;
  /** The checkpoint's tokenizer: the run encodes its data with it. */
  tokenizer: Tokenizer;
  /** Adam moments to start from (`--keep-optimizer`), without growth's per-entry LR multipliers. */
  optimizer?: OptimizerState;
  /** Lines that tell the user what was taken from where. */
  notes: string[];
}

/** Flags that would change the architecture: the checkpoint's config decides it (`--dropout` is allowed). */
const ARCH_FLAGS = [...MODEL_OPTIONS, ...ARCH_OPTIONS]
  .map((o) => o.name)
  .filter((n) => n !== 'dropout' && n !== 'config' && n !== 'task');

function archOf(family: string): Arch {
  if (family === 'encoder') return 'encoder-only';
  if (family === 'encdec') return 'encoder-decoder';
  return 'decoder-only';
}

/**
 * Plans a fine-tuning run from `--init-from`: refuses architecture flags (naming each one), loads the
 * checkpoint, applies `--dropout`, and builds the training config from the flags with the family's defaults.
 *
 * @throws UsageError naming every architecture flag given; StrataError `E_CHECKPOINT` for an unreadable
 *   checkpoint or `--keep-optimizer` on one without optimizer state.
 */
export async function planInitFrom(args: ParsedArgs): Promise<InitFromPlan> {
  const explicit = explicitFlags(args);
  const given = ARCH_FLAGS.filter((n) =>
    explicit
      ? explicit.has(n)
      : args[n] !== undefined && args[n] !== MODEL_OPTIONS.find((o) => o.name === n)?.default,
  );
  if (given.length)
    throw new UsageError(
      `--init-from takes the model (family, sizes, positions, norm strategy, …) from the checkpoint; drop ${given.map((g) => `--${g}`).join(', ')} (only --dropout may change)`,
    );
  if (args.tokenizer !== undefined)
    throw new UsageError(
      "--init-from uses the checkpoint's tokenizer (its ids are what the weights mean); drop --tokenizer",
    );
  if (args.config !== undefined) {
    let file: unknown;
    try {
      file = JSON.parse(readFileSync(String(args.config), 'utf8'));
    } catch {
      file = undefined; // trainConfigFromArgs reports an unreadable or invalid file
    }
    if (file && typeof file === 'object' && 'model' in file)
      throw new UsageError(
        `--init-from takes the model from the checkpoint; --config ${String(args.config)} has a "model" section (keep only "training")`,
      );
  }
  const { checkpointDir } = await resolveCheckpointDir(String(args['init-from']), '--init-from');
  const keep = args['keep-optimizer'] === true;
  const loaded = await loadCheckpoint(checkpointDir, { optimizer: keep });
  let model = loaded.model;
  try {
    if (keep && !loaded.optimizer)
      throw new StrataError(
        'E_CHECKPOINT',
        `--keep-optimizer: ${checkpointDir} has no optimizer state (optimizer.safetensors); drop --keep-optimizer to start Adam afresh`,
      );
    const family = model.family;
    const fam = getModelFamily(family);
    const overrides: Record<string, unknown> = {};
    if (args.dropout !== undefined && args.dropout !== model.config.dropout) {
      overrides.dropout = args.dropout;
      const values = await model.params.read();
      const again = fam.create(fam.parseConfig({ ...model.config, dropout: args.dropout }), { seed: 0 });
      try {
        again.params.assign(values, checkpointDir);
      } catch (e) {
        again.dispose();
        throw e;
      }
      model.dispose();
      model = again;
    }
    const config = model.config;
    const training = trainConfigFromArgs(args, fam.trainingDefaults ?? {}, config.contextLength as number);
    const savedTask = (loaded.config.training as { task?: TaskSpec } | undefined)?.task;
    const task = taskFromArgs(archOf(family), args) ?? savedTask;
    const data: DataSpec =
      task?.kind === 'pairs' || task?.kind === 'pos'
        ? { kind: 'brown' }
        : dataSpecFromArg(args.data, training.seed);
    const state = (loaded.state ?? {}) as Record<string, unknown>;
    const imported = state.importedFrom as { format?: string; path?: string } | undefined;
    const origin = imported
      ? 'imported'
      : state.grownFrom
        ? 'grown'
        : loaded.state
          ? 'trained'
          : 'weights only';
    const source = imported
      ? `${String(imported.format)} ${String(imported.path)}`
      : typeof state.grownFrom === 'string'
        ? state.grownFrom
        : undefined;
    const record: InitFromRecord = {
      checkpoint: resolve(checkpointDir),
      family,
      step: typeof state.step === 'number' ? state.step : null,
      keptOptimizer: keep,
      origin,
      ...(source ? { source } : {}),
      ...(Object.keys(overrides).length ? { overrides } : {}),
    };
    let optimizer: OptimizerState | undefined;
    if (keep && loaded.optimizer) {
      const tensors = new Map(
        [...loaded.optimizer.tensors].filter(([name]) => name.startsWith('m.') || name.startsWith('v.')),
      );
      optimizer = { step: loaded.optimizer.step, tensors };
    }
    const notes = [
      `init-from: ${origin} checkpoint ${checkpointDir}${record.step !== null ? ` (step ${record.step})` : ''}${source ? ` from ${source}` : ''}; ${keep ? `Adam moments kept (optimizer step ${optimizer?.step ?? 0})` : 'fresh optimizer state'}${overrides.dropout !== undefined ? `; dropout ${String(loaded.model.config.dropout)} → ${String(overrides.dropout)}` : ''}`,
    ];
    return {
      family,
      model,
      config,
      training,
      data,
      task,
      record,
      tokenizer: loaded.tokenizer,
      ...(optimizer ? { optimizer } : {}),
      notes,
    };
  } catch (e) {
    model.dispose(); // the loaded model, or its copy with the new dropout (the original is freed already)
    throw e;
  }
}
