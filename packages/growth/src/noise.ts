import type { ParamSpec, Rng } from '@strata/core';
import { coreLayout, type GrowthFamily } from './families.js';
import { rms, type StageTensor } from './host.js';
import type { SpaceName } from './spaces.js';

/** Copy groups of each grown space (big index → source index, −1 for new), from the width stages. */
export type NoiseGroups = Partial<Record<SpaceName, Int32Array>>;

function groupLists(g: Int32Array): number[][] {
  const by = new Map<number, number[]>();
  g.forEach((s, i) => {
    if (s < 0) return;
    const l = by.get(s) ?? [];
    l.push(i);
    by.set(s, l);
  });
  return [...by.values()];
}

/**
 * Symmetry breaking that keeps the function exact (growth.md §2.7, §3.0 row 32; HyperCloning): for every
 * internal linear whose input rows come in groups of exact copies (residual copies under the isometric/tile
 * map; duplicated heads and FFN units), noise that sums to zero over each group is added to the rows, so
 * `Σ_copies (W/k + n_c)·x = W·x` while the copies' gradients differ. The output head and the embeddings get
 * none (as HyperCloning).
 *
 * - `additive` (GPT): n ~ N(0, (noise·rms(W))²), centered within each group.
 * - `unit` (nGPT): every unit vector stays unit and every output is scaled by the same a = √(1−ε²), which the
 *   following `Norm` removes: reader columns (W_q|W_k|W_v, W_u; unit along the read axis) become
 *   `a·w + n` with n zero-sum per group (hence ⊥ w) and ‖n‖ = ε; writer rows (W_o, W_oM; each group holds
 *   identical rows) become `a·w + ε(cos(2πc/K)e₁ + sin(2πc/K)e₂)` with e₁, e₂ ⊥ w, which sum to zero over the
 *   K copies. W_ν is left alone (SiLU is not scale-invariant); its copies still get different gradients
 *   through W_oM.
 *
 * @returns the names of the matrices that received noise
 */
export function addNoise(
  values: Map<string, StageTensor>,
  specs: ReadonlyMap<string, ParamSpec>,
  groups: NoiseGroups,
  family: GrowthFamily,
  noise: number,
  rng: Rng,
): string[] {
  const touched: string[] = [];
  const unit = family.noise === 'unit';
  if (unit && !(noise < 1))
    throw new Error(`nGPT noise must be < 1 (it is the norm of the added vector), got ${noise}`);
  for (const [name, t] of values) {
    const spec = specs.get(name);
    if (!spec || t.shape.length !== 2) continue;
    if (!['qkv', 'attn_out', 'ffn_in', 'ffn_gate', 'ffn_out'].includes(spec.role)) continue;
    if (unit && spec.role === 'ffn_gate') continue;
    const layout = coreLayout(spec);
    const read = layout?.[0];
    if (read?.use !== 'read') continue;
    const g = groups[read.space];
    if (!g || g.length !== t.shape[0]) continue;
    const lists = groupLists(g).filter((l) => l.length > 1);
    if (!lists.length) continue;
    const R = t.shape[0]!;
    const C = t.shape[1]!;
    const w = t.data as Float64Array;
    if (!unit) {
      const sigma = noise * rms(w);
      if (sigma === 0) continue;
      for (let c = 0; c < C; c++) {
        for (const l of lists) {
          const n = l.map(() => rng.normal() * sigma);
          const mean = n.reduce((a, b) => a + b, 0) / n.length;
          l.forEach((r, i) => {
            w[r * C + c]! += n[i]! - mean;
          });
        }
      }
      touched.push(name);
      continue;
    }
    // nGPT: every row must belong to a group of copies (uniform replication), else skip the matrix.
    if (lists.reduce((a, l) => a + l.length, 0) !== R) continue;
    const eps = noise;
    const a = Math.sqrt(1 - eps * eps);
    const axis = spec.meta?.unitNormAxis;
    if (axis === 0) {
      for (let c = 0; c < C; c++) {
        const n = new Float64Array(R);
        for (const l of lists) {
          const v = l.map(() => rng.normal());
          const mean = v.reduce((x, y) => x + y, 0) / v.length;
          l.forEach((r, i) => {
            n[r] = v[i]! - mean;
          });
        }
        let nn = 0;
        let ww = 0;
        for (let r = 0; r < R; r++) {
          nn += n[r]! * n[r]!;
          ww += w[r * C + c]! * w[r * C + c]!;
        }
        const f = nn > 0 ? (eps * Math.sqrt(ww)) / Math.sqrt(nn) : 0;
        for (let r = 0; r < R; r++) w[r * C + c] = a * w[r * C + c]! + f * n[r]!;
      }
    } else if (axis === 1) {
      for (const l of lists) {
        const row = Float64Array.from(w.subarray(l[0]! * C, l[0]! * C + C));
        const norm = Math.sqrt(row.reduce((x, y) => x + y * y, 0));
        const e1 = orthoRandom(rng, C, [row]);
        const e2 = orthoRandom(rng, C, [row, e1]);
        const K = l.length;
        l.forEach((r, ci) => {
          const cs = Math.cos((2 * Math.PI * ci) / K);
          const sn = Math.sin((2 * Math.PI * ci) / K);
          for (let j = 0; j < C; j++) w[r * C + j] = a * row[j]! + eps * norm * (cs * e1[j]! + sn * e2[j]!);
        });
      }
    } else continue;
    touched.push(name);
  }
  return touched;
}

/** A random unit vector orthogonal to every vector in `basis` (Gram–Schmidt). */
function orthoRandom(rng: Rng, n: number, basis: readonly Float64Array[]): Float64Array {
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
