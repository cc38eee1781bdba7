/**
 * A second, independent float64 reference for nGPT: forward pass, hand-written backward pass, and NVIDIA's
 * training step (global-norm clipping, PyTorch AdamW, `normalize_matrices()`), written from the paper
 * (arXiv 2410.01131) and NVIDIA's `ngpt` code (`model.py`, `train.py`), not from Strata's source.
 *
 * It deliberately keeps NVIDIA's form wherever Strata's differs only in layout or bookkeeping, so that a shared
 * mistake is unlikely:
 * - weights in PyTorch layout `[out, in]`, with separate `query`, `key`, `value`, one fused `c_fc` `[2·F, d]`
 *   (u the first half, ν the second) and one `suv` vector of length 2·F multiplying **both** halves by
 *   `suv · √d` (NVIDIA; Strata keeps s_u and s_ν apart and puts √d on ν only — the same function, because a
 *   uniform factor on u is removed by `Norm(h_M)`);
 * - the block is NVIDIA's: `A = Norm(h)`, `B = Norm(h_att)`, `h ← Norm(A + |α|·(B − A))`, for attention and MLP;
 * - matrices are re-projected along NVIDIA's axes (`dim 1` of `[out, in]` for wte, query, key, value, c_fc,
 *   lm_head; `dim 0` for att_c_proj and mlp_c_proj);
 * - the learning rate comes from nanoGPT's `get_lr` (warmup 0, cosine to `min_lr = 0` over the run).
 *
 * Only the RoPE is not NVIDIA's (its rotation is broken, NVIDIA/ngpt issue #10): the standard rotate-half form
 * (HF's `rotate_half`), and `Norm(x) = x/√(Σx² + ε)` with the config's tiny ε (NVIDIA has none).
 */
import type { NGPTConfig } from '../src/index.js';

type F64 = Float64Array;

/** One block's weights in NVIDIA's layout. */
interface NvBlock {
  query: F64; // [d, d] (out, in)
  key: F64;
  value: F64;
  att_c_proj: F64; // [d, d]
  c_fc: F64; // [2F, d]
  mlp_c_proj: F64; // [d, F]
  attn_alpha: F64; // [d]
  mlp_alpha: F64; // [d]
  sqk: F64; // [d]
  suv: F64; // [2F]
}

/** All weights (or gradients) of the model in NVIDIA's layout and names. */
export interface NvModel {
  wte: F64; // [V, d]
  blocks: NvBlock[];
  lm_head: F64; // [V, d]
  sz: F64; // [V]
}

const transpose = (a: ArrayLike<number>, rows: number, cols: number): F64 => {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c]!;
  return out;
};
/** Columns [c0, c0 + n) of a row-major [rows, cols] matrix, transposed: [n, rows]. */
const colsT = (a: ArrayLike<number>, rows: number, cols: number, c0: number, n: number): F64 => {
  const out = new Float64Array(n * rows);
  for (let r = 0; r < rows; r++) for (let c = 0; c < n; c++) out[c * rows + r] = a[r * cols + c0 + c]!;
  return out;
};
const concat = (...xs: ArrayLike<number>[]): F64 => {
  const out = new Float64Array(xs.reduce((n, x) => n + x.length, 0));
  let o = 0;
  for (const x of xs) {
    out.set(Array.from(x), o);
    o += x.length;
  }
  return out;
};

