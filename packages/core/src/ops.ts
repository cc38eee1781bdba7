/**
 * Tensor building blocks shared by every model family. They are written for tfjs's wasm backend, which
 * runs only plain, untransposed 2-D matmuls on its fast (XNNPACK) path: see the Backends guide.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  attentionFast,
  colSumFast,
  crossEntropyFast,
  embeddingFast,
  geluFast,
  l2NormColsFast,
  l2NormFast,
  layerNormFast,
  matMulFast,
  ngptResidualFast,
  qkNormFast,
  rmsNormFast,
  strataKernelsActive,
  sumSquaresFast,
  swigluFast,
} from './kernels/index.js';

export {
  type AdamWStep,
  adamWFast,
  installStrataKernels,
  kernelsVariant,
  setStrataKernels,
  strataKernelsActive,
  strataKernelsEnabled,
  strataKernelsError,
  sumSquaresFast,
} from './kernels/index.js';
export {
  createIncrementalDecoder,
  type IncrementalDecoder,
  type IncrementalModel,
  KVCache,
  supportsKVCache,
} from './kernels/kv-cache.js';

/**
 * On the wasm backend, the ops below run Strata's own SIMD kernels (`kernels/`), registered as tfjs kernels
 * with gradients: a GEMM that handles transposed and batched products at full speed, fused attention,
 * LayerNorm/RMSNorm, GELU, cross-entropy and embedding. On every other backend (and with `STRATA_KERNELS=0`)
 * they are the tfjs compositions shown in each function, which compute the same math.
 */
const fast = (...ts: (tf.Tensor | undefined)[]) =>
  strataKernelsActive() && ts.every((t) => t === undefined || t.dtype === 'float32');

/**
 * `a · b` for 2-D tensors, with a gradient that uses explicit transposes and plain matmuls only
 * (`dA = dY · transpose(B)`, `dB = transpose(A) · dY`). tfjs's own gradient uses `transposeA/B` flags,
 * which fall off wasm's fast path (≈10× slower); this made a training step 3.3× faster.
 *
 * @param a `[m, k]`
 * @param b `[k, n]`
 * @returns `[m, n]`
 */
export function matmul2d(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  return fast(a, b) ? matMulFast(a, b) : matmul2dComposite(a, b);
}

/**
 * `a · bᵀ` for 2-D tensors (e.g. a tied output head `x · Eᵀ`), without materializing the transpose on wasm.
 * @param a `[m, k]`
 * @param b `[n, k]`
 * @returns `[m, n]`
 */
export function matmulTransposeB(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  return fast(a, b) ? matMulFast(a, b, false, true) : matmul2dComposite(a, tf.transpose(b) as tf.Tensor2D);
}

const matmul2dComposite: (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D = tf.customGrad(
  // biome-ignore lint/suspicious/noExplicitAny: tfjs's customGrad typing
  (a: any, b: any, save: any) => {
    save([a, b]);
    return {
      value: tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sa, sb] = saved as [tf.Tensor2D, tf.Tensor2D];
        return [
          tf.matMul(dy as tf.Tensor2D, tf.transpose(sb)),
          tf.matMul(tf.transpose(sa), dy as tf.Tensor2D),
        ];
      },
    };
  },
) as unknown as (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;

/**
 * Batched `a · b` for 3-D tensors (`[batch, m, k] · [batch, k, n]`), with a gradient that transposes
 * explicitly instead of passing `transposeA/B` flags.
 */
export function batchMatmul(a: tf.Tensor3D, b: tf.Tensor3D): tf.Tensor3D {
  // On wasm, Strata's BatchMatMul override runs every transposed/batched form at full speed, so tfjs's own
  // gradient (which uses the transpose flags) is the fast one.
  return fast(a, b) ? (tf.matMul(a, b) as tf.Tensor3D) : batchMatmulComposite(a, b);
}

const batchMatmulComposite: (a: tf.Tensor3D, b: tf.Tensor3D) => tf.Tensor3D = tf.customGrad(
  // biome-ignore lint/suspicious/noExplicitAny: tfjs's customGrad typing
  (a: any, b: any, save: any) => {
    save([a, b]);
    return {
      value: tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sa, sb] = saved as [tf.Tensor3D, tf.Tensor3D];
        return [
          tf.matMul(dy as tf.Tensor3D, tf.transpose(sb, [0, 2, 1])),
          tf.matMul(tf.transpose(sa, [0, 2, 1]), dy as tf.Tensor3D),
        ];
      },
    };
  },
) as unknown as (a: tf.Tensor3D, b: tf.Tensor3D) => tf.Tensor3D;

