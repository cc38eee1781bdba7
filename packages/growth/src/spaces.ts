/**
 * The index maps behind every width transform (Growth guide, "Width"). A model's tensors live in a few vector spaces:
 * the residual stream (`residual`, d_model), the concatenated attention heads (`attn`, heads × head dim), the
 * fused `qkv` output (three `attn` blocks q | k | v), the encoder-decoder cross-attention's query `q` (one
 * `attn` block) and fused key | value `kv` (two), the MLP hidden units (`ffn`, d_ff), and spaces that
 * never grow (`fixed`: vocabulary, context, scalars). A {@link SpaceMap} says, for every index of the grown
 * space, which index of the small space it copies and with which coefficient, depending on how the tensor
 * *uses* that axis ({@link AxisUse}).
 *
 * @module
 */

/** The spaces a tensor axis can live in. */
export type SpaceName = 'residual' | 'attn' | 'qkv' | 'q' | 'kv' | 'ffn' | 'fixed';

/**
 * How a tensor uses one of its axes:
 * - `write`: the tensor produces vectors of that space (output columns of a matrix, embedding rows, the bias
 *   of a layer that writes the space) — the covariant side;
 * - `read`: the tensor consumes vectors of that space (input rows of a matrix) — the contravariant side;
 * - `gain` / `bias`: the affine weights of a LayerNorm/RMSNorm over that space;
 * - `mult`: an elementwise multiplier of vectors of that space (Admin's ω, LayerScale's λ, nGPT's α, s_qk,
 *   s_u, s_ν);
 * - `fixed`: an axis that does not grow.
 */
export type AxisUse = 'write' | 'read' | 'gain' | 'bias' | 'mult' | 'fixed';

/** Space and use of one tensor axis. */
export interface AxisSpec {
  /** The vector space the axis indexes: residual stream, attention heads, q/k/v, FFN units, or none. */
  readonly space: SpaceName;
  /** How the tensor uses it (writes, reads, normalizes or scales vectors of the space). */
  readonly use: AxisUse;
}

/** One {@link AxisSpec} per tensor axis: what growth needs to know about a parameter. */
export type ParamLayout = readonly AxisSpec[];

/**
 * What a new index (one with no source in the small space) holds:
 * `zero`; `free` (any value keeps the function — filled with small random numbers so it can learn);
 * `mean` (the mean of the old coordinates, LEMON-style average coordinates); `fill` (for vectors: the mean of
 * the mapped old entries, e.g. a new norm gain).
 */
export type FreshKind = 'zero' | 'free' | 'mean' | 'fill';

/** The map of one axis for one use. */
export interface AxisMap {
  /** Size of the axis in the grown model. */
  readonly bigSize: number;
  /** Size of the axis in the small model. */
  readonly smallSize: number;
  /** Source index in the small space per big index, −1 for new indices. */
  readonly src: Int32Array;
  /** Value coefficient per big index (entries with a source). */
  readonly coef: Float64Array;
  /** Number of big indices sharing the source of each big index. */
  readonly copies: Float64Array;
  /** What new indices hold. */
  readonly fresh: FreshKind;
}

/** How the residual stream grows. */
export type ResidualMode = 'identity' | 'isometric' | 'tile' | 'zero-pad' | 'average' | 'weighted';

/** A map from a small space to a grown one. */
export interface SpaceMap {
  /** Size of the space in the small model. */
  readonly smallSize: number;
  /** Size of the space in the grown model. */
  readonly bigSize: number;
  /** True when the map is the identity. */
  readonly identity: boolean;
  /** True when every small index is copied the same number of times and nothing is new. */
  readonly uniform: boolean;
  /** The map for one use of the axis. */
  axis(use: AxisUse): AxisMap;
  /**
   * Copy groups per big index (the source index; −1 for new indices): indices of one group receive equal
   * inputs, which is what paired ±noise needs (HyperCloning, arXiv 2409.12903).
   */
  readonly groups: Int32Array;
}

function counts(src: Int32Array, smallSize: number): Float64Array {
  const c = new Float64Array(smallSize);
  for (const s of src) if (s >= 0) c[s]! += 1;
  const out = new Float64Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = src[i]! >= 0 ? c[src[i]!]! : 0;
  return out;
}

function makeMap(
  smallSize: number,
  src: Int32Array,
  coefOf: (use: AxisUse, i: number) => number,
  freshOf: (use: AxisUse) => FreshKind,
  identity: boolean,
): SpaceMap {
  const copies = counts(src, smallSize);
  const uniform = src.every((s) => s >= 0) && copies.every((c) => c === copies[0]);
  const cache = new Map<AxisUse, AxisMap>();
  return {
    smallSize,
    bigSize: src.length,
    identity,
    uniform,
    groups: src,
    axis(use) {
      let m = cache.get(use);
      if (!m) {
        const coef = new Float64Array(src.length);
        for (let i = 0; i < src.length; i++) coef[i] = src[i]! >= 0 ? coefOf(use, i) : 0;
        m = { bigSize: src.length, smallSize, src, coef, copies, fresh: freshOf(use) };
        cache.set(use, m);
      }
      return m;
    },
  };
}