/** Converts Strata's named tensors (tfjs `[in, out]` layout) to NVIDIA's layout (float64 copies). */
export function toNvidia(cfg: NGPTConfig, W: ReadonlyMap<string, ArrayLike<number>>): NvModel {
  const d = cfg.dModel;
  const F = cfg.dFF;
  const V = cfg.vocabSize;
  const get = (n: string) => {
    const v = W.get(n);
    if (!v) throw new Error(`reference: missing ${n}`);
    return v;
  };
  const blocks: NvBlock[] = [];
  for (let l = 0; l < cfg.nLayers; l++) {
    const p = `blocks.${l}`;
    const qkv = get(`${p}.attn.qkv.weight`);
    blocks.push({
      query: colsT(qkv, d, 3 * d, 0, d),
      key: colsT(qkv, d, 3 * d, d, d),
      value: colsT(qkv, d, 3 * d, 2 * d, d),
      att_c_proj: transpose(get(`${p}.attn.proj.weight`), d, d),
      c_fc: concat(transpose(get(`${p}.mlp.fc.weight`), d, F), transpose(get(`${p}.mlp.gate.weight`), d, F)),
      mlp_c_proj: transpose(get(`${p}.mlp.proj.weight`), F, d),
      attn_alpha: Float64Array.from(get(`${p}.attn.alpha_A`)),
      mlp_alpha: Float64Array.from(get(`${p}.mlp.alpha_M`)),
      sqk: Float64Array.from(get(`${p}.attn.s_qk`)),
      suv: concat(get(`${p}.mlp.s_u`), get(`${p}.mlp.s_nu`)),
    });
  }
  return {
    wte: Float64Array.from(get('tok_emb.weight')),
    blocks,
    lm_head: transpose(get('lm_head.weight'), d, V),
    sz: Float64Array.from(get('s_z')),
  };
}

/** Converts NVIDIA-layout weights (or gradients) back to Strata's names and `[in, out]` layout. */
export function toStrata(cfg: NGPTConfig, m: NvModel): Map<string, F64> {
  const d = cfg.dModel;
  const F = cfg.dFF;
  const V = cfg.vocabSize;
  const out = new Map<string, F64>();
  out.set('tok_emb.weight', m.wte);
  m.blocks.forEach((b, l) => {
    const p = `blocks.${l}`;
    const qkv = new Float64Array(d * 3 * d);
    [b.query, b.key, b.value].forEach((w, k) => {
      for (let o = 0; o < d; o++) for (let i = 0; i < d; i++) qkv[i * 3 * d + k * d + o] = w[o * d + i]!;
    });
    out.set(`${p}.attn.qkv.weight`, qkv);
    out.set(`${p}.attn.s_qk`, b.sqk);
    out.set(`${p}.attn.proj.weight`, transpose(b.att_c_proj, d, d));
    out.set(`${p}.attn.alpha_A`, b.attn_alpha);
    out.set(`${p}.mlp.fc.weight`, transpose(b.c_fc.subarray(0, F * d), F, d));
    out.set(`${p}.mlp.gate.weight`, transpose(b.c_fc.subarray(F * d), F, d));
    out.set(`${p}.mlp.s_u`, b.suv.slice(0, F));
    out.set(`${p}.mlp.s_nu`, b.suv.slice(F));
    out.set(`${p}.mlp.proj.weight`, transpose(b.mlp_c_proj, d, F));
    out.set(`${p}.mlp.alpha_M`, b.mlp_alpha);
  });
  out.set('lm_head.weight', transpose(m.lm_head, V, d));
  out.set('s_z', m.sz);
  return out;
}

/** A zero-filled model of the same shapes (for gradients and Adam moments). */
export function zerosLike(m: NvModel): NvModel {
  const z = (a: F64) => new Float64Array(a.length);
  return {
    wte: z(m.wte),
    blocks: m.blocks.map((b) => ({
      query: z(b.query),
      key: z(b.key),
      value: z(b.value),
      att_c_proj: z(b.att_c_proj),
      c_fc: z(b.c_fc),
      mlp_c_proj: z(b.mlp_c_proj),
      attn_alpha: z(b.attn_alpha),
      mlp_alpha: z(b.mlp_alpha),
      sqk: z(b.sqk),
      suv: z(b.suv),
    })),
    lm_head: z(m.lm_head),
    sz: z(m.sz),
  };
}

