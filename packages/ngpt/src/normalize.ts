import { l2Normalize, type ParamStore } from '@strata/core';
import * as tf from '@tensorflow/tfjs-core';

/**
 * Key in a parameter's `meta` that names the axis along which each vector of that matrix has unit L2 norm
 * (the axis of length d_model). Parameters without it (the scaling vectors) are never
 * projected.
 */
export const UNIT_NORM_AXIS = 'unitNormAxis';

/** The unit-norm axis of a parameter (from its `meta`), or `undefined` for parameters that are not projected. */
export function unitNormAxisOf(spec: {
  readonly meta?: Readonly<Record<string, string | number | boolean>>;
}): number | undefined {
  const a = spec.meta?.[UNIT_NORM_AXIS];
  return typeof a === 'number' ? a : undefined;
}

/**
 * Projects every matrix that carries a {@link UNIT_NORM_AXIS} in its `meta` back onto the unit sphere:
 * `W ← W / √(ΣW² + eps)` along that axis (E_in rows, E_out columns, W_q/W_k/W_v/W_u/W_ν columns, W_o and
 * W_oM rows — every vector of length d_model). Runs in place (`variable.assign` inside `tf.tidy`, so no
 * tensor is leaked and optimizer state keyed by the variables stays valid). The Adam moments are not
 * touched, and the scaling vectors are left alone.
 *
 * nGPT calls this once after init and after every optimizer step (`model.afterStep()`).
 * @param eps added to the squared norm (guards all-zero vectors; far below float32 resolution of 1)
 */
export function normalizeMatrices(params: ParamStore, eps = 1e-12): void {
  for (const spec of params.specs()) {
    const axis = unitNormAxisOf(spec);
    if (axis === undefined) continue;
    const v = params.get(spec.name);
    tf.tidy(() => {
      v.assign(l2Normalize(v, axis, eps));
    });
  }
}

/**
 * For each projected matrix, the largest deviation `max |‖w‖₂ − 1|` over its unit-norm vectors (computed in
 * float64 on the host). After {@link normalizeMatrices} every value is ≲ 1e-7.
 */
export async function unitNormErrors(params: ParamStore): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const spec of params.specs()) {
    const axis = unitNormAxisOf(spec);
    if (axis === undefined) continue;
    const data = (await params.get(spec.name).data()) as Float32Array;
    const norms = vectorNorms(data, spec.shape, axis);
    let worst = 0;
    for (const n of norms) worst = Math.max(worst, Math.abs(n - 1));
    out.set(spec.name, worst);
  }
  return out;
}

/** L2 norms (float64) of the vectors along `axis` of a row-major 2-D array. */
export function vectorNorms(data: ArrayLike<number>, shape: readonly number[], axis: number): Float64Array {
  const [rows, cols] = shape as [number, number];
  if (shape.length !== 2) throw new Error(`expected a matrix, got shape [${shape}]`);
  const count = axis === 0 ? cols : rows;
  const sq = new Float64Array(count);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const x = data[r * cols + c]!;
      sq[axis === 0 ? c : r]! += x * x;
    }
  }
  for (let i = 0; i < count; i++) sq[i] = Math.sqrt(sq[i]!);
  return sq;
}

/**
 * Host-side unit normalization (float64, then rounded to float32) along `axis` of a row-major matrix, used at
 * init so the initial weights are bit-identical on every backend.
 */
export function unitNormalizeHost(data: Float32Array, shape: readonly number[], axis: number): Float32Array {
  const norms = vectorNorms(data, shape, axis);
  const cols = shape[1]!;
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const r = Math.floor(i / cols);
    const c = i - r * cols;
    const n = norms[axis === 0 ? c : r]!;
    out[i] = n > 0 ? data[i]! / n : 0;
  }
  return out;
}
