/**
 * An independent float64 implementation of the nGPT forward pass (ngpt.md §2), in plain JS numbers, used to
 * check the tfjs model. It shares nothing with `src/` except the documented parameter names and layouts:
 * its own matmul, RoPE (rotate-half pairs j, j + d_k/2), softmax, L2 normalization, SiLU and cross-entropy.
 */
import type { NGPTConfig } from '../src/index.js';

/** Parameter values by name (float32 from the model, or float64 for finite differences). */
export type Weights = Map<string, ArrayLike<number>>;

function w(W: Weights, name: string): ArrayLike<number> {
  const v = W.get(name);
  if (!v) throw new Error(`reference: missing ${name}`);
  return v;
}

/** x [n] · M [n, m] (row-major) → [m]. */
function vecMat(x: readonly number[], M: ArrayLike<number>, m: number): number[] {
  const y = new Array<number>(m).fill(0);
  for (let i = 0; i < x.length; i++) {
    const xi = x[i]!;
    for (let o = 0; o < m; o++) y[o]! += xi * M[i * m + o]!;
  }
  return y;
}

function normalize(x: readonly number[], eps: number): number[] {
  let s = 0;
  for (const v of x) s += v * v;
  const r = 1 / Math.sqrt(s + eps);
  return x.map((v) => v * r);
}

/** Rotate-half RoPE of one head vector at position `pos`: pair (j, j + d/2) rotated by pos·base^(−2j/d). */
export function refRope(x: readonly number[], pos: number, base: number): number[] {
  const d = x.length;
  const half = d / 2;
  const out = new Array<number>(d);
  for (let j = 0; j < half; j++) {
    const theta = pos * base ** ((-2 * j) / d);
    const c = Math.cos(theta);
    const s = Math.sin(theta);
    const a = x[j]!;
    const b = x[j + half]!;
    out[j] = a * c - b * s;
    out[j + half] = b * c + a * s;
  }
  return out;
}

const siluRef = (x: number) => x / (1 + Math.exp(-x));

/** Effective scaling vector `p · init/scale` (|·| when `abs`). */
function eff(p: ArrayLike<number>, init: number, scale: number, abs = false): number[] {
  const out: number[] = [];
  for (let i = 0; i < p.length; i++) {
    const v = p[i]! * (init / scale);
    out.push(abs ? Math.abs(v) : v);
  }
  return out;
}

/** Output of {@link refForward}. */
export interface RefOutput {
  /** [B][T][V] */
  logits: number[][][];
  /** [B][2L+1][T][d]: embedding, then after each attention and MLP update. */
  hidden: number[][][][];
  /** Largest |attention score| (before the mask and softmax). */
  maxAbsScore: number;
}