/** Every tensor of a model, in a fixed order, each with whether `normalize_matrices()` projects it and along which dim. */
export function tensorsOf(m: NvModel): { t: F64; rows: number; dim?: 0 | 1 }[] {
  const d = m.blocks[0]?.attn_alpha.length ?? m.wte.length / (m.sz.length || 1);
  const out: { t: F64; rows: number; dim?: 0 | 1 }[] = [{ t: m.wte, rows: m.sz.length, dim: 1 }];
  for (const b of m.blocks) {
    const F = b.suv.length / 2;
    out.push(
      { t: b.query, rows: d, dim: 1 },
      { t: b.key, rows: d, dim: 1 },
      { t: b.value, rows: d, dim: 1 },
      { t: b.att_c_proj, rows: d, dim: 0 },
      { t: b.c_fc, rows: 2 * F, dim: 1 },
      { t: b.mlp_c_proj, rows: d, dim: 0 },
      { t: b.attn_alpha, rows: 1 },
      { t: b.mlp_alpha, rows: 1 },
      { t: b.sqk, rows: 1 },
      { t: b.suv, rows: 1 },
    );
  }
  out.push({ t: m.lm_head, rows: m.sz.length, dim: 1 }, { t: m.sz, rows: 1 });
  return out;
}

// ---------------------------------------------------------------- small float64 helpers

/** y = W x for W `[out, in]`. */
function lin(W: F64, out: number, inn: number, x: F64): F64 {
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let s = 0;
    for (let i = 0; i < inn; i++) s += W[o * inn + i]! * x[i]!;
    y[o] = s;
  }
  return y;
}
/** Backward of {@link lin}: dx += Wᵀ dy, dW += dy xᵀ. */
function linBack(W: F64, dW: F64, out: number, inn: number, x: F64, dy: F64, dx: F64): void {
  for (let o = 0; o < out; o++) {
    const g = dy[o]!;
    if (g === 0) continue;
    for (let i = 0; i < inn; i++) {
      dx[i]! += W[o * inn + i]! * g;
      dW[o * inn + i]! += g * x[i]!;
    }
  }
}
/** `x/√(Σx² + ε)` and the divisor. */
function justnorm(x: F64, eps: number): { y: F64; r: number } {
  let s = 0;
  for (const v of x) s += v * v;
  const r = Math.sqrt(s + eps);
  return { y: x.map((v) => v / r), r };
}
/** Backward of {@link justnorm}: dx = (dy − y·(y·dy))/r. */
function justnormBack(y: F64, r: number, dy: F64): F64 {
  let dot = 0;
  for (let i = 0; i < y.length; i++) dot += y[i]! * dy[i]!;
  return y.map((yi, i) => (dy[i]! - yi * dot) / r);
}
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** Rotate-half RoPE at position t: pair (j, j + n/2) rotated by t·base^(−2j/n). `sign` −1 applies the inverse (the backward). */
function rope(x: F64, t: number, base: number, sign = 1): F64 {
  const n = x.length;
  const half = n / 2;
  const out = new Float64Array(n);
  for (let j = 0; j < half; j++) {
    const th = t * base ** ((-2 * j) / n);
    const c = Math.cos(th);
    const s = sign * Math.sin(th);
    out[j] = x[j]! * c - x[j + half]! * s;
    out[j + half] = x[j + half]! * c + x[j]! * s;
  }
  return out;
}

/** Effective scaling values `p·(init/scaling)` (then |·|) and d(effective)/dp per entry. */
function effective(p: F64, init: number, scaling: number, abs: boolean): { v: F64; dv: F64 } {
  const k = init / scaling;
  const v = new Float64Array(p.length);
  const dv = new Float64Array(p.length);
  for (let i = 0; i < p.length; i++) {
    const e = p[i]! * k;
    v[i] = abs ? Math.abs(e) : e;
    dv[i] = abs ? Math.sign(e) * k : k;
  }
  return { v, dv };
}

// ---------------------------------------------------------------- forward + backward