/**
 * Affine map `x · W + b` on rows. `W` is stored `[in, out]` (the tfjs and Hugging Face Conv1D layout).
 * @param x `[rows, in]`
 * @param w `[in, out]`
 * @param b `[out]` or undefined
 */
export function linear(x: tf.Tensor2D, w: tf.Tensor2D, b?: tf.Tensor1D): tf.Tensor2D {
  if (fast(x, w, b) && (!b || b.rank === 1)) return matMulFast(x, w, false, false, b);
  const y = matmul2d(x, w);
  return b ? tf.add(y, b) : y;
}

/**
 * Embedding lookup `E[ids]` with a gradient computed as `transpose(oneHot(ids)) · dY` (a plain matmul),
 * because `tf.gather`'s gradient needs `UnsortedSegmentSum`, which the wasm backend lacks.
 * @param table `[vocab, d]`
 * @param ids `[n]` int32
 * @returns `[n, d]`
 */
export function embeddingLookup(table: tf.Tensor2D, ids: tf.Tensor1D): tf.Tensor2D {
  if (fast(table) && ids.dtype === 'int32') return embeddingFast(table, ids);
  return embeddingLookupGrad(table, ids);
}

/**
 * Token embedding plus learned positions for a `[batch, seqLen]` block of ids given flat:
 * `E[ids[b·T + t]] + P[t]`. One fused kernel (forward and backward) on wasm.
 * @param table `[vocab, d]`
 * @param ids `[batch·seqLen]` int32
 * @param positions `[contextLength, d]`, rows `0..seqLen−1` are used
 * @returns `[batch·seqLen, d]`
 */
export function embedWithPositions(
  table: tf.Tensor2D,
  ids: tf.Tensor1D,
  positions: tf.Tensor2D,
  seqLen: number,
): tf.Tensor2D {
  if (fast(table, positions) && ids.dtype === 'int32') return embeddingFast(table, ids, positions, seqLen);
  const d = table.shape[1];
  const n = ids.shape[0];
  const x = embeddingLookupGrad(table, ids);
  const pos = tf.slice(positions, [0, 0], [seqLen, d]);
  return tf.reshape(tf.add(tf.reshape(x, [n / seqLen, seqLen, d]), pos), [n, d]) as tf.Tensor2D;
}

const embeddingLookupGrad = tf.customGrad(
  // biome-ignore lint/suspicious/noExplicitAny: tfjs's customGrad typing
  (t: any, ids: any, save: any) => {
    // `ids` is saved (not captured), so it outlives the forward pass's tidy scopes until backprop.
    save([ids]);
    const vocab = (t as tf.Tensor2D).shape[0];
    return {
      value: tf.gather(t as tf.Tensor2D, ids as tf.Tensor1D),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const idsSaved = saved[0] as tf.Tensor1D;
        const oh = oneHotFloat(idsSaved, vocab);
        return [tf.matMul(tf.transpose(oh), dy as tf.Tensor2D), tf.zerosLike(idsSaved)];
      },
    };
  },
) as unknown as (table: tf.Tensor2D, ids: tf.Tensor1D) => tf.Tensor2D;

/**
 * LayerNorm over the last axis: `(x − mean) / sqrt(var + eps) · g + b`, biased variance (as PyTorch).
 */
export function layerNorm(
  x: tf.Tensor,
  gain: tf.Tensor | undefined,
  bias: tf.Tensor | undefined,
  eps: number,
) {
  if (fast(x, gain, bias) && isLastAxisVector(x, gain) && isLastAxisVector(x, bias))
    return layerNormFast(x, gain, bias, eps);
  const axis = x.rank - 1;
  const mean = tf.mean(x, axis, true);
  const xc = tf.sub(x, mean);
  const variance = tf.mean(tf.mul(xc, xc), axis, true);
  let y = tf.mul(xc, tf.rsqrt(tf.add(variance, eps)));
  if (gain) y = tf.mul(y, gain);
  if (bias) y = tf.add(y, bias);
  return y;
}