/** nGPT forward in float64. */
export function refForward(cfg: NGPTConfig, W: Weights, ids: readonly (readonly number[])[]): RefOutput {
  const d = cfg.dModel;
  const H = cfg.nHeads;
  const dk = d / H;
  const F = cfg.dFF;
  const V = cfg.vocabSize;
  const eps = cfg.normEps;
  const E = w(W, 'tok_emb.weight');
  const out: RefOutput = { logits: [], hidden: [], maxAbsScore: 0 };
  for (const seq of ids) {
    const T = seq.length;
    let h: number[][] = seq.map((id) => Array.from({ length: d }, (_, j) => E[id * d + j]!));
    const hid: number[][][] = [h];
    for (let l = 0; l < cfg.nLayers; l++) {
      const p = `blocks.${l}`;
      // attention
      const Wqkv = w(W, `${p}.attn.qkv.weight`);
      const sqk = eff(w(W, `${p}.attn.s_qk`), cfg.sQKInit, cfg.sQKScale);
      const qs: number[][][] = [];
      const ks: number[][][] = [];
      const vs: number[][][] = [];
      for (let t = 0; t < T; t++) {
        const qkv = vecMat(h[t]!, Wqkv, 3 * d);
        const qh: number[][] = [];
        const kh: number[][] = [];
        const vh: number[][] = [];
        for (let hh = 0; hh < H; hh++) {
          const sl = (off: number) => qkv.slice(off + hh * dk, off + (hh + 1) * dk);
          const sq = sqk.slice(hh * dk, (hh + 1) * dk);
          qh.push(normalize(refRope(sl(0), t, cfg.ropeBase), eps).map((x, j) => x * sq[j]!));
          kh.push(normalize(refRope(sl(d), t, cfg.ropeBase), eps).map((x, j) => x * sq[j]!));
          vh.push(sl(2 * d));
        }
        qs.push(qh);
        ks.push(kh);
        vs.push(vh);
      }
      const Wo = w(W, `${p}.attn.proj.weight`);
      const aA = eff(w(W, `${p}.attn.alpha_A`), cfg.alphaInit, cfg.alphaScale, cfg.alphaAbs);
      const hNext: number[][] = [];
      for (let t = 0; t < T; t++) {
        const y: number[] = [];
        for (let hh = 0; hh < H; hh++) {
          const scores: number[] = [];
          for (let s = 0; s <= t; s++) {
            let dot = 0;
            for (let j = 0; j < dk; j++) dot += qs[t]![hh]![j]! * ks[s]![hh]![j]!;
            const sc = Math.sqrt(dk) * dot; // nGPT: × √d_k, not ÷
            out.maxAbsScore = Math.max(out.maxAbsScore, Math.abs(sc));
            scores.push(sc);
          }
          const m = Math.max(...scores);
          const e = scores.map((x) => Math.exp(x - m));
          const z = e.reduce((a, b) => a + b, 0);
          for (let j = 0; j < dk; j++) {
            let acc = 0;
            for (let s = 0; s <= t; s++) acc += (e[s]! / z) * vs[s]![hh]![j]!;
            y.push(acc);
          }
        }
        const hA = normalize(vecMat(y, Wo, d), eps);
        const ht = normalize(h[t]!, eps); // NVIDIA re-normalizes the stream before interpolating
        hNext.push(
          normalize(
            ht.map((x, j) => x + aA[j]! * (hA[j]! - x)),
            eps,
          ),
        );
      }
      h = hNext;
      hid.push(h);
      // MLP
      const Wu = w(W, `${p}.mlp.fc.weight`);
      const Wnu = w(W, `${p}.mlp.gate.weight`);
      const WoM = w(W, `${p}.mlp.proj.weight`);
      const su = eff(w(W, `${p}.mlp.s_u`), cfg.sUVInit, cfg.sUVScale);
      const snu = eff(w(W, `${p}.mlp.s_nu`), cfg.sUVInit, cfg.sUVScale);
      const aM = eff(w(W, `${p}.mlp.alpha_M`), cfg.alphaInit, cfg.alphaScale, cfg.alphaAbs);
      h = h.map((h0) => {
        const ht = normalize(h0, eps); // NVIDIA re-normalizes the stream before interpolating
        const u = vecMat(h0, Wu, F).map((x, j) => x * su[j]!);
        const nu = vecMat(h0, Wnu, F).map((x, j) => x * snu[j]! * Math.sqrt(d));
        const hM = normalize(
          vecMat(
            u.map((x, j) => x * siluRef(nu[j]!)),
            WoM,
            d,
          ),
          eps,
        );
        return normalize(
          ht.map((x, j) => x + aM[j]! * (hM[j]! - x)),
          eps,
        );
      });
      hid.push(h);
    }
    const Eout = w(W, 'lm_head.weight'); // [d, V]
    const sz = eff(w(W, 's_z'), cfg.sZInit, cfg.sZScale);
    out.logits.push(h.map((ht) => vecMat(ht, Eout, V).map((x, j) => x * sz[j]!)));
    out.hidden.push(hid);
  }
  return out;
}

/** Mean next-token cross-entropy of `logits` [B][T][V] against `targets` [B][T], in float64. */
export function refLoss(logits: number[][][], targets: readonly (readonly number[])[]): number {
  let total = 0;
  let n = 0;
  logits.forEach((seq, b) => {
    seq.forEach((z, t) => {
      const m = Math.max(...z);
      const lse = m + Math.log(z.reduce((a, x) => a + Math.exp(x - m), 0));
      total += lse - z[targets[b]![t]!]!;
      n++;
    });
  });
  return total / n;
}