/** Mean next-token cross-entropy over `ids`/`targets` (`[B][T]`) and, unless `lossOnly`, its gradient. */
export function lossAndGrads(
  cfg: NGPTConfig,
  W: NvModel,
  ids: readonly (readonly number[])[],
  targets: readonly (readonly number[])[],
  lossOnly = false,
): { loss: number; grads: NvModel } {
  const d = cfg.dModel;
  const V = cfg.vocabSize;
  const G = zerosLike(W);
  const N = ids.length * ids[0]!.length;
  let loss = 0;
  const sz = effective(W.sz, cfg.sZInit, cfg.sZScale, false);

  for (let b = 0; b < ids.length; b++) {
    const seq = ids[b]!;
    const T = seq.length;
    let h: F64[] = seq.map((id) => W.wte.slice(id * d, (id + 1) * d));
    // per-block caches for the backward pass
    const caches: ReturnType<typeof blockForward>[] = [];
    for (let l = 0; l < cfg.nLayers; l++) {
      const c = blockForward(cfg, W.blocks[l]!, h);
      caches.push(c);
      h = c.out;
    }
    // head: z = sz ⊙ (lm_head h), cross-entropy
    const dh: F64[] = [];
    for (let t = 0; t < T; t++) {
      const cosz = lin(W.lm_head, V, d, h[t]!);
      const z = cosz.map((x, v) => x * sz.v[v]!);
      const m = Math.max(...z);
      let se = 0;
      for (const x of z) se += Math.exp(x - m);
      const tgt = targets[b]![t]!;
      loss += (m + Math.log(se) - z[tgt]!) / N;
      if (lossOnly) continue;
      const dz = z.map((x, v) => (Math.exp(x - m) / se - (v === tgt ? 1 : 0)) / N);
      for (let v = 0; v < V; v++) G.sz[v]! += dz[v]! * cosz[v]! * sz.dv[v]!;
      const dcos = dz.map((g, v) => g * sz.v[v]!);
      const dht = new Float64Array(d);
      linBack(W.lm_head, G.lm_head, V, d, h[t]!, dcos, dht);
      dh.push(dht);
    }
    if (lossOnly) continue;
    let g = dh;
    for (let l = cfg.nLayers - 1; l >= 0; l--)
      g = blockBackward(cfg, W.blocks[l]!, G.blocks[l]!, caches[l]!, g);
    seq.forEach((id, t) => {
      for (let j = 0; j < d; j++) G.wte[id * d + j]! += g[t]![j]!;
    });
  }
  return { loss, grads: G };
}

/** NVIDIA's `Block.forward` for one sequence (rows `h[t]`), keeping what the backward pass needs. */
function blockForward(cfg: NGPTConfig, B: NvBlock, hin: F64[]) {
  const d = cfg.dModel;
  const H = cfg.nHeads;
  const dk = d / H;
  const F = cfg.dFF;
  const eps = cfg.normEps;
  const T = hin.length;
  const sqk = effective(B.sqk, cfg.sQKInit, cfg.sQKScale, false);
  const aA = effective(B.attn_alpha, cfg.alphaInit, cfg.alphaScale, cfg.alphaAbs);
  const aM = effective(B.mlp_alpha, cfg.alphaInit, cfg.alphaScale, cfg.alphaAbs);
  const suv = effective(B.suv, cfg.sUVInit, cfg.sUVScale, false);
  const gain = cfg.nuGain; // NVIDIA: n_embd ** 0.5, on both halves of uv

  const qRaw = hin.map((x) => lin(B.query, d, d, x));
  const kRaw = hin.map((x) => lin(B.key, d, d, x));
  const v = hin.map((x) => lin(B.value, d, d, x));
  // per head: RoPE, justnorm, × sqk
  type Head = { n: F64; r: number; s: F64 };
  const qk = (raw: F64[]) =>
    raw.map((x, t) =>
      Array.from({ length: H }, (_, hh): Head => {
        const { y, r } = justnorm(rope(x.slice(hh * dk, (hh + 1) * dk), t, cfg.ropeBase), eps);
        return { n: y, r, s: y.map((e, j) => e * sqk.v[hh * dk + j]!) };
      }),
    );
  const q = qk(qRaw);
  const k = qk(kRaw);
  const att: F64[][] = []; // [t][hh] softmax weights over s ≤ t
  const y = hin.map(() => new Float64Array(d));
  for (let t = 0; t < T; t++) {
    const row: F64[] = [];
    for (let hh = 0; hh < H; hh++) {
      const sc = new Float64Array(t + 1);
      for (let s = 0; s <= t; s++) {
        let dot = 0;
        for (let j = 0; j < dk; j++) dot += q[t]![hh]!.s[j]! * k[s]![hh]!.s[j]!;
        sc[s] = cfg.attnScale * dot;
      }
      const m = Math.max(...sc);
      const e = sc.map((x) => Math.exp(x - m));
      const z = e.reduce((a, x) => a + x, 0);
      const a = e.map((x) => x / z);
      row.push(a);
      for (let s = 0; s <= t; s++)
        for (let j = 0; j < dk; j++) y[t]![hh * dk + j]! += a[s]! * v[s]![hh * dk + j]!;
    }
    att.push(row);
  }
  const hAtt = y.map((x) => lin(B.att_c_proj, d, d, x));
  // h ← justnorm(A + |α_A|·(B − A)), A = justnorm(h), B = justnorm(h_att)
  const A1 = hin.map((x) => justnorm(x, eps));
  const B1 = hAtt.map((x) => justnorm(x, eps));
  const h1 = A1.map((a, t) =>
    justnorm(
      a.y.map((ai, j) => ai + aA.v[j]! * (B1[t]!.y[j]! - ai)),
      eps,
    ),
  );
  // MLP: uv = suv·√d ⊙ c_fc(h); u, ν = halves; x = u ⊙ SiLU(ν); h_mlp = mlp_c_proj(x)
  const uvRaw = h1.map((x) => lin(B.c_fc, 2 * F, d, x.y));
  const uv = uvRaw.map((r) => r.map((x, i) => x * suv.v[i]! * gain));
  const xm = uv.map((r) => {
    const o = new Float64Array(F);
    for (let i = 0; i < F; i++) {
      const nu = r[F + i]!;
      o[i] = r[i]! * nu * sigmoid(nu);
    }
    return o;
  });
  const hMlp = xm.map((x) => lin(B.mlp_c_proj, d, F, x));
  const A2 = h1.map((x) => justnorm(x.y, eps));
  const B2 = hMlp.map((x) => justnorm(x, eps));
  const h2 = A2.map((a, t) =>
    justnorm(
      a.y.map((ai, j) => ai + aM.v[j]! * (B2[t]!.y[j]! - ai)),
      eps,
    ),
  );
  return {
    hin,
    qRaw,
    kRaw,
    v,
    q,
    k,
    att,
    y,
    A1,
    B1,
    h1,
    uvRaw,
    uv,
    xm,
    A2,
    B2,
    h2,
    sqk,
    aA,
    aM,
    suv,
    out: h2.map((x) => x.y),
  };
}