/** RMSNorm over the last axis: `x / sqrt(mean(x²) + eps) · g` (Zhang & Sennrich 2019). */
export function rmsNorm(x: tf.Tensor, gain: tf.Tensor | undefined, eps: number) {
  if (fast(x, gain) && isLastAxisVector(x, gain)) return rmsNormFast(x, gain, eps);
  const ms = tf.mean(tf.mul(x, x), x.rank - 1, true);
  const y = tf.mul(x, tf.rsqrt(tf.add(ms, eps)));
  return gain ? tf.mul(y, gain) : y;
}

/** True when `v` is absent or a vector as long as `x`'s last axis (what the fused norm kernels take). */
function isLastAxisVector(x: tf.Tensor, v: tf.Tensor | undefined): boolean {
  return v === undefined || (v.rank === 1 && v.shape[0] === x.shape[x.rank - 1]);
}

/**
 * L2 normalization along `axis`: `x / sqrt(Σx² + eps)` (nGPT's `Norm`, eps guards zero vectors). On wasm, along
 * the last axis it is one fused kernel (forward and backward in one pass each) computing
 * `x/√(Σx² + ε) = RMSNorm(x; ε/n)/√n` for n entries, the same value to float32 rounding; down the columns of a
 * matrix (axis 0 of a 2-D tensor: nGPT's re-projection of `[d, ·]` weights) another one.
 */
export function l2Normalize(x: tf.Tensor, axis = -1, eps = 1e-12) {
  const ax = axis < 0 ? x.rank + axis : axis;
  if (ax === x.rank - 1 && fast(x)) return l2NormFast(x, eps);
  if (ax === 0 && x.rank === 2 && fast(x)) return l2NormColsFast(x as tf.Tensor2D, eps);
  return tf.mul(x, tf.rsqrt(tf.add(tf.sum(tf.mul(x, x), ax, true), eps)));
}

/**
 * nGPT's normalized residual update over the last axis, in NVIDIA's form (the stream normalized again first):
 * `A = Norm(h)`, `Norm(A + alpha ⊙ (Norm(b) − A))` with `Norm` = {@link l2Normalize}. In the forward pass the
 * first `Norm` changes nothing when `h` is unit-norm; in the backward pass it removes the radial part of the
 * gradient flowing into `h`. One fused kernel (forward and backward) on wasm, the same float32 operations as
 * the composition shown here.
 * @param h the stream `[…, d]`
 * @param b the branch output `[…, d]` (`h_A` or `h_M`)
 * @param alpha effective eigen learning rates `[d]`
 */
export function normalizedResidual(h: tf.Tensor, b: tf.Tensor, alpha: tf.Tensor, eps = 1e-12): tf.Tensor {
  const d = h.shape[h.rank - 1]!;
  if (alpha.rank !== 1 || alpha.shape[0] !== d || b.shape.join() !== h.shape.join())
    throw new Error(
      `normalizedResidual: h [${h.shape}], b [${b.shape}] and alpha [${alpha.shape}] must share the last axis`,
    );
  if (fast(h, b, alpha)) return ngptResidualFast(h, b, alpha, eps);
  const a = l2Normalize(h, -1, eps);
  return l2Normalize(tf.add(a, mulLastAxis(tf.sub(l2Normalize(b, -1, eps), a), alpha)), -1, eps);
}

/**
 * `x ⊙ s` with `s` a vector as long as `x`'s last axis (a per-feature scale), whose gradient for `s` is a
 * column sum of `dy ⊙ x` over all rows: the SIMD column-sum kernel on wasm instead of tfjs's reduction over
 * the broadcast axes (slow there). The value and the gradient for `x` are exactly `tf.mul`'s.
 */
export function mulLastAxis(x: tf.Tensor, s: tf.Tensor): tf.Tensor {
  if (s.rank !== 1 || s.shape[0] !== x.shape[x.rank - 1])
    throw new Error(`mulLastAxis: scale of shape [${s.shape}] does not match the last axis of [${x.shape}]`);
  return mulLastAxisGrad(x, s);
}
const mulLastAxisGrad = tf.customGrad(
  // biome-ignore lint/suspicious/noExplicitAny: tfjs's customGrad typing
  (x: any, s: any, save: any) => {
    save([x, s]);
    return {
      value: tf.mul(x as tf.Tensor, s as tf.Tensor),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ss] = saved as [tf.Tensor, tf.Tensor];
        const prod = tf.mul(dy, xs);
        const ds = fast(prod) ? colSumFast(prod) : tf.sum(tf.reshape(prod, [-1, ss.shape[0]!]), 0);
        return [tf.mul(dy, ss), ds];
      },
    };
  },
) as unknown as (x: tf.Tensor, s: tf.Tensor) => tf.Tensor;

