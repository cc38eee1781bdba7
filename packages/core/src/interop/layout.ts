/**
 * Tensor-by-tensor layouts between Strata's parameters and another framework's state dict, and the generic
 * export/import that applies one. A layout is a list of {@link TensorMapping} rows: each says which block of
 * a Strata parameter an external tensor (or part of one) holds, whether it is transposed (`nn.Linear` stores
 * `[out, in]`, Strata `[in, out]`) and by which constant it is multiplied. The Llama, torchscale and nGPT
 * formats are all such lists; see the interop guide for each table.
 *
 * @module
 */
import { join } from 'node:path';
import { StrataError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { encodeSafetensors, type SafetensorsTensor } from '../io/safetensors.js';
import type { LanguageModel } from '../model/family.js';
import { getModelFamily } from '../model/registry.js';
import {
  exists,
  HF_CONFIG_FILE,
  HF_WEIGHTS_FILE,
  readHFWeights,
  readJsonObject,
  stripNormVersion,
  toFloat32,
} from './hf-gpt2.js';

/**
 * One row of a layout: the external tensor `name` (or its first-axis range `[at, at + n)`) holds a block of
 * the Strata parameter `strata`, optionally transposed and multiplied by `scale`.
 */
export interface TensorMapping {
  /** Name in the external state dict / safetensors file. */
  name: string;
  /** Full shape of the external tensor. */
  shape: number[];
  /** Strata parameter name. */
  strata: string;
  /** Full shape of the Strata parameter. */
  strataShape: number[];
  /** Block of the Strata parameter along its last axis, `[start, end)` (default: all of it). */
  cols?: [number, number];
  /** The external block is the transpose of the Strata block (2-D only). */
  transpose?: boolean;
  /** First index along the external tensor's first axis where the block goes (default 0). */
  at?: number;
  /** External value = Strata value × `scale` (default 1). */
  scale?: number;
  /** Written on export but not read on import (a tied copy, e.g. an output projection equal to the embedding). */
  alias?: boolean;
}

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function fmt(s: readonly number[]): string {
  return `[${s.join(', ')}]`;
}

/** Rows R and columns C of the Strata tensor (a vector is one row), the block's first column and width, the scale. */
function geometry(row: TensorMapping) {
  const two = row.strataShape.length === 2;
  const R = two ? row.strataShape[0]! : 1;
  const C = two ? row.strataShape[1]! : row.strataShape[0]!;
  const [c0, c1] = row.cols ?? [0, C];
  return { two, R, C, c0, w: c1 - c0, s: row.scale ?? 1 };
}

/** The Strata block of a row as a row-major `[rows, cols]` matrix in the external orientation. */
function extBlock(row: TensorMapping, value: Float32Array): { data: Float32Array; rows: number } {
  const { two, R, C, c0, w, s } = geometry(row);
  const out = new Float32Array(R * w);
  if (row.transpose) {
    for (let r = 0; r < R; r++) for (let c = 0; c < w; c++) out[c * R + r] = value[r * C + c0 + c]! * s;
    return { data: out, rows: w };
  }
  for (let r = 0; r < R; r++) for (let c = 0; c < w; c++) out[r * w + c] = value[r * C + c0 + c]! * s;
  return { data: out, rows: two ? R : w };
}

/** Row width (elements per first-axis index) of an external tensor. */
function rowWidth(shape: readonly number[]): number {
  return shape.length <= 1 ? 1 : size(shape.slice(1));
}

/**
 * Applies a layout to Strata parameter values: the external tensors (float32), each written once, with
 * unmapped ranges left at zero (torchscale's two unused position rows).
 *
 * @throws StrataError `E_CONFIG` when a parameter is missing or has another shape than the layout says.
 */
export function toExternalTensors(
  layout: readonly TensorMapping[],
  values: ReadonlyMap<string, Float32Array>,
  what: string,
): Map<string, SafetensorsTensor> {
  const out = new Map<string, SafetensorsTensor>();
  for (const row of layout) {
    const v = values.get(row.strata);
    if (!v) throw new StrataError('E_CONFIG', `${what}: the model has no parameter ${row.strata}`);
    if (v.length !== size(row.strataShape))
      throw new StrataError(
        'E_CONFIG',
        `${what}: parameter ${row.strata} has ${v.length} values, expected ${fmt(row.strataShape)}`,
      );
    let t = out.get(row.name);
    if (!t) {
      t = { dtype: 'F32', shape: row.shape, data: new Float32Array(size(row.shape)) };
      out.set(row.name, t);
    }
    const { data } = extBlock(row, v);
    (t.data as Float32Array).set(data, (row.at ?? 0) * rowWidth(row.shape));
  }
  return out;
}

/**
 * Inverts a layout: Strata parameter values from external tensors. Every non-alias row's tensor must be
 * present with its documented shape; external tensors no row names are reported by the caller.
 *
 * @returns the values and the set of external names that were read.
 * @throws StrataError `E_CHECKPOINT` naming the missing tensors, or a tensor with the wrong shape.
 */
export function fromExternalTensors(
  layout: readonly TensorMapping[],
  tensors: ReadonlyMap<string, SafetensorsTensor>,
  source: string,
): ExternalValues {
  const values = new Map<string, Float32Array>();
  const used = new Set<string>();
  const missing = [...new Set(layout.filter((r) => !r.alias && !tensors.has(r.name)).map((r) => r.name))];
  if (missing.length)
    throw new StrataError(
      'E_CHECKPOINT',
      `${source}: missing tensor(s) ${missing.slice(0, 6).join(', ')}${missing.length > 6 ? `, … (${missing.length} in all)` : ''}`,
    );
  for (const row of layout) {
    const t = tensors.get(row.name);
    if (!t) continue;
    used.add(row.name);
    if (row.alias) continue;
    if (fmt(t.shape) !== fmt(row.shape))
      throw new StrataError(
        'E_CHECKPOINT',
        `${source}: tensor "${row.name}" has shape ${fmt(t.shape)}, but the config implies ${fmt(row.shape)}`,
      );
    const ext = toFloat32(row.name, t, source);
    let dst = values.get(row.strata);
    if (!dst) {
      dst = new Float32Array(size(row.strataShape));
      values.set(row.strata, dst);
    }
    const { R, C, c0, w, s } = geometry(row);
    const base = (row.at ?? 0) * rowWidth(row.shape);
    for (let r = 0; r < R; r++)
      for (let c = 0; c < w; c++) {
        const e = row.transpose ? ext[base + c * R + r]! : ext[base + r * w + c]!;
        dst[r * C + c0 + c] = e / s;
      }
  }
  return { values, used };
}

/** The Strata side of an external `config.json`: model family and raw (unvalidated) config. */
export interface ImportedConfig {
  /** Strata model family (`gpt`, `encoder`, `ngpt`). */
  family: string;
  /** Raw model config for the family's `parseConfig`. */
  config: Record<string, unknown>;
}

/** What {@link fromExternalTensors} returns. */
export interface ExternalValues {
  /** Strata parameter values by name. */
  values: Map<string, Float32Array>;
  /** External tensor names that were read (or accepted as tied copies). */
  used: Set<string>;
}

/**
 * A model format described by a layout: how to check a Strata model against it, its tensor layout, its
 * `config.json`, and the way back from that config.
 */
export interface LayoutFormat {
  /** Format name (`hf-llama`, `torchscale`, `ngpt`). */
  name: string;
  /** What a refused model is not (e.g. "Llama-shaped"), for error messages. */
  shapeName: string;
  /** Every reason the model cannot be written in this format (empty when it can). */
  problems(family: string, config: Readonly<Record<string, unknown>>): string[];
  /** The tensor layout of a (valid) config. */
  layout(family: string, config: Readonly<Record<string, unknown>>): TensorMapping[];
  /** The `config.json` (and other JSON files, by name) describing the model in the other framework. */
  files(family: string, config: Readonly<Record<string, unknown>>): Record<string, unknown>;
  /**
   * The Strata family and raw config of a `config.json` of this format (training-only settings dropped:
   * dropout 0 unless `options.dropout`).
   */
  fromConfig(raw: Record<string, unknown>, source: string, options: { dropout?: number }): ImportedConfig;
}

/** What {@link exportLayout} wrote. */
export interface ExportLayoutResult {
  /** Paths of the files written. */
  files: string[];
  /** External tensor names in `model.safetensors`, in layout order. */
  tensors: string[];
}

/** The error of an import whose config asks for something Strata cannot compute exactly. */
export function configRefusal(source: string, problems: string[]): StrataError {
  return new StrataError('E_CONFIG', `${source}: cannot import this model: ${problems.join('; ')}`);
}

function refuse(format: LayoutFormat, what: string, problems: string[]): StrataError {
  return new StrataError('E_CONFIG', `${what}: the model is not ${format.shapeName}: ${problems.join('; ')}`);
}

/**
 * Writes a model in a layout format: `model.safetensors` (float32, metadata `{"format": "pt"}`) and the
 * format's JSON files, each atomically (other files in `dir` are left alone).
 *
 * @throws StrataError `E_CONFIG` naming every difference when the model does not fit the format.
 */
export async function exportLayout(
  format: LayoutFormat,
  model: LanguageModel,
  dir: string,
): Promise<ExportLayoutResult> {
  const what = `cannot export to the ${format.name} layout`;
  const config = stripNormVersion(model.config as Record<string, unknown>);
  const problems = format.problems(model.family, model.config);
  if (problems.length) throw refuse(format, what, problems);
  const layout = format.layout(model.family, getModelFamily(model.family).parseConfig(config));
  const mapped = new Set(layout.map((r) => r.strata));
  const extra = model.params.names().filter((n) => !mapped.has(n));
  if (extra.length)
    throw refuse(format, what, [
      `it has parameters the ${format.name} layout has no place for (${extra.slice(0, 5).join(', ')})`,
    ]);
  const tensors = toExternalTensors(layout, await model.params.read(), what);
  const files: string[] = [];
  const weights = join(dir, HF_WEIGHTS_FILE);
  await writeFileAtomic(weights, encodeSafetensors(tensors, { format: 'pt' }));
  files.push(weights);
  for (const [name, json] of Object.entries(format.files(model.family, model.config))) {
    const path = join(dir, name);
    await writeFileAtomic(path, `${JSON.stringify(json, null, 2)}\n`);
    files.push(path);
  }
  return { files, tensors: [...tensors.keys()] };
}

/**
 * Reads a directory written in a layout format (`config.json` + `model.safetensors` or sharded
 * `model.safetensors.index.json`) into a Strata model computing the same function.
 *
 * @throws StrataError `E_CONFIG` for a config Strata cannot compute exactly (naming every difference);
 *   `E_CHECKPOINT` for missing, misshapen or unexpected tensors.
 */
export async function importLayout(
  format: LayoutFormat,
  dir: string,
  options: { dropout?: number } = {},
): Promise<LanguageModel> {
  const configPath = join(dir, HF_CONFIG_FILE);
  if (!(await exists(configPath)))
    throw new StrataError('E_CHECKPOINT', `no ${format.name} model at ${dir}: ${HF_CONFIG_FILE} is missing`);
  const { family, config: raw } = format.fromConfig(await readJsonObject(configPath), configPath, options);
  const fam = getModelFamily(family);
  let config: Readonly<Record<string, unknown>>;
  try {
    config = fam.parseConfig(raw);
  } catch (e) {
    throw new StrataError('E_CONFIG', `${configPath}: ${(e as Error).message}`, { cause: e });
  }
  const { tensors, source } = await readHFWeights(dir);
  const layout = format.layout(family, config);
  const { values, used } = fromExternalTensors(layout, tensors, source);
  const unexpected = [...tensors.keys()].filter((k) => !used.has(k));
  if (unexpected.length)
    throw new StrataError(
      'E_CHECKPOINT',
      `${source}: unexpected tensor(s) ${unexpected.slice(0, 5).join(', ')}${unexpected.length > 5 ? ', …' : ''} (not part of a ${format.name} model with this config.json)`,
    );
  const model = fam.create(config, { seed: 0 });
  try {
    model.params.assign(values, source);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}