/** Backward of {@link blockForward}: accumulates into `G`, returns d(loss)/d(h_in) per row. */
function blockBackward(
  cfg: NGPTConfig,
  B: NvBlock,
  G: NvBlock,
  c: ReturnType<typeof blockForward>,
  dOut: F64[],
): F64[] {
  const d = cfg.dModel;
  const H = cfg.nHeads;
  const dk = d / H;
  const F = cfg.dFF;
  const T = dOut.length;
  const gain = cfg.nuGain;
  // interpolation backward: res = A + α(B − A) ⇒ dA = dres(1 − α), dB = dres·α, dα = dres(B − A)
  const lerpBack = (
    res: { y: F64; r: number },
    A: { y: F64; r: number },
    Bn: { y: F64; r: number },
    alpha: { v: F64; dv: F64 },
    gAlpha: F64,
    dy: F64,
  ) => {
    const dres = justnormBack(res.y, res.r, dy);
    const dA = new Float64Array(d);
    const dB = new Float64Array(d);
    for (let j = 0; j < d; j++) {
      dA[j] = dres[j]! * (1 - alpha.v[j]!);
      dB[j] = dres[j]! * alpha.v[j]!;
      gAlpha[j]! += dres[j]! * (Bn.y[j]! - A.y[j]!) * alpha.dv[j]!;
    }
    return { dIn: justnormBack(A.y, A.r, dA), dBranch: justnormBack(Bn.y, Bn.r, dB) };
  };
  // ---- MLP ----
  const dh1: F64[] = [];
  for (let t = 0; t < T; t++) {
    const { dIn, dBranch } = lerpBack(c.h2[t]!, c.A2[t]!, c.B2[t]!, c.aM, G.mlp_alpha, dOut[t]!);
    const dx = new Float64Array(F);
    linBack(B.mlp_c_proj, G.mlp_c_proj, d, F, c.xm[t]!, dBranch, dx);
    const duv = new Float64Array(2 * F);
    for (let i = 0; i < F; i++) {
      const u = c.uv[t]![i]!;
      const nu = c.uv[t]![F + i]!;
      const sg = sigmoid(nu);
      duv[i] = dx[i]! * nu * sg;
      duv[F + i] = dx[i]! * u * sg * (1 + nu * (1 - sg));
    }
    const duvRaw = new Float64Array(2 * F);
    for (let i = 0; i < 2 * F; i++) {
      duvRaw[i] = duv[i]! * c.suv.v[i]! * gain;
      G.suv[i]! += duv[i]! * c.uvRaw[t]![i]! * gain * c.suv.dv[i]!;
    }
    const dh = new Float64Array(d);
    linBack(B.c_fc, G.c_fc, 2 * F, d, c.h1[t]!.y, duvRaw, dh);
    for (let j = 0; j < d; j++) dh[j]! += dIn[j]!;
    dh1.push(dh);
  }
  // ---- attention ----
  const dHin = c.hin.map(() => new Float64Array(d));
  const dy = c.y.map(() => new Float64Array(d));
  for (let t = 0; t < T; t++) {
    const { dIn, dBranch } = lerpBack(c.h1[t]!, c.A1[t]!, c.B1[t]!, c.aA, G.attn_alpha, dh1[t]!);
    for (let j = 0; j < d; j++) dHin[t]![j]! += dIn[j]!;
    linBack(B.att_c_proj, G.att_c_proj, d, d, c.y[t]!, dBranch, dy[t]!);
  }
  const dqs = c.q.map(() => Array.from({ length: H }, () => new Float64Array(dk)));
  const dks = c.k.map(() => Array.from({ length: H }, () => new Float64Array(dk)));
  const dv = c.v.map(() => new Float64Array(d));
  for (let t = 0; t < T; t++) {
    for (let hh = 0; hh < H; hh++) {
      const a = c.att[t]![hh]!;
      const da = new Float64Array(t + 1);
      for (let s = 0; s <= t; s++) {
        let dot = 0;
        for (let j = 0; j < dk; j++) {
          dot += dy[t]![hh * dk + j]! * c.v[s]![hh * dk + j]!;
          dv[s]![hh * dk + j]! += a[s]! * dy[t]![hh * dk + j]!;
        }
        da[s] = dot;
      }
      let mean = 0;
      for (let s = 0; s <= t; s++) mean += a[s]! * da[s]!;
      for (let s = 0; s <= t; s++) {
        const dsc = a[s]! * (da[s]! - mean) * cfg.attnScale;
        for (let j = 0; j < dk; j++) {
          dqs[t]![hh]![j]! += dsc * c.k[s]![hh]!.s[j]!;
          dks[s]![hh]![j]! += dsc * c.q[t]![hh]!.s[j]!;
        }
      }
    }
  }
  const headsBack = (heads: { n: F64; r: number }[][], dS: F64[][], W: F64, GW: F64) => {
    for (let t = 0; t < T; t++) {
      const dRaw = new Float64Array(d);
      for (let hh = 0; hh < H; hh++) {
        const hd = heads[t]![hh]!;
        const dn = new Float64Array(dk);
        for (let j = 0; j < dk; j++) {
          const i = hh * dk + j;
          dn[j] = dS[t]![hh]![j]! * c.sqk.v[i]!;
          G.sqk[i]! += dS[t]![hh]![j]! * hd.n[j]! * c.sqk.dv[i]!;
        }
        dRaw.set(rope(justnormBack(hd.n, hd.r, dn), t, cfg.ropeBase, -1), hh * dk);
      }
      linBack(W, GW, d, d, c.hin[t]!, dRaw, dHin[t]!);
    }
  };
  headsBack(c.q, dqs, B.query, G.query);
  headsBack(c.k, dks, B.key, G.key);
  for (let t = 0; t < T; t++) linBack(B.value, G.value, d, d, c.hin[t]!, dv[t]!, dHin[t]!);
  return dHin;
}

