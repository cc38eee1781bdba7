/**
 * Unit-norm splitting of copied rows (nGPT, non-uniform replication of heads or FFN units).
 *
 * nGPT's W_o and W_oM read the concatenated heads / hidden units and their rows are unit vectors along
 * d_model. Under uniform replication (every unit copied c times) copying the rows multiplies the output by c,
 * which the following `Norm` removes. With non-uniform counts that factor differs between units, so instead
 * each group of c copied rows w is split into `w/c + p_i` with `Σ_i p_i = 0` and `p_i ⟂ w`, of norm
 * `|w|·√(1 − 1/c²)`: every row keeps the norm of w and the copies sum to w, so the output is exactly the
 * small model's (the copies' inputs are equal). For c ≥ 3 the p_i are `r(cos(2πi/c)e₁ + sin(2πi/c)e₂)`
 * with e₁, e₂ ⟂ w; for c = 2, ±r·e₁.
 *
 * @module
 */
import type { Rng } from '@strata/core';
import type { StageTensor } from '../host.js';

/** A random unit vector orthogonal to every vector in `basis` (Gram–Schmidt); zeros if none is found. */
export function orthoRandom(rng: Rng, n: number, basis: readonly Float64Array[]): Float64Array {
  for (let attempt = 0; attempt < 8; attempt++) {
    const v = new Float64Array(n);
    for (let i = 0; i < n; i++) v[i] = rng.normal();
    for (const b of basis) {
      const bb = b.reduce((x, y) => x + y * y, 0);
      if (bb === 0) continue;
      let dot = 0;
      for (let i = 0; i < n; i++) dot += v[i]! * b[i]!;
      for (let i = 0; i < n; i++) v[i]! -= (dot / bb) * b[i]!;
    }
    const norm = Math.sqrt(v.reduce((x, y) => x + y * y, 0));
    if (norm > 1e-8) {
      for (let i = 0; i < n; i++) v[i]! /= norm;
      return v;
    }
  }
  return new Float64Array(n);
}

/** Groups of row indices with the same source (−1: new rows, left out); only groups of 2 or more. */
export function copyGroups(groups: Int32Array): number[][] {
  const by = new Map<number, number[]>();
  groups.forEach((s, i) => {
    if (s < 0) return;
    const l = by.get(s) ?? [];
    l.push(i);
    by.set(s, l);
  });
  return [...by.values()].filter((l) => l.length > 1);
}

/**
 * Splits the copied rows of a `[R, C]` matrix in place (see the module doc). `groups[r]` is the source of
 * row r; rows of a group must hold the same vector. The provenance follows: each split entry counts as
 * `s = 1/c` of its source (its gradient equals the small one, so Adam's moments are kept and the per-entry
 * learning rate is ÷ c; Growth guide, "Optimizer state").
 */
export function splitCopiedRows(t: StageTensor, groups: Int32Array, rng: Rng): void {
  const C = t.shape[1]!;
  const w = t.data as Float64Array;
  const s = t.origin.s as Float64Array;
  for (const rows of copyGroups(groups)) {
    const c = rows.length;
    const row = Float64Array.from(w.subarray(rows[0]! * C, rows[0]! * C + C));
    const norm = Math.sqrt(row.reduce((x, y) => x + y * y, 0));
    const r = norm * Math.sqrt(1 - 1 / (c * c));
    const e1 = orthoRandom(rng, C, [row]);
    const e2 = c > 2 ? orthoRandom(rng, C, [row, e1]) : new Float64Array(C);
    rows.forEach((ri, i) => {
      const cs = Math.cos((2 * Math.PI * i) / c);
      const sn = Math.sin((2 * Math.PI * i) / c);
      for (let j = 0; j < C; j++) {
        w[ri * C + j] = row[j]! / c + r * (cs * e1[j]! + sn * e2[j]!);
        s[ri * C + j] = s[ri * C + j]! / c;
      }
    });
  }
}
