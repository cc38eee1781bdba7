import { type Tokenizer, tokenizerFromJSON } from './data/tokenizer.js';
import { StrataError } from './errors.js';
import {
  CHECKPOINT_FORMAT,
  CHECKPOINT_FORMAT_VERSION,
  type CheckpointConfig,
  type CheckpointData,
  readCheckpoint,
  type TensorData,
  writeCheckpoint,
} from './io/index.js';
import type { AnyFamily, LanguageModel } from './model/family.js';
import { getModelFamily } from './model/registry.js';
import { getNorm } from './norm/registry.js';
import type { OptimizerState } from './train/adamw.js';
import type { Trainer, TrainState } from './train/trainer.js';

/** Version of @strata/core written into checkpoints. */
export const STRATA_VERSION = '0.1.0';

/** What {@link saveCheckpoint} writes besides the weights. */
export interface SaveCheckpointOptions {
  /** Tokenizer description (`tokenizer.toJSON()`). */
  tokenizer: Record<string, unknown>;
  /** The tokenizer's files (`tokenizer.files()`: `tokenizer.json` of a subword tokenizer), written beside config.json. */
  tokenizerFiles?: Record<string, string>;
  /** Training config and data source, recorded for `info` and `--resume`. */
  training?: Record<string, unknown>;
  /** Optimizer state (written to `optimizer.safetensors`). */
  optimizer?: OptimizerState;
  /**
   * Run state (written to `state.json`): a trainer's `state` as it is, or with extra JSON fields (the CLI adds
   * the data fingerprint and the backend). {@link Trainer} takes it back as `resume.state`.
   */
  state?: TrainState | (TrainState & Record<string, unknown>);
  /** Replace an existing checkpoint directory (default true: checkpoints of a run are replaced atomically). */
  overwrite?: boolean;
}

/**
 * Writes `model` (and optionally optimizer and run state) as a checkpoint directory, atomically:
 * `config.json`, `model.safetensors`, `optimizer.safetensors`, `state.json`, and `tokenizer.json` for a subword
 * tokenizer (`options.tokenizerFiles`).
 */
export async function saveCheckpoint(
  dir: string,
  model: LanguageModel,
  options: SaveCheckpointOptions,
): Promise<void> {
  const family = getModelFamily(model.family);
  const weights = new Map<string, TensorData>();
  const values = await model.params.read();
  for (const spec of model.params.specs())
    weights.set(spec.name, { shape: [...spec.shape], data: values.get(spec.name)! });
  const config: CheckpointConfig = {
    format: CHECKPOINT_FORMAT,
    formatVersion: CHECKPOINT_FORMAT_VERSION,
    family: model.family,
    familyVersion: family.version,
    model: { ...model.config },
    tokenizer: options.tokenizer,
    ...(options.training ? { training: options.training } : {}),
    createdBy: { '@strata/core': STRATA_VERSION },
  };
  const data: CheckpointData = { config, weights };
  if (options.tokenizerFiles && Object.keys(options.tokenizerFiles).length)
    data.tokenizerFiles = options.tokenizerFiles;
  if (options.optimizer) {
    data.optimizer = new Map(options.optimizer.tensors);
  }
  if (options.state || options.optimizer) {
    data.state = { ...(options.state ?? {}), optimizerStep: options.optimizer?.step ?? 0 };
  }
  await writeCheckpoint(dir, data, { overwrite: options.overwrite ?? true });
}

/** A loaded checkpoint: the model with its weights, plus whatever else was saved. */
export interface LoadedCheckpoint {
  /** The model, rebuilt from the config by its family and norm strategy, with the saved weights assigned. */
  model: LanguageModel;
  /** The checkpoint's `config.json`: format, family and its version, model config, tokenizer, training. */
  config: CheckpointConfig;
  /** The tokenizer `config.json` describes (an unknown kind fails the load, naming the valid ones). */
  tokenizer: Tokenizer;
  /** The AdamW state, when loaded with `{ optimizer: true }` and present (a training checkpoint). */
  optimizer?: OptimizerState;
  /** The run state (`state.json`: step, timings, ...), when present; pass it to a Trainer to resume. */
  state?: TrainState & Record<string, unknown>;
}

/**
 * Loads a checkpoint directory: resolves the model family and norm strategy by name (the error lists what is
 * registered when a plugin is missing), rebuilds the model and assigns the saved weights, and rebuilds the
 * tokenizer (an unknown tokenizer kind is an `E_CHECKPOINT` error, never silently replaced).
 */