/**
 * GELU, tanh approximation (GPT-2's `gelu_new`): `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
 * `x·x·x` instead of `pow` is faster on wasm.
 */
export function geluTanh(x: tf.Tensor) {
  if (fast(x)) return geluFast(x);
  const inner = tf.mul(tf.add(x, tf.mul(tf.mul(tf.mul(x, x), x), 0.044715)), Math.sqrt(2 / Math.PI));
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
}

/** Exact GELU: `0.5·x·(1 + erf(x/√2))`. */
export function geluErf(x: tf.Tensor) {
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
}

/** SiLU / swish: `x·σ(x)`. */
export function silu(x: tf.Tensor) {
  return tf.mul(x, tf.sigmoid(x));
}

/**
 * The SwiGLU product `(up ⊙ upScale) ⊙ SiLU(gate ⊙ gateScale)`, with optional per-feature scales over the
 * last axis (nGPT's `s_u`, `s_ν`; give both or neither). One fused kernel (forward and backward) on wasm; the
 * composition with {@link mulLastAxis} and {@link silu} elsewhere (the same products; σ's exp differs by
 * float32 round-off).
 */
export function swiGLU(
  up: tf.Tensor,
  gate: tf.Tensor,
  upScale?: tf.Tensor,
  gateScale?: tf.Tensor,
): tf.Tensor {
  if (up.shape.join() !== gate.shape.join())
    throw new Error(`swiGLU: up [${up.shape}] and gate [${gate.shape}] differ in shape`);
  if (!upScale !== !gateScale) throw new Error('swiGLU: give both upScale and gateScale, or neither');
  const C = up.shape[up.rank - 1]!;
  for (const s of [upScale, gateScale])
    if (s && (s.rank !== 1 || s.shape[0] !== C))
      throw new Error(`swiGLU: scale of shape [${s.shape}] does not match the last axis of [${up.shape}]`);
  if (fast(up, gate, upScale, gateScale)) return swigluFast(up, gate, upScale, gateScale);
  const u = upScale ? mulLastAxis(up, upScale) : up;
  const g = gateScale ? mulLastAxis(gate, gateScale) : gate;
  return tf.mul(u, silu(g));
}

/**
 * Mean token cross-entropy from logits.
 * @param logits `[n, vocab]`
 * @param targets `[n]` int32
 */
export function crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  if (fast(logits) && targets.dtype === 'int32') return crossEntropyFast(logits, targets);
  const logp = tf.logSoftmax(logits);
  const oh = oneHotFloat(targets, logits.shape[1]);
  return tf.neg(tf.mean(tf.sum(tf.mul(logp, oh), 1))) as tf.Scalar;
}

/**
 * Mean cross-entropy over the rows whose target is `>= 0`; rows with a negative target (`-1`: a padding or
 * unmasked position) are ignored. Used by masked-language modelling and padded sequence-to-sequence
 * targets. With no negative target it equals {@link crossEntropy}. Returns 0 when every row is ignored.
 */
export function maskedCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const valid = tf.cast(tf.greaterEqual(targets, 0), 'float32');
    const safe = tf.maximum(targets, tf.scalar(0, 'int32')) as tf.Tensor1D;
    const logp = tf.logSoftmax(logits);
    const rows = tf.neg(tf.sum(tf.mul(logp, oneHotFloat(safe, logits.shape[1])), 1));
    return tf.div(tf.sum(tf.mul(rows, valid)), tf.maximum(tf.sum(valid), 1)) as tf.Scalar;
  });
}

/**
 * The training loss of a batch: {@link crossEntropy} when every target is a token, else
 * {@link maskedCrossEntropy} (targets `-1` ignored). `hasIgnored` says which (computed from the host array).
 */
export function tokenLoss(logits: tf.Tensor, targets: tf.Tensor1D, hasIgnored: boolean): tf.Scalar {
  const V = logits.shape[logits.rank - 1]!;
  const flat = tf.reshape(logits, [-1, V]) as tf.Tensor2D;
  return hasIgnored ? maskedCrossEntropy(flat, targets) : crossEntropy(flat, targets);
}

/**
 * Rotary position embedding tables in the rotate-half (GPT-NeoX / Hugging Face Llama) convention: feature
 * `j` and `j + d/2` form a pair rotated by angle `pos · base^(−2j/d)`.
 * @returns `cos`, `sin`: `[seqLen, headDim]` (each half repeated), as plain arrays for caching.
 */