/** The identity map of a space of size `n`. */
export function identityMap(n: number): SpaceMap {
  const src = new Int32Array(n);
  for (let i = 0; i < n; i++) src[i] = i;
  return makeMap(
    n,
    src,
    () => 1,
    () => 'zero',
    true,
  );
}

/**
 * The residual-stream map from width `d` to `d2` (Growth guide, "Width"):
 * - `isometric` (Su, kexue.fm/archives/8444): `h′ = [h; h; …]/√k` (k = d2/d integer; big index `c·d + i`
 *   copies `i`). Writers and readers ×1/√k, norm gains and biases ×1/√k with eps ÷k, multipliers ×1.
 *   `MᵀM = I`, so a tied head needs nothing.
 * - `tile` (HyperCloning): `h′ = [h; h; …]`. Writers ×1, readers ×1/k, norm affines ×1, eps unchanged,
 *   multipliers ×1; a tied head reads k copies (fixed by the final norm ÷k).
 * - `zero-pad` (Gesmundo & Maile; RMSNorm): `h′ = [h; 0]` for any d2 > d. Writers write 0 to the new
 *   coordinates, readers' new rows are free, old RMSNorm gains ×√(d/d2) with eps ×d/d2.
 * - `average` (LEMON-style; LayerNorm, pre-norm only): new coordinates hold the mean of the old ones, so the
 *   LN mean is unchanged and the variance scales by d/d2: old gains ×√(d/d2), biases ×1, eps ×d/d2, new
 *   biases 0, readers' new rows free.
 * - `weighted` (any d2 > d; families without norm gains, nGPT): coordinate `i` is copied `c_i` times (big
 *   index `j` copies `j mod d`) with weight `1/√c_i` — the isometric map with unequal copy counts. Its
 *   columns have disjoint supports and unit norm, so `MᵀM = I`: norms and dot products are kept, `Norm(Mx) =
 *   M·Norm(x)`, and a coordinatewise multiplier tiled per copy commutes with it. Writers and readers ×1/√c_i,
 *   multipliers ×1.
 */
export function residualMap(mode: ResidualMode, d: number, d2: number): SpaceMap {
  if (mode === 'identity' || d === d2) return identityMap(d);
  const src = new Int32Array(d2);
  if (mode === 'weighted') {
    for (let i = 0; i < d2; i++) src[i] = i % d;
    const copies = counts(src, d);
    return makeMap(
      d,
      src,
      (use, i) => (use === 'mult' || use === 'fixed' ? 1 : 1 / Math.sqrt(copies[i]!)),
      () => 'zero',
      false,
    );
  }
  if (mode === 'isometric' || mode === 'tile') {
    if (d2 % d !== 0) throw new Error(`residual map ${mode} needs an integer factor, got ${d} → ${d2}`);
    for (let i = 0; i < d2; i++) src[i] = i % d;
    const k = d2 / d;
    const iso = mode === 'isometric';
    return makeMap(
      d,
      src,
      (use) => {
        switch (use) {
          case 'write':
          case 'gain':
          case 'bias':
            return iso ? 1 / Math.sqrt(k) : 1;
          case 'read':
            return iso ? 1 / Math.sqrt(k) : 1 / k;
          default:
            return 1;
        }
      },
      () => 'zero',
      false,
    );
  }
  for (let i = 0; i < d2; i++) src[i] = i < d ? i : -1;
  const g = Math.sqrt(d / d2);
  const average = mode === 'average';
  return makeMap(
    d,
    src,
    (use) => (use === 'gain' ? g : 1),
    (use) => {
      switch (use) {
        case 'write':
          return average ? 'mean' : 'zero';
        case 'read':
          return 'free';
        case 'gain':
        case 'mult':
          return 'fill';
        default:
          return 'zero';
      }
    },
    false,
  );
}

/** The factor the norm eps takes under a residual map (Growth guide, "Width"). */
export function residualEpsFactor(mode: ResidualMode, d: number, d2: number): number {
  switch (mode) {
    case 'isometric':
    case 'weighted':
    case 'zero-pad':
    case 'average':
      return d / d2;
    default:
      return 1;
  }
}

/**
 * Source feature of grown head-dim index `p2` when the head dim grows `hd → b·hd`.
 * - `pairs` (RoPE, rotate-half: feature j pairs with j + hd/2): the first half of the grown head is the small
 *   head's first half repeated b times, the second half its second half repeated b times, so every grown
 *   rotation pair (p, p + b·hd/2) is a copy of a small pair (Growth guide, "Width": RoPE). Each copy must keep the small
 *   pair's frequency (a repeated RoPE table).
 * - otherwise: the small head repeated b times.
 */
