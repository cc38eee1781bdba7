/**
 * Checkpoints: a directory holding
 * - `config.json` — {@link CheckpointConfig}: format tag and version, model family and its configuration,
 *   tokenizer, training settings;
 * - `model.safetensors` — the weights, all `F32`, with `__metadata__` `{format: 'strata', family}`;
 * - `optimizer.safetensors` (optional) — optimizer state (e.g. AdamW moments), all `F32`;
 * - `state.json` (optional) — run state (step, RNG, schedule, data position) for `--resume`.
 *
 * Writes replace the whole directory atomically ({@link replaceDirAtomic}); reads first repair what a crash
 * may have left ({@link recoverDir}) and validate everything, failing with `StrataError('E_CHECKPOINT')`
 * messages that name the file at fault.
 *
 * @module
 */
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { isStrataError, StrataError } from '../errors.js';
import { errnoCode, ioError, recoverDir, replaceDirAtomic } from './atomic.js';
import { decodeSafetensors, encodeSafetensors, type SafetensorsTensor } from './safetensors.js';

/** The `format` tag in every checkpoint's `config.json`. */
export const CHECKPOINT_FORMAT = 'strata-checkpoint';
/** The checkpoint format version this Strata writes, and the newest it reads. */
export const CHECKPOINT_FORMAT_VERSION = 1;

/** File names inside a checkpoint directory. */
export const CHECKPOINT_FILES = {
  /** Format, family, model config, tokenizer, training config (JSON). */
  config: 'config.json',
  /** The model weights (float32 safetensors). */
  model: 'model.safetensors',
  /** AdamW moments `m.<param>`, `v.<param>` (and `lr_scale.<param>`), when saved. */
  optimizer: 'optimizer.safetensors',
  /** Run state for resuming: step, timings, data fingerprint, backend. */
  state: 'state.json',
  /** A subword tokenizer in the Hugging Face format (absent for the byte tokenizers). */
  tokenizer: 'tokenizer.json',
} as const;

const FILE_NAMES: Record<string, true> = {
  'config.json': true,
  'model.safetensors': true,
  'optimizer.safetensors': true,
  'state.json': true,
};

/** Largest `config.json` a reader accepts (10 MB). */
export const MAX_CONFIG_BYTES = 10_000_000;
/** Largest `state.json` a reader accepts (64 MB). */
export const MAX_STATE_BYTES = 64_000_000;

/** The content of a checkpoint's `config.json`. Extra keys are kept as they are. */
export interface CheckpointConfig {
  /** Always {@link CHECKPOINT_FORMAT}. */
  format: 'strata-checkpoint';
  /** The format version that wrote the checkpoint (≤ {@link CHECKPOINT_FORMAT_VERSION} to be readable). */
  formatVersion: number;
  /** Model family name (e.g. `'gpt'`), as registered with the model-family registry. */
  family: string;
  /** Version of the family's weight layout and configuration schema. */
  familyVersion: string;
  /** The family's model configuration (sizes, strategies with name/version/options, ...). */
  model: Record<string, unknown>;
  /** Tokenizer description (kind, vocabulary size, ...). */
  tokenizer: Record<string, unknown>;
  /** Training settings of the run that wrote the checkpoint. */
  training?: Record<string, unknown>;
  /** Provenance: package names to versions, backend, and the like. */
  createdBy?: Record<string, string>;
  [k: string]: unknown;
}

/** A float32 tensor: `shape` (row-major, `[]` for a scalar) and its `product(shape)` elements. */
export interface TensorData {
  /** Dimensions, outermost first. */
  shape: number[];
  /** Values in row-major order (`shape` product of them). */
  data: Float32Array;
}

/** Everything a checkpoint holds. Weight names and layouts are defined by the model family. */
export interface CheckpointData {
  /** The contents of `config.json`. */
  config: CheckpointConfig;
  /** Model weights by name. */
  weights: Map<string, TensorData>;
  /** Optimizer state by name (absent when not saved, or not asked for when reading). */
  optimizer?: Map<string, TensorData>;
  /** Run state (JSON-serializable) for resuming. */
  state?: Record<string, unknown>;
  /**
   * Tokenizer files by name (`tokenizer.json`), written beside `config.json` in the same atomic replace;
   * read back when present.
   */
  tokenizerFiles?: Record<string, string>;
}

/** Options of {@link writeCheckpoint}. */
export interface WriteCheckpointOptions {
  /** Replace an existing checkpoint at `dir` (the CLI's `--force`; default `false`). */
  overwrite?: boolean;
}

/** Options of {@link readCheckpoint}. */
export interface ReadCheckpointOptions {
  /** Load `optimizer.safetensors` when present (default `true`; `false` for inference). */
  optimizer?: boolean;
}

