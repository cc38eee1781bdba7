import type { LanguageModel, ParamSpec } from '@strata/core';

/**
 * A tensor held on the host in float64 while a growth transform is computed. Growth reads the small model's
 * float32 weights once, computes every grown value in float64 and rounds to float32 only when the grown model
 * is built, so the transform itself adds no error beyond that final rounding.
 */
export interface HostTensor {
  /** Dimensions (tfjs layout). */
  readonly shape: readonly number[];
  /** Values in row-major order, in float64. */
  readonly data: Float64Array;
}

/**
 * Where each entry of a grown tensor came from, for the optimizer state (Growth guide, "Optimizer state"). For entry `j`:
 * `src[j]` is the flat index of the entry of tensor `from` it copies (−1: a new entry with no source), `s[j]`
 * the value coefficient (`θ′_j = s_j·θ_src`), and `n[j]` the number of big entries that copy the same source
 * entry. Adam's moments then map as `m′ = m/(n·s)`, `v′ = v/(n·s)²` and the learning-rate multiplier as
 * `|s|`. `fresh[j] = 1` marks entries whose moments start at zero even though they have a source (new blocks
 * copied from a neighbor: the source only provides the learning-rate multiplier and, with `newMoments:
 * 'seed-v'`, the second moment).
 */
export interface Origin {
  /** Name of the small model's tensor the entries come from. */
  readonly from: string;
  /** Per entry: flat index of its source entry in `from` (−1: none). */
  readonly src: Int32Array;
  /** Per entry: value coefficient, `θ′ = s·θ_src`. */
  readonly s: Float64Array;
  /** Per entry: how many grown entries copy the same source entry. */
  readonly n: Float64Array;
  /** Per entry: 1 when its moments start at zero despite a source (new blocks). */
  readonly fresh?: Uint8Array;
}

/** A grown tensor plus its provenance. */
export interface StageTensor extends HostTensor {
  /** Where each entry came from. */
  readonly origin: Origin;
}

/** Number of entries of a shape. */
export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The identity provenance of a tensor (each entry is itself). */
export function identityOrigin(name: string, size: number): Origin {
  const src = new Int32Array(size);
  for (let i = 0; i < size; i++) src[i] = i;
  return { from: name, src, s: new Float64Array(size).fill(1), n: new Float64Array(size).fill(1) };
}

/** Reads every parameter of a model to host float64 tensors, in creation order. */
export async function readParams(model: LanguageModel): Promise<Map<string, HostTensor>> {
  const values = await model.params.read();
  const out = new Map<string, HostTensor>();
  for (const spec of model.params.specs()) {
    const v = values.get(spec.name)!;
    out.set(spec.name, { shape: [...spec.shape], data: Float64Array.from(v) });
  }
  return out;
}

/** Specs of a model by name. */
export function specsOf(model: LanguageModel): Map<string, ParamSpec> {
  return new Map(model.params.specs().map((s) => [s.name, s]));
}

/** Rounds host tensors to float32 for `ParamStore.assign`. */
export function toFloat32(values: ReadonlyMap<string, HostTensor>): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [k, v] of values) out.set(k, Float32Array.from(v.data));
  return out;
}

/** Root mean square of the entries (0 for an empty tensor). */
export function rms(data: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < data.length; i++) s += data[i]! * data[i]!;
  return data.length ? Math.sqrt(s / data.length) : 0;
}