export function headFeatureSource(p2: number, hd: number, b: number, pairs: boolean): number {
  if (!pairs) return p2 % hd;
  const half = hd / 2;
  const half2 = b * half;
  return p2 < half2 ? p2 % half : half + ((p2 - half2) % half);
}

/**
 * The map of the concatenated attention heads, from `H` heads of `hd` to `H2` heads of `b·hd` (Growth guide, "Width";
 * "internal duplication"): grown head `h′` copies head `h′ mod H` (HyperCloning, LEMON, MSG keep head_dim and
 * add heads; `H2` need not be a multiple of `H`, Net2Net-style), and each head's features are repeated per
 * {@link headFeatureSource}. Copies are exact (coefficient 1); whatever reads them (`read`) divides by the
 * number of copies when `readScale` is `mean` (GPT's W_o), or not at all when `copy` (nGPT, whose W_o output
 * is re-normalized).
 */
export function headMap(
  H: number,
  hd: number,
  H2: number,
  b: number,
  options: { pairs: boolean; readScale: 'mean' | 'copy' },
): SpaceMap {
  const hd2 = hd * b;
  const src = new Int32Array(H2 * hd2);
  for (let h2 = 0; h2 < H2; h2++) {
    for (let p2 = 0; p2 < hd2; p2++) {
      src[h2 * hd2 + p2] = (h2 % H) * hd + headFeatureSource(p2, hd, b, options.pairs);
    }
  }
  const copies = counts(src, H * hd);
  return makeMap(
    H * hd,
    src,
    (use, i) => (use === 'read' && options.readScale === 'mean' ? 1 / copies[i]! : 1),
    () => 'zero',
    H2 === H && b === 1,
  );
}

/**
 * The map of the MLP hidden units from `F` to `F2` (Net2Net, arXiv 1511.05641): unit `j′` copies unit
 * `j′ mod F`; readers divide by the copy count (`mean`, GPT) or not (`copy`, nGPT). Exact for any activation
 * because the pre-activations are exact copies (Net2Net, arXiv 1511.05641: GELU/SwiGLU must be duplicated, not rescaled).
 */
export function unitMap(F: number, F2: number, readScale: 'mean' | 'copy'): SpaceMap {
  const src = new Int32Array(F2);
  for (let j = 0; j < F2; j++) src[j] = j % F;
  const copies = counts(src, F);
  return makeMap(
    F,
    src,
    (use, i) => (use === 'read' && readScale === 'mean' ? 1 / copies[i]! : 1),
    () => 'zero',
    F2 === F,
  );
}

/**
 * The fused `q | k | v` space: three blocks of the attention map; on the `write` side the q and k blocks take
 * the extra factor `qkFactor` (b^(−1/4) for a scaled dot product when the head dim grows by b: q′·k′ = b·q·k
 * for duplicated features while 1/√d_head shrinks by √b — HyperCloning, arXiv 2409.12903).
 */
export function qkvMap(attn: SpaceMap, qkFactor: number): SpaceMap {
  return fusedMap(attn, qkFactor, ['q', 'k', 'v']);
}

/**
 * A fused projection's output space: one block of the attention map per part (`['q', 'k', 'v']` for
 * self-attention's `qkv`; `['q']` and `['k', 'v']` for the encoder-decoder's cross-attention `q` and `kv`);
 * on the `write` side the q and k blocks take the extra factor `qkFactor` (see {@link qkvMap}).
 */
export function fusedMap(attn: SpaceMap, qkFactor: number, parts: readonly ('q' | 'k' | 'v')[]): SpaceMap {
  const n = attn.smallSize;
  const n2 = attn.bigSize;
  const P = parts.length;
  const src = new Int32Array(P * n2);
  for (let part = 0; part < P; part++) {
    for (let i = 0; i < n2; i++) {
      const s = attn.groups[i]!;
      src[part * n2 + i] = s < 0 ? -1 : part * n + s;
    }
  }
  const cache = new Map<AxisUse, AxisMap>();
  const copies = counts(src, P * n);
  return {
    smallSize: P * n,
    bigSize: P * n2,
    identity: attn.identity && (qkFactor === 1 || parts.every((p) => p === 'v')),
    uniform: attn.uniform,
    groups: src,
    axis(use) {
      let m = cache.get(use);
      if (!m) {
        const a = attn.axis(use);
        const coef = new Float64Array(P * n2);
        for (let part = 0; part < P; part++) {
          const f = use === 'write' && parts[part] !== 'v' ? qkFactor : 1;
          for (let i = 0; i < n2; i++) coef[part * n2 + i] = a.coef[i]! * f;
        }
        m = { bigSize: P * n2, smallSize: P * n, src, coef, copies, fresh: a.fresh };
        cache.set(use, m);
      }
      return m;
    },
  };
}