function checkpointError(message: string, cause?: unknown): StrataError {
  return new StrataError('E_CHECKPOINT', message, cause === undefined ? undefined : { cause });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A short description of a value from an untrusted file, for an error message (never deep-serialized). */
function describeValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 37)}...` : v);
  if (v === undefined || v === null || typeof v === 'number' || typeof v === 'boolean')
    return String(v ?? null);
  return Array.isArray(v) ? 'an array' : 'an object';
}

function toSafetensors(tensors: ReadonlyMap<string, TensorData>): Map<string, SafetensorsTensor> {
  const out = new Map<string, SafetensorsTensor>();
  for (const [name, t] of tensors) out.set(name, { dtype: 'F32', shape: t.shape, data: t.data });
  return out;
}

/**
 * Writes a checkpoint directory atomically: a crash at any moment leaves either the previous checkpoint
 * or the new one at `dir`, never a partial one.
 *
 * @param dir the checkpoint directory (created, or replaced when `overwrite`).
 * @param data config, weights and optionally optimizer state and run state.
 * @throws StrataError `E_CHECKPOINT` when `data.config` lacks the format tag or the current format version,
 *   or a tensor's data does not match its shape; `E_IO` when `dir` exists without `overwrite`
 *   (`<dir> exists; pass overwrite: true (CLI: --force) to replace it`) or the disk fails.
 */
export async function writeCheckpoint(
  dir: string,
  data: CheckpointData,
  options: WriteCheckpointOptions = {},
): Promise<void> {
  const { config } = data;
  if (config.format !== CHECKPOINT_FORMAT || config.formatVersion !== CHECKPOINT_FORMAT_VERSION)
    throw checkpointError(
      `cannot write checkpoint ${dir}: its config needs format "${CHECKPOINT_FORMAT}" and formatVersion ${CHECKPOINT_FORMAT_VERSION}`,
    );
  // Encode before touching the disk, so invalid tensors fail fast and leave nothing behind.
  let model: Uint8Array;
  let optimizer: Uint8Array | undefined;
  try {
    model = encodeSafetensors(toSafetensors(data.weights), { format: 'strata', family: config.family });
    if (data.optimizer) optimizer = encodeSafetensors(toSafetensors(data.optimizer));
  } catch (err) {
    throw checkpointError(`cannot write checkpoint ${dir}: ${(err as Error).message}`, err);
  }
  await replaceDirAtomic(
    dir,
    async (tmp) => {
      await fsp.writeFile(join(tmp, CHECKPOINT_FILES.config), `${JSON.stringify(config, null, 2)}\n`);
      await fsp.writeFile(join(tmp, CHECKPOINT_FILES.model), model);
      if (optimizer) await fsp.writeFile(join(tmp, CHECKPOINT_FILES.optimizer), optimizer);
      if (data.state !== undefined)
        await fsp.writeFile(join(tmp, CHECKPOINT_FILES.state), `${JSON.stringify(data.state, null, 2)}\n`);
      for (const [name, text] of Object.entries(data.tokenizerFiles ?? {})) {
        if (name.includes('/') || name.includes('\\') || name.startsWith('.') || name in FILE_NAMES)
          throw checkpointError(
            `cannot write checkpoint ${dir}: invalid tokenizer file name ${JSON.stringify(name)}`,
          );
        await fsp.writeFile(join(tmp, name), text);
      }
    },
    { overwrite: options.overwrite ?? false },
  );
}

/** Reads a whole file of the checkpoint; `undefined` when it does not exist. At most `maxBytes` when given. */
async function readCheckpointFile(dir: string, name: string, maxBytes?: number): Promise<Buffer | undefined> {
  const file = join(dir, name);
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(file, 'r');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw ioError(err, 'read', file);
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw checkpointError(`${file} is not a regular file`);
    if (maxBytes !== undefined && st.size > maxBytes)
      throw checkpointError(`${file} is too large (${st.size} bytes; the limit is ${maxBytes})`);
    return await handle.readFile();
  } catch (err) {
    throw ioError(err, 'read', file);
  } finally {
    await handle.close();
  }
}

/** Parses a JSON object file (strict UTF-8). */
function parseJsonObject(bytes: Uint8Array, file: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw checkpointError(`${file} is not valid JSON: ${(err as Error).message}`, err);
  }
  if (!isPlainObject(value)) throw checkpointError(`${file} is not valid: expected a JSON object`);
  return value;
}

/** The type a field of a checkpoint JSON file must have, for {@link checkFields}. */
type FieldRule =
  | { type: 'string'; required?: boolean; nonEmpty?: boolean }
  | { type: 'object'; required?: boolean; values?: 'string' }
  | { type: 'integer' | 'number'; required?: boolean; min?: number; nullable?: boolean };

/** What a rule asks for, in words. */
function ruleWords(rule: FieldRule): string {
  if (rule.type === 'string') return rule.nonEmpty ? 'a non-empty string' : 'a string';
  if (rule.type === 'object') return rule.values === 'string' ? 'an object of strings' : 'an object';
  const what = rule.type === 'integer' ? 'an integer' : 'a finite number';
  return `${what}${rule.min !== undefined ? ` >= ${rule.min}` : ''}${rule.nullable ? ' (or null)' : ''}`;
}

function fieldOk(v: unknown, rule: FieldRule): boolean {
  switch (rule.type) {
    case 'string':
      return typeof v === 'string' && (!rule.nonEmpty || v !== '');
    case 'object':
      return (
        isPlainObject(v) && (rule.values !== 'string' || Object.values(v).every((x) => typeof x === 'string'))
      );
    default:
      if (v === null && rule.nullable) return true;
      return (
        typeof v === 'number' &&
        Number.isFinite(v) &&
        (rule.type === 'number' || Number.isInteger(v)) &&
        (rule.min === undefined || v >= rule.min)
      );
  }
}

/**
 * Checks the fields of a parsed checkpoint JSON file against a schema (`config.json` and `state.json` share
 * this): each rule's field must be present when `required` and of the rule's type when present; keys the
 * schema does not name are kept as they are.
 *
 * @throws StrataError `E_CHECKPOINT` `<file>: "<key>" must be <what>, got <value>`.
 */
function checkFields(raw: Record<string, unknown>, schema: Record<string, FieldRule>, file: string): void {
  for (const [key, rule] of Object.entries(schema)) {
    const v = raw[key];
    if (v === undefined && !rule.required) continue;
    if (!fieldOk(v, rule))
      throw checkpointError(`${file}: "${key}" must be ${ruleWords(rule)}, got ${describeValue(v)}`);
  }
}

/** Fields of `config.json` after `format` and `formatVersion`. */
const CONFIG_SCHEMA: Record<string, FieldRule> = {
  family: { type: 'string', required: true, nonEmpty: true },
  familyVersion: { type: 'string', required: true, nonEmpty: true },
  model: { type: 'object', required: true },
  tokenizer: { type: 'object', required: true },
  training: { type: 'object' },
  createdBy: { type: 'object', values: 'string' },
};

/**
 * Fields of `state.json` (the run state `--resume` continues from). All are optional in the file — a
 * checkpoint saved from code may hold only `optimizerStep` — and whatever is present must be well-typed.
 */
const STATE_SCHEMA: Readonly<Record<string, FieldRule>> = {
  step: { type: 'integer', min: 0 },
  trainSeconds: { type: 'number', min: 0 },
  skippedSteps: { type: 'integer', min: 0 },
  optimizerStep: { type: 'integer', min: 0 },
  lastValLoss: { type: 'number', nullable: true },
  dataFingerprint: { type: 'string' },
  backend: { type: 'string' },
  savedAt: { type: 'string' },
};

/** Validates a parsed `config.json`. */
function validateConfig(raw: Record<string, unknown>, file: string): CheckpointConfig {
  if (raw.format !== CHECKPOINT_FORMAT)
    throw checkpointError(
      `${file} is not a Strata checkpoint (its "format" is ${describeValue(raw.format)}, expected "${CHECKPOINT_FORMAT}")`,
    );
  const version = raw.formatVersion;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1)
    throw checkpointError(
      `${file}: "formatVersion" must be a positive integer, got ${describeValue(version)}`,
    );
  if (version > CHECKPOINT_FORMAT_VERSION)
    throw checkpointError(
      `${file} was written by a newer Strata (format version ${version}); this one reads version ${CHECKPOINT_FORMAT_VERSION} — upgrade @strata/cli`,
    );
  checkFields(raw, CONFIG_SCHEMA, file);
  return raw as CheckpointConfig;
}

/** Validates a parsed `state.json` ({@link STATE_SCHEMA}; `null` for `lastValLoss` means "none"). */
function validateState(raw: Record<string, unknown>, file: string): Record<string, unknown> {
  checkFields(raw, STATE_SCHEMA, file);
  if (typeof raw.optimizerStep === 'number' && typeof raw.step === 'number' && raw.optimizerStep > raw.step)
    throw checkpointError(
      `${file}: "optimizerStep" (${raw.optimizerStep}) cannot exceed "step" (${raw.step}): an update is applied at most once per step`,
    );
  if (raw.lastValLoss === null) {
    const { lastValLoss: _, ...rest } = raw;
    return rest;
  }
  return raw;
}

/** Decodes a safetensors file of the checkpoint whose tensors must all be `F32`. */
function decodeF32Tensors(
  bytes: Uint8Array,
  file: string,
  dir: string,
): {
  tensors: Map<string, TensorData>;
  metadata: Record<string, string>;
} {
  let decoded: ReturnType<typeof decodeSafetensors>;
  try {
    decoded = decodeSafetensors(bytes, file);
  } catch (err) {
    if (!isStrataError(err)) throw err;
    throw checkpointError(`checkpoint ${dir} is damaged: ${err.message}`, err);
  }
  const tensors = new Map<string, TensorData>();
  for (const [name, t] of decoded.tensors) {
    if (t.dtype !== 'F32')
      throw checkpointError(
        `${file}: tensor ${JSON.stringify(name)} is ${t.dtype}; Strata checkpoints store F32`,
      );
    tensors.set(name, { shape: t.shape, data: t.data as Float32Array });
  }
  return { tensors, metadata: decoded.metadata };
}

/**
 * Reads and validates a checkpoint directory (after {@link recoverDir} repairs an interrupted write).
 *
 * @param dir the checkpoint directory.
 * @param options `optimizer: false` skips the optimizer state.
 * @throws StrataError `E_CHECKPOINT` naming the file at fault: `dir` missing or not a directory, `config.json`
 *   missing, too large, not JSON, not a Strata checkpoint, or from a newer format version; `model.safetensors`
 *   missing, corrupt (the safetensors error is included) or holding non-F32 tensors or another family's
 *   weights; `optimizer.safetensors` corrupt; `state.json` invalid. `E_IO` when a file exists but cannot be
 *   read (permissions, ...).
 */
export async function readCheckpoint(
  dir: string,
  options: ReadCheckpointOptions = {},
): Promise<CheckpointData> {
  await recoverDir(dir);
  let st: Awaited<ReturnType<typeof fsp.stat>>;
  try {
    st = await fsp.stat(dir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT')
      throw checkpointError(`no checkpoint at ${dir}: the directory does not exist`);
    throw ioError(err, 'read', dir);
  }
  if (!st.isDirectory()) throw checkpointError(`no checkpoint at ${dir}: it is a file, not a directory`);

  const configFile = join(dir, CHECKPOINT_FILES.config);
  const configBytes = await readCheckpointFile(dir, CHECKPOINT_FILES.config, MAX_CONFIG_BYTES);
  if (!configBytes) throw checkpointError(`no checkpoint at ${dir}: ${CHECKPOINT_FILES.config} is missing`);
  const config = validateConfig(parseJsonObject(configBytes, configFile), configFile);

  const modelFile = join(dir, CHECKPOINT_FILES.model);
  const modelBytes = await readCheckpointFile(dir, CHECKPOINT_FILES.model);
  if (!modelBytes) throw checkpointError(`checkpoint ${dir} is incomplete: ${modelFile} is missing`);
  const model = decodeF32Tensors(modelBytes, modelFile, dir);
  const family = model.metadata.family;
  if (family !== undefined && family !== config.family)
    throw checkpointError(
      `${modelFile} holds weights of model family "${family}" but ${configFile} says "${config.family}"`,
    );
  const result: CheckpointData = { config, weights: model.tensors };

  if (options.optimizer !== false) {
    const optFile = join(dir, CHECKPOINT_FILES.optimizer);
    const optBytes = await readCheckpointFile(dir, CHECKPOINT_FILES.optimizer);
    if (optBytes) result.optimizer = decodeF32Tensors(optBytes, optFile, dir).tensors;
  }

  const stateFile = join(dir, CHECKPOINT_FILES.state);
  const stateBytes = await readCheckpointFile(dir, CHECKPOINT_FILES.state, MAX_STATE_BYTES);
  if (stateBytes) result.state = validateState(parseJsonObject(stateBytes, stateFile), stateFile);

  const tokFile =
    typeof config.tokenizer?.file === 'string' ? config.tokenizer.file : CHECKPOINT_FILES.tokenizer;
  if (!tokFile.includes('/') && !tokFile.includes('\\') && !tokFile.startsWith('.')) {
    const tokBytes = await readCheckpointFile(dir, tokFile, MAX_STATE_BYTES);
    if (tokBytes) result.tokenizerFiles = { [tokFile]: tokBytes.toString('utf8') };
  }
  return result;
}

/**
 * True when `dir` holds a Strata checkpoint: a directory whose `config.json` carries the checkpoint format
 * tag (after {@link recoverDir}). Never throws; the full validation is {@link readCheckpoint}'s.
 */
export async function isCheckpointDir(dir: string): Promise<boolean> {
  try {
    await recoverDir(dir);
    const bytes = await readCheckpointFile(dir, CHECKPOINT_FILES.config, MAX_CONFIG_BYTES);
    if (!bytes) return false;
    return parseJsonObject(bytes, join(dir, CHECKPOINT_FILES.config)).format === CHECKPOINT_FORMAT;
  } catch {
    return false;
  }
}
