import { type ParamSpec, Rng } from '@strata/core';
import { coreLayout, type GrowthFamily } from './families.js';
import { identityOrigin, rms, type StageTensor, specsOf } from './host.js';
import type { SpaceName } from './spaces.js';
import { assign, buildModel, type Current, dimsOf, type StageResult, traceOf } from './stage.js';
import { copyGroups, orthoRandom } from './width/split.js';

/** Copy groups of each grown space (big index → source index, −1 for new), from the width stages. */
export type NoiseGroups = Partial<Record<SpaceName, Int32Array>>;

/**
 * Symmetry breaking that keeps the function exact (HyperCloning, arXiv 2409.12903): for every
 * internal linear whose input rows come in groups of exact copies (residual copies under the isometric/tile
 * map; duplicated heads and FFN units), noise that sums to zero over each group is added to the rows, so
 * `Σ_copies (W/k + n_c)·x = W·x` while the copies' gradients differ. The output head and the embeddings get
 * none (as HyperCloning).
 *
 * - `additive` (GPT): n ~ N(0, (noise·rms(W))²), centered within each group. A matrix that is all zeros
 *   (the output projections a depth rule has just zeroed in new blocks) takes the rms of the non-zero
 *   matrices of its role instead, so duplicated units inside new blocks are broken too: their zero
 *   outgoing rows become ±n, which still sums to zero over the copies.
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
  const roleRms = rmsByRole(values, specs);
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
    const lists = copyGroups(g);
    if (!lists.length) continue;
    const R = t.shape[0]!;
    const C = t.shape[1]!;
    const w = t.data as Float64Array;
    if (!unit) {
      const sigma = noise * (rms(w) || (roleRms.get(spec.role) ?? 0));
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
    // nGPT writer rows (axis 1) need every row in a group of identical copies; rows split into w/c + p_i
    // (non-uniform replication, width/split.ts) already differ and are left alone. Reader columns (axis 0)
    // take zero noise on rows without copies.
    if (spec.meta?.unitNormAxis === 1) {
      if (lists.reduce((a, l) => a + l.length, 0) !== R) continue;
      if (!lists.every((l) => sameRows(w, C, l))) continue;
    }
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

/** Whether rows `rows` of a row-major `[R, C]` matrix are identical. */
function sameRows(w: Float64Array, C: number, rows: readonly number[]): boolean {
  const r0 = rows[0]! * C;
  return rows.every((r) => {
    for (let j = 0; j < C; j++) if (w[r * C + j] !== w[r0 + j]) return false;
    return true;
  });
}

/** rms over the entries of every non-zero matrix of each role (the reference scale of zeroed matrices). */
function rmsByRole(
  values: ReadonlyMap<string, StageTensor>,
  specs: ReadonlyMap<string, ParamSpec>,
): Map<string, number> {
  const acc = new Map<string, { ss: number; n: number }>();
  for (const [name, t] of values) {
    const role = specs.get(name)?.role;
    if (!role || t.shape.length !== 2) continue;
    let ss = 0;
    for (const x of t.data) ss += x * x;
    if (ss === 0) continue;
    const a = acc.get(role) ?? { ss: 0, n: 0 };
    a.ss += ss;
    a.n += t.data.length;
    acc.set(role, a);
  }
  return new Map([...acc].map(([r, a]) => [r, Math.sqrt(a.ss / a.n)]));
}

/**
 * The symmetry-breaking stage: {@link addNoise} on a copy of the current weights, with `groups` from the
 * width stages (growth guide "Symmetry breaking that stays exact").
 */
export function noiseStage(
  cur: Current,
  family: GrowthFamily,
  groups: NoiseGroups,
  noise: number,
  seed: number,
  initSeed: number,
): StageResult {
  const rng = Rng.derive(seed, 'growth', 'noise');
  const values = new Map<string, StageTensor>();
  for (const [n, x] of cur.values) {
    values.set(n, {
      shape: x.shape,
      data: Float64Array.from(x.data),
      origin: identityOrigin(n, x.data.length),
    });
  }
  const touched = addNoise(values, cur.specs, groups, family, noise, rng);
  const big = buildModel(family.name, { ...cur.config } as Record<string, unknown>, initSeed);
  assign(big, values);
  const roles = [...new Set(touched.map((n) => cur.specs.get(n)!.role))].join(', ');
  return {
    next: { model: big, values, specs: specsOf(big), config: big.config, info: cur.info },
    report: {
      name: 'noise',
      description:
        family.noise === 'unit'
          ? `norm-preserving paired noise of norm ${noise} on every matrix with duplicated inputs (zero-sum over each copy group, orthogonal to each unit vector)`
          : `paired zero-sum noise (std ${noise} × rms) on every matrix with duplicated inputs (HyperCloning ±N: Σ over copies of the noise = 0)`,
      exactness: 'exact',
      reasons: [],
      notes: touched.length
        ? [`noised ${touched.length} matrices (${roles})`]
        : ['no duplicated inputs: nothing to break'],
      from: dimsOf(cur.info),
      to: dimsOf(cur.info),
    },
    trace: traceOf('noise', values),
  };
}