// ---------------------------------------------------------------- the training step

/** Settings of the reference step (NVIDIA `train.py` for nGPT: AdamW, betas (0.9, 0.95), wd 0, clip 1). */
export interface RefStepConfig {
  learningRate: number;
  /** Total iterations: the cosine reaches `minLr` here (`lr_decay_iters = max_iters`). */
  maxIters: number;
  minLr: number;
  warmupIters: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  gradClip: number;
}

/** nanoGPT's `get_lr(it)`. */
export function getLr(it: number, s: RefStepConfig): number {
  if (it < s.warmupIters) return (s.learningRate * (it + 1)) / (s.warmupIters + 1);
  if (it > s.maxIters) return s.minLr;
  const ratio = (it - s.warmupIters) / (s.maxIters - s.warmupIters);
  return s.minLr + 0.5 * (1 + Math.cos(Math.PI * ratio)) * (s.learningRate - s.minLr);
}

/** PyTorch AdamW state (`exp_avg`, `exp_avg_sq`, `step`). */
export interface AdamState {
  m: NvModel;
  v: NvModel;
  step: number;
}

/**
 * One iteration of NVIDIA's training loop on one batch: loss and gradients, `clip_grad_norm_(1.0)`,
 * `optimizer.step()` (PyTorch AdamW with the learning rate of iteration `it`), then `normalize_matrices()`.
 * Updates `W` and `state` in place; returns the loss and the gradient norm before clipping.
 */
