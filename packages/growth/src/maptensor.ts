import type { Rng } from '@strata/core';
import { type HostTensor, rms, type StageTensor, sizeOf } from './host.js';
import type { AxisMap, FreshKind } from './spaces.js';

/**
 * Applies per-axis maps to a host tensor (1-D or 2-D, row-major). An entry whose axes all have a source is
 * `x[src]·Π coef`; an entry with a new index on some axis holds, in order of precedence: `zero` (a writer's
 * new output: must stay 0 for exactness), `free` (random, N(0, rms(x)²)·`freeScale`: it multiplies zeros),
 * `mean` (the mean over the old indices of that axis), `fill` (1-D: the mean of the mapped old entries).
 * Also returns the provenance ({@link StageTensor.origin}) the optimizer-state growth needs.
 */
export function mapTensor(
  name: string,
  x: HostTensor,
  axes: readonly AxisMap[],
  rng: Rng,
  freeScale = 1,
): StageTensor {
  if (axes.length !== x.shape.length) {
    throw new Error(`${name}: ${axes.length} axis maps for a tensor of rank ${x.shape.length}`);
  }
  axes.forEach((a, i) => {
    if (a.smallSize !== x.shape[i]) {
      throw new Error(`${name}: axis ${i} has size ${x.shape[i]}, the map expects ${a.smallSize}`);
    }
  });
  const shape = axes.map((a) => a.bigSize);
  const n = sizeOf(shape);
  const data = new Float64Array(n);
  const src = new Int32Array(n).fill(-1);
  const s = new Float64Array(n);
  const cnt = new Float64Array(n);
  const freeStd = (rms(x.data) || 1e-2) * freeScale;
  if (axes.length === 0) {
    data[0] = x.data[0]!;
    src[0] = 0;
    s[0] = 1;
    cnt[0] = 1;
    return { shape, data, origin: { from: name, src, s, n: cnt } };
  }
  if (axes.length === 1) {
    const a = axes[0]!;
    let fillMean = 0;
    if (a.fresh === 'fill' || a.fresh === 'mean') {
      let sum = 0;
      let m = 0;
      for (let i = 0; i < a.bigSize; i++) {
        if (a.src[i]! >= 0) {
          sum += x.data[a.src[i]!]! * (a.fresh === 'fill' ? a.coef[i]! : 1);
          m++;
        }
      }
      fillMean = m ? sum / m : 0;
      if (a.fresh === 'mean') fillMean = meanOf(x.data);
    }
    for (let i = 0; i < a.bigSize; i++) {
      const si = a.src[i]!;
      if (si >= 0) {
        data[i] = x.data[si]! * a.coef[i]!;
        src[i] = si;
        s[i] = a.coef[i]!;
        cnt[i] = a.copies[i]!;
      } else data[i] = fresh1(a.fresh, fillMean, rng, freeStd);
    }
    return { shape, data, origin: { from: name, src, s, n: cnt } };
  }
  if (axes.length !== 2) throw new Error(`${name}: growth handles tensors of rank ≤ 2, got ${axes.length}`);
  const [ar, ac] = axes as [AxisMap, AxisMap];
  const R = x.shape[0]!;
  const C = x.shape[1]!;
  const C2 = ac.bigSize;
  // Row and column means of the small tensor (for `mean` fresh entries).
  const rowMean = new Float64Array(R);
  const colMean = new Float64Array(C);
  for (let r = 0; r < R; r++) {
    for (let c = 0; c < C; c++) {
      rowMean[r]! += x.data[r * C + c]! / C;
      colMean[c]! += x.data[r * C + c]! / R;
    }
  }
  const all = meanOf(x.data);
  for (let r2 = 0; r2 < ar.bigSize; r2++) {
    const sr = ar.src[r2]!;
    for (let c2 = 0; c2 < C2; c2++) {
      const sc = ac.src[c2]!;
      const j = r2 * C2 + c2;
      if (sr >= 0 && sc >= 0) {
        const coef = ar.coef[r2]! * ac.coef[c2]!;
        data[j] = x.data[sr * C + sc]! * coef;
        src[j] = sr * C + sc;
        s[j] = coef;
        cnt[j] = ar.copies[r2]! * ac.copies[c2]!;
        continue;
      }
      const kinds: FreshKind[] = [];
      if (sr < 0) kinds.push(ar.fresh);
      if (sc < 0) kinds.push(ac.fresh);
      if (kinds.includes('zero')) data[j] = 0;
      else if (kinds.includes('free')) data[j] = rng.normal() * freeStd;
      else if (sr < 0 && sc < 0) data[j] = all;
      else if (sr < 0) data[j] = colMean[sc]! * ac.coef[c2]!;
      else data[j] = rowMean[sr]! * ar.coef[r2]!;
    }
  }
  return { shape, data, origin: { from: name, src, s, n: cnt } };
}

function meanOf(d: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < d.length; i++) s += d[i]!;
  return d.length ? s / d.length : 0;
}

function fresh1(kind: FreshKind, fill: number, rng: Rng, std: number): number {
  switch (kind) {
    case 'zero':
      return 0;
    case 'free':
      return rng.normal() * std;
    default:
      return fill;
  }
}