export async function loadCheckpoint(
  dir: string,
  options: {
    /** Also load the AdamW state. */
    optimizer?: boolean;
    /**
     * Rebuild the model for another context length (evaluation at longer contexts): allowed for models without
     * a learned position table (RoPE or no positions), whose weights do not depend on it.
     */
    contextLength?: number;
  } = {},
): Promise<LoadedCheckpoint> {
  const data = await readCheckpoint(dir, { optimizer: options.optimizer ?? false });
  let tokenizer: Tokenizer;
  try {
    tokenizer = tokenizerFromJSON(data.config.tokenizer, data.tokenizerFiles ?? {});
  } catch (e) {
    throw new StrataError('E_CHECKPOINT', `${dir}/config.json: ${(e as Error).message}`, { cause: e });
  }
  const family = getModelFamily(data.config.family);
  if (String(data.config.familyVersion) !== family.version) {
    throw new StrataError(
      'E_CHECKPOINT',
      `${dir}: model family "${family.name}" layout version ${String(data.config.familyVersion)} differs from the installed version ${family.version}`,
    );
  }
  const norm = (data.config.model as { norm?: { name?: string; version?: string } }).norm;
  if (norm?.name) {
    const strategy = getNorm(norm.name);
    const major = (v: string | undefined) => String(v ?? '').split('.')[0];
    if (norm.version && major(norm.version) !== major(strategy.version)) {
      throw new StrataError(
        'E_CHECKPOINT',
        `${dir}: norm strategy "${norm.name}" was saved with version ${norm.version}, but version ${strategy.version} is registered (major versions differ)`,
      );
    }
  }
  let config: ReturnType<typeof family.parseConfig>;
  try {
    config = family.parseConfig(
      withContext(family, stripVersion(data.config.model), options.contextLength, dir),
    );
  } catch (e) {
    throw new StrataError('E_CHECKPOINT', `${dir}/config.json: ${(e as Error).message}`, { cause: e });
  }
  const model = family.create(config, { seed: 0 });
  try {
    const values = new Map<string, Float32Array>();
    for (const [name, t] of data.weights) values.set(name, t.data);
    model.params.assign(values, `${dir}/model.safetensors`);
  } catch (e) {
    model.dispose();
    throw e;
  }
  const out: LoadedCheckpoint = { model, config: data.config, tokenizer };
  if (data.state) out.state = data.state as TrainState & Record<string, unknown>;
  if (data.optimizer) {
    out.optimizer = {
      step: Number((data.state as { optimizerStep?: number } | undefined)?.optimizerStep ?? 0),
      tensors: data.optimizer,
    };
  }
  return out;
}

/** The model config with `contextLength` replaced (refused where a weight's shape depends on it). */
function withContext(
  family: AnyFamily,
  model: Record<string, unknown>,
  n: number | undefined,
  dir: string,
): Record<string, unknown> {
  if (n === undefined || n === model.contextLength) return model;
  if (!Number.isInteger(n) || n < 1)
    throw new StrataError('E_USAGE', `context length must be an integer >= 1, got ${JSON.stringify(n)}`);
  if ('sourceLength' in model)
    throw new StrataError(
      'E_USAGE',
      `${dir}: an encoder-decoder's lengths are sourceLength and targetLength; it cannot be evaluated at another context`,
    );
  if (family.contextFree && !family.contextFree(model))
    throw new StrataError(
      'E_USAGE',
      `${dir}: the ${family.name} model's weights depend on its context length (${String(model.contextLength)}); it cannot run at context ${n}`,
    );
  if (!family.contextFree && (model.positions === 'learned' || model.positions === undefined))
    throw new StrataError(
      'E_USAGE',
      `${dir}: the model has a learned position table of ${String(model.contextLength)} rows; only RoPE or position-free models can run at context ${n}`,
    );
  return { ...model, contextLength: n };
}

/** The saved norm selection carries the version; configs take `{ name, options }`. */
function stripVersion(model: Record<string, unknown>): Record<string, unknown> {
  const norm = model.norm as { name?: string; options?: unknown } | undefined;
  if (!norm || typeof norm !== 'object') return model;
  return { ...model, norm: { name: norm.name, options: norm.options ?? {} } };
}