export function referenceStep(
  cfg: NGPTConfig,
  W: NvModel,
  state: AdamState,
  ids: readonly (readonly number[])[],
  targets: readonly (readonly number[])[],
  it: number,
  s: RefStepConfig,
): { loss: number; gradNorm: number } {
  const { loss, grads } = lossAndGrads(cfg, W, ids, targets);
  const ws = tensorsOf(W);
  const gs = tensorsOf(grads);
  const ms = tensorsOf(state.m);
  const vs = tensorsOf(state.v);
  let sq = 0;
  for (const g of gs) for (const x of g.t) sq += x * x;
  const gradNorm = Math.sqrt(sq);
  // torch.nn.utils.clip_grad_norm_: coef = max_norm/(total + 1e-6), clamped to ≤ 1
  const coef = s.gradClip > 0 ? Math.min(1, s.gradClip / (gradNorm + 1e-6)) : 1;
  const lr = getLr(it, s);
  state.step += 1;
  const bc1 = 1 - s.beta1 ** state.step;
  const bc2 = 1 - s.beta2 ** state.step;
  ws.forEach((w, k) => {
    const p = w.t;
    const g = gs[k]!.t;
    const m = ms[k]!.t;
    const v = vs[k]!.t;
    // NVIDIA: weight decay only on ≥ 2-D tensors, and 0.0 for nGPT anyway
    const wd = w.dim !== undefined ? s.weightDecay : 0;
    for (let i = 0; i < p.length; i++) {
      const gi = g[i]! * coef;
      p[i]! *= 1 - lr * wd;
      m[i] = s.beta1 * m[i]! + (1 - s.beta1) * gi;
      v[i] = s.beta2 * v[i]! + (1 - s.beta2) * gi * gi;
      const denom = Math.sqrt(v[i]!) / Math.sqrt(bc2) + s.eps;
      p[i]! -= (lr / bc1) * (m[i]! / denom);
    }
  });
  normalizeMatrices(W, cfg.normEps);
  return { loss, gradNorm };
}

/** NVIDIA's `normalize_matrices()`: every matrix vector of length d_model back to unit norm. */
export function normalizeMatrices(W: NvModel, eps: number): void {
  for (const { t, rows, dim } of tensorsOf(W)) {
    if (dim === undefined) continue;
    const cols = t.length / rows;
    if (dim === 1) {
      for (let r = 0; r < rows; r++) {
        let s = 0;
        for (let c = 0; c < cols; c++) s += t[r * cols + c]! ** 2;
        const n = Math.sqrt(s + eps);
        for (let c = 0; c < cols; c++) t[r * cols + c]! /= n;
      }
    } else {
      for (let c = 0; c < cols; c++) {
        let s = 0;
        for (let r = 0; r < rows; r++) s += t[r * cols + c]! ** 2;
        const n = Math.sqrt(s + eps);
        for (let r = 0; r < rows; r++) t[r * cols + c]! /= n;
      }
    }
  }
}