export function ropeTables(
  seqLen: number,
  headDim: number,
  base = 10000,
  offset = 0,
  repeat = 1,
): {
  /** `cos(angle)`, row-major `[seqLen, headDim]`. */
  cos: Float32Array;
  /** `sin(angle)`, row-major `[seqLen, headDim]`. */
  sin: Float32Array;
} {
  if (headDim % 2 !== 0) throw new Error(`RoPE needs an even head dimension, got ${headDim}`);
  const half = headDim / 2;
  if (!Number.isInteger(repeat) || repeat < 1 || half % repeat !== 0) {
    throw new Error(`RoPE repeat must be a positive integer dividing headDim/2 = ${half}, got ${repeat}`);
  }
  // With repeat r (set by head-dim growth), pair p rotates at base^(−2·(p mod period)/dim): the small model's
  // frequencies, each repeated r times (Growth guide, "Width": RoPE).
  const period = half / repeat;
  const dim = headDim / repeat;
  const cos = new Float32Array(seqLen * headDim);
  const sin = new Float32Array(seqLen * headDim);
  for (let t = 0; t < seqLen; t++) {
    for (let j = 0; j < half; j++) {
      const angle = (t + offset) * base ** ((-2 * (j % period)) / dim);
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      cos[t * headDim + j] = c;
      cos[t * headDim + j + half] = c;
      sin[t * headDim + j] = s;
      sin[t * headDim + j + half] = s;
    }
  }
  return { cos, sin };
}

/**
 * Applies RoPE to `x` `[..., seq, headDim]`: `x·cos + rotateHalf(x)·sin`, with
 * `rotateHalf([x1, x2]) = [−x2, x1]`. A rotation in each pair, so it preserves norms.
 * @param cos `[seq, headDim]` tensor
 * @param sin `[seq, headDim]` tensor
 */
