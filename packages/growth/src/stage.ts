/**
 * What every growth transform shares: the model being grown (`Current`), what a transform returns before it
 * is measured (`StageResult`), and the small helpers to build, fill and describe a grown model.
 *
 * @module
 */
import {
  getModelFamily,
  type LanguageModel,
  type ModelConfigBase,
  type ParamSpec,
  StrataError,
} from '@strata/core';
import type { FamilyInfo, ModelDims } from './families.js';
import { type HostTensor, type Origin, type StageTensor, toFloat32 } from './host.js';
import type { StageTrace } from './optimizer.js';
import type { Exactness } from './rules.js';

/** The model between two transforms, with its host copy of the weights. */
export interface Current {
  model: LanguageModel;
  values: Map<string, HostTensor>;
  specs: Map<string, ParamSpec>;
  config: ModelConfigBase;
  info: FamilyInfo;
}

/** The name of a transform in the growth report. */
export type TransformName = 'ffn' | 'width' | 'depth' | 'noise';

/** What a transform reports before it is measured. */
export interface StageReport {
  /** Which transform: FFN width, residual width/heads/head dim, depth, or symmetry-breaking noise. */
  readonly name: TransformName;
  /** What was done, with the rule used. */
  readonly description: string;
  /** How exact it is by construction. */
  readonly exactness: Exactness;
  /** Why it is not exact (empty when exact). */
  readonly reasons: readonly string[];
  /** Other facts (eps change, ablations, α handling). */
  readonly notes: readonly string[];
  /** Sizes before the transform. */
  readonly from: ModelDims;
  /** Sizes after the transform. */
  readonly to: ModelDims;
}

/** What a transform returns: the next model, its report and the provenance of every grown entry. */
export interface StageResult {
  next: Current;
  report: StageReport;
  trace: StageTrace;
}

/**
 * What a planning unit collects: description `parts`, `reasons` it cannot be exact (empty when exact) and
 * other `notes` for the report.
 */
export interface PlanLog {
  readonly parts: string[];
  readonly reasons: string[];
  readonly notes: string[];
}

/** An empty {@link PlanLog}. */
export function newLog(): PlanLog {
  return { parts: [], reasons: [], notes: [] };
}

/** Adds `text` to `list` unless it is there already. */
export function addOnce(list: string[], text: string): void {
  if (!list.includes(text)) list.push(text);
}

const ORDER: Record<Exactness, number> = { exact: 0, eps: 1, approx: 2 };

/** The least exact of a list (`exact` for an empty one). */
export function worst(list: readonly Exactness[]): Exactness {
  return list.reduce<Exactness>((a, b) => (ORDER[b] > ORDER[a] ? b : a), 'exact');
}

/** The growable sizes of a model. */
export function dimsOf(info: FamilyInfo): ModelDims {
  return {
    dModel: info.dModel,
    nHeads: info.nHeads,
    headDim: info.headDim,
    dFF: info.dFF,
    nLayers: info.nLayers,
  };
}

/** Throws an `E_GROWTH` error. */
export function fail(message: string): never {
  throw new StrataError('E_GROWTH', message);
}

/** Refuses a transform that cannot be exact, naming why and how to allow it. */
export function refuse(stage: string, reasons: readonly string[]): never {
  fail(
    `${stage} growth cannot be exact: ${reasons.join('; ')}. Pass allowApprox (--allow-approx) to grow anyway and measure the difference.`,
  );
}

/** Builds a model of `family` from a raw config (an invalid grown config is an `E_GROWTH` error). */
export function buildModel(family: string, raw: Record<string, unknown>, seed: number): LanguageModel {
  const fam = getModelFamily(family);
  let cfg: ModelConfigBase;
  try {
    cfg = fam.parseConfig(raw);
  } catch (e) {
    throw new StrataError('E_GROWTH', `the grown config is invalid: ${(e as Error).message}`, { cause: e });
  }
  return fam.create(cfg, { seed });
}

/** Writes host tensors into a model (rounded to float32). */
export function assign(model: LanguageModel, values: ReadonlyMap<string, HostTensor>): void {
  model.params.assign(toFloat32(values), 'grown weights');
}

/** The provenance of a stage's tensors, for the optimizer-state growth. */
export function traceOf(name: string, values: ReadonlyMap<string, StageTensor>): StageTrace {
  const shapes = new Map<string, number[]>();
  const origins = new Map<string, Origin>();
  for (const [n, t] of values) {
    shapes.set(n, [...t.shape]);
    origins.set(n, t.origin);
  }
  return { name, shapes, origins };
}
