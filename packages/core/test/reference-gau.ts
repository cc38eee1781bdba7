/**
 * Float64 reference of one gated attention unit, written as plain loops over JS numbers (independent of the
 * tfjs code: no fused split, no additive masks, no broadcasting; RoPE from its pair-rotation definition).
 */

/** Weights of one GAU, as plain arrays (`inW` row-major `[d, 2e+s]`, `projW` row-major `[e, d]`). */
export interface GAUWeights {
  d: number;
  e: number;
  s: number;
  inW: number[];
  inB?: number[];
  qScale: number[];
  kScale: number[];
  qOffset?: number[];
  kOffset?: number[];
  projW: number[];
  projB?: number[];
}

/** Options of the reference layer. */
export interface GAURefOptions {
  causal: boolean;
  norm: 'softmax' | 'relu2' | 'softmax_plus';
  /** Per sequence: which positions are real tokens (false: padding no query may attend to). */
  valid: boolean[][];
  rope: boolean;
  ropeBase?: number;
  plusBase?: number;
  /** Receives every attention row: sequence b, query t, the n keys it may see and their weights. */
  onRow?: (b: number, t: number, n: number, weights: number[]) => void;
}

const silu = (x: number) => x / (1 + Math.exp(-x));

/** Rotates feature pairs (j, j + s/2) of `x` (length s) at position `pos` by pos·base^(−2j/s). */
function rotate(x: number[], pos: number, base: number): number[] {
  const s = x.length;
  const half = s / 2;
  const out = x.slice();
  for (let j = 0; j < half; j++) {
    const theta = pos * base ** ((-2 * j) / s);
    const a = x[j]!;
    const b = x[j + half]!;
    out[j] = a * Math.cos(theta) - b * Math.sin(theta);
    out[j + half] = a * Math.sin(theta) + b * Math.cos(theta);
  }
  return out;
}

/**
 * The unit on `h` `[B][T][d]`: returns `[B][T][d]`. For query t of sequence b the allowed keys are
 * {j : valid[b][j] and (not causal or j ≤ t)}; n is their count.
 */
export function gauReference(h: number[][][], w: GAURefOptions & { weights: GAUWeights }): number[][][] {
  const { d, e, s } = w.weights;
  const W = w.weights;
  const base = w.ropeBase ?? 10000;
  const plus = w.plusBase ?? 512;
  return h.map((seq, b) => {
    const T = seq.length;
    const U: number[][] = [];
    const V: number[][] = [];
    const Q: number[][] = [];
    const K: number[][] = [];
    for (let t = 0; t < T; t++) {
      const row: number[] = [];
      for (let c = 0; c < 2 * e + s; c++) {
        let acc = W.inB ? W.inB[c]! : 0;
        for (let i = 0; i < d; i++) acc += seq[t]![i]! * W.inW[i * (2 * e + s) + c]!;
        row.push(silu(acc));
      }
      U.push(row.slice(0, e));
      V.push(row.slice(e, 2 * e));
      const z = row.slice(2 * e);
      let q = z.map((x, j) => x * W.qScale[j]! + (W.qOffset ? W.qOffset[j]! : 0));
      let k = z.map((x, j) => x * W.kScale[j]! + (W.kOffset ? W.kOffset[j]! : 0));
      if (w.rope) {
        q = rotate(q, t, base);
        k = rotate(k, t, base);
      }
      Q.push(q);
      K.push(k);
    }
    const out: number[][] = [];
    for (let t = 0; t < T; t++) {
      const allowed: number[] = [];
      for (let j = 0; j < T; j++) if (w.valid[b]![j] && (!w.causal || j <= t)) allowed.push(j);
      const n = Math.max(allowed.length, 1);
      const a = allowed.map((j) => {
        let dot = 0;
        for (let i = 0; i < s; i++) dot += Q[t]![i]! * K[j]![i]!;
        return dot / Math.sqrt(s);
      });
      let A: number[];
      if (w.norm === 'relu2') A = a.map((x) => Math.max(x, 0) ** 2 / n);
      else {
        const scale = w.norm === 'softmax_plus' ? Math.log(n) / Math.log(plus) : 1;
        const m = Math.max(...a.map((x) => x * scale));
        const ex = a.map((x) => Math.exp(x * scale - m));
        const z = ex.reduce((p, x) => p + x, 0);
        A = ex.map((x) => x / z);
      }
      w.onRow?.(b, t, allowed.length, A);
      const gated: number[] = [];
      for (let c = 0; c < e; c++) {
        let av = 0;
        allowed.forEach((j, idx) => {
          av += A[idx]! * V[j]![c]!;
        });
        gated.push(U[t]![c]! * av);
      }
      const o: number[] = [];
      for (let c = 0; c < d; c++) {
        let acc = W.projB ? W.projB[c]! : 0;
        for (let i = 0; i < e; i++) acc += gated[i]! * W.projW[i * d + c]!;
        o.push(acc);
      }
      out.push(o);
    }
    return out;
  });
}