export function applyRope(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor {
  const d = x.shape[x.rank - 1]!;
  const half = d / 2;
  const [x1, x2] = tf.split(x, [half, half], x.rank - 1) as [tf.Tensor, tf.Tensor];
  const rotated = tf.concat([tf.neg(x2), x1], x.rank - 1);
  return tf.add(tf.mul(x, cos), tf.mul(rotated, sin));
}

/** Additive causal mask `[seq, seq]`: 0 on and below the diagonal, −1e9 above (exp underflows to exactly 0). */
export function causalMask(seqLen: number): tf.Tensor2D {
  const m = new Float32Array(seqLen * seqLen);
  for (let i = 0; i < seqLen; i++) for (let j = i + 1; j < seqLen; j++) m[i * seqLen + j] = -1e9;
  return tf.tensor2d(m, [seqLen, seqLen]);
}

/** Global L2 norm of a list of tensors, as a scalar tensor. */
export function globalNorm(ts: readonly tf.Tensor[]): tf.Scalar {
  if (ts.length > 0 && fast(...ts)) return tf.tidy(() => tf.sqrt(sumSquaresFast(ts)) as tf.Scalar);
  return tf.tidy(() => tf.sqrt(tf.addN(ts.map((t) => tf.sum(tf.mul(t, t))))) as tf.Scalar);
}

/**
 * One-hot rows as float32. Built as int32 then cast: tfjs-backend-wasm 4.22's `OneHot` kernel ignores a
 * float32 dtype and writes int32 bit patterns (1 reads as 1.4e-45), which silently zeroes losses.
 * @param ids `[n]` int32
 * @returns `[n, depth]`
 */
export function oneHotFloat(ids: tf.Tensor1D, depth: number): tf.Tensor2D {
  return tf.tidy(() => tf.cast(tf.oneHot(ids, depth), 'float32') as tf.Tensor2D);
}

/** Options of {@link causalSelfAttention}. */
export interface AttentionOptions {
  /** Sequences in the batch (`B`). */
  batch: number;
  /** Tokens per sequence (`T`). */
  seqLen: number;
  /** Attention heads (`H`); the head dimension is `d / H`. */
  heads: number;
  /** RoPE tables `[T, headDim]` (see {@link ropeTables}), applied to q and k. */
  rope?: {
    /** `cos` of each position's angles, `[T, headDim]`. */
    cos: tf.Tensor;
    /** `sin` of each position's angles, `[T, headDim]`. */
    sin: tf.Tensor;
  };
  /** Additive causal mask `[T, T]` ({@link causalMask}); made on the fly when absent. */
  mask?: tf.Tensor;
  /** Dropout on the attention probabilities (training only); forces the composite path. */
  dropout?: (t: tf.Tensor) => tf.Tensor;
  /** Softmax scale: `softmax(scale · q·kᵀ + mask)` (default `1/√d_k`; nGPT uses `√d_k`). */
  scale?: number;
  /**
   * nGPT's q/k normalization, after RoPE: `q ← gain ⊙ Norm(q)`, `k ← gain ⊙ Norm(k)` per head, Norm =
   * {@link l2Normalize} over the head dimension.
   */
  qkNorm?: {
    /** Per-feature gain `[d]` (head h uses entries `h·d_k … (h+1)·d_k − 1`): nGPT's effective `s_qk`. */
    gain: tf.Tensor;
    /** `eps` of the Norm. */
    eps: number;
  };
}

/**
 * Causal multi-head self-attention on a fused QKV activation: splits q | k | v (heads contiguous inside each),
 * applies RoPE if given (then nGPT's q/k normalization if given), `softmax(scale · q·kᵀ + mask)·v` per head,
 * and merges the heads back. On wasm, fused kernels (forward and backward): the q/k normalization with its RoPE
 * in one pass over `qkv`, then the attention; the tfjs composition below elsewhere or with dropout.
 * @param qkv `[B·T, 3d]`
 * @returns `[B·T, d]`
 */
export function causalSelfAttention(qkv: tf.Tensor2D, o: AttentionOptions): tf.Tensor2D {
  const { batch: B, seqLen: T, heads: H } = o;
  const d = qkv.shape[1] / 3;
  if (!Number.isInteger(d) || d % H !== 0)
    throw new Error(`causalSelfAttention: qkv width ${qkv.shape[1]} is not 3·d with d divisible by ${H}`);
  const hd = d / H;
  const scale = o.scale ?? 1 / Math.sqrt(hd);
  const qn = o.qkNorm;
  if (qn && (qn.gain.rank !== 1 || qn.gain.shape[0] !== d))
    throw new Error(`causalSelfAttention: qkNorm.gain of shape [${qn.gain.shape}] is not [${d}]`);
  if (!o.dropout && fast(qkv, o.rope?.cos, o.rope?.sin, qn?.gain)) {
    if (!qn) return attentionFast(qkv, B, T, H, o.rope, scale);
    return attentionFast(
      qkNormFast(qkv, T, H, qn.gain as tf.Tensor1D, qn.eps, o.rope),
      B,
      T,
      H,
      undefined,
      scale,
    );
  }
  return tf.tidy(() => {
    const heads = (t: tf.Tensor) =>
      tf.reshape(tf.transpose(tf.reshape(t, [B, T, H, hd]), [0, 2, 1, 3]), [B * H, T, hd]);
    const [q0, k0, v0] = tf.split(qkv, 3, 1);
    // nGPT: RoPE, Norm over each head, then the gain over [B·T, d] (per head and feature)
    const normed = (t: tf.Tensor) => {
      let x = tf.reshape(t, [B, T, H, hd]);
      if (o.rope) x = applyRope(x, tf.reshape(o.rope.cos, [T, 1, hd]), tf.reshape(o.rope.sin, [T, 1, hd]));
      return heads(mulLastAxis(tf.reshape(l2Normalize(x, -1, qn!.eps), [B * T, d]), qn!.gain));
    };
    let q = qn ? normed(q0!) : heads(q0!);
    let k = qn ? normed(k0!) : heads(k0!);
    const v = heads(v0!) as tf.Tensor3D;
    if (o.rope && !qn) {
      q = applyRope(q, o.rope.cos, o.rope.sin);
      k = applyRope(k, o.rope.cos, o.rope.sin);
    }
    const mask = o.mask ?? causalMask(T);
    const scores = tf.add(
      tf.mul(batchMatmul(q as tf.Tensor3D, tf.transpose(k, [0, 2, 1]) as tf.Tensor3D), scale),
      mask,
    );
    const probs = tf.softmax(scores);
    const att = (o.dropout ? o.dropout(probs) : probs) as tf.Tensor3D;
    const y = batchMatmul(att, v);
    return tf.reshape(tf.transpose(tf.reshape(y, [B, H, T, hd]), [0, 2, 1, 3]), [B * T, d]) as tf.Tensor2D;
  });
}
