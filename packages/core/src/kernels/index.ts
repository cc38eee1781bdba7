/**
 * Strata's fast kernels for tfjs's `wasm` backend, registered as ordinary tfjs kernels (with gradients), and
 * the op functions that call them. `ops.ts` uses these when {@link strataKernelsActive} is true and falls back
 * to compositions of tfjs ops (identical math) on every other backend.
 *
 * What is registered for `wasm`:
 * - `StrataMatMul` (2-D `op(A)·op(B) + bias`, any transposes, SIMD GEMM) and an override of `BatchMatMul` that
 *   uses the same GEMM for batched and transposed products (tfjs-wasm's own runs ≈1–2 GFLOP/s there);
 * - `StrataAttention` (fused causal multi-head attention on a fused QKV activation, optional RoPE);
 * - `StrataLayerNorm`, `StrataRMSNorm`, `StrataGelu`, `StrataCrossEntropy`, `StrataEmbedding` (+ their
 *   `…Grad` kernels), `StrataColSum`, `StrataSumSquares`, `StrataAdamW`;
 * - for nGPT: `StrataL2Norm` (Norm over the last axis), `StrataL2NormCols` (down the columns: the post-step
 *   re-projection), `StrataNGPTResidual` (the normalized residual update), `StrataSwiGLU` (optionally with
 *   per-feature scales) and `StrataQKNorm` (RoPE → per-head Norm → scale on q and k of a fused QKV), each with
 *   its `…Grad` kernel;
 * - overrides of `Identity` and same-dtype `Cast` that share the input's buffer instead of copying it (tfjs's
 *   tape clones every tensor it saves for backprop through `Identity`).
 *
 * Set `STRATA_KERNELS=0` in the environment, or call {@link setStrataKernels}(false), to use tfjs's kernels only.
 */
import * as tf from '@tensorflow/tfjs-core';
import { GEMM_WS_FLOATS, kernelsFor, kernelsVariant, type StrataWasm } from './wasm.js';

export { kernelsVariant };

type Info = tf.TensorInfo;
type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

const BACKEND = 'wasm';
let enabled =
  typeof process === 'undefined' || !/^(0|off|false|no)$/i.test(process.env?.STRATA_KERNELS ?? '');
let registered = false;
let failed: string | undefined;

/** Turns Strata's wasm kernels on or off (default on; `STRATA_KERNELS=0` turns them off). */
export function setStrataKernels(on: boolean): void {
  enabled = on;
}

/** Whether Strata's kernels are switched on (they are used only on the wasm backend). */
export function strataKernelsEnabled(): boolean {
  return enabled;
}

/**
 * True when the active backend is `wasm` and Strata's kernels are enabled and loaded (they are registered on
 * first call). If they cannot load (e.g. tfjs's threaded wasm build, whose memory is shared), this returns false
 * and tfjs's own kernels are used.
 */
export function strataKernelsActive(): boolean {
  if (!enabled || failed !== undefined) return false;
  if (tf.getBackend() !== BACKEND) return false;
  if (!registered) installStrataKernels();
  if (failed !== undefined) return false;
  return kernelsLoad(tf.backend());
}

/** Whether the kernels load on `backend`; the first failure is kept (see {@link strataKernelsError}). */
function kernelsLoad(backend: unknown): boolean {
  if (failed !== undefined) return false;
  try {
    kernelsFor(backend);
    return true;
  } catch (e) {
    failed = (e as Error).message;
    return false;
  }
}

/** Why the kernels could not load, if they could not. */
export function strataKernelsError(): string | undefined {
  return failed;
}

const f32 = (t: Info, what: string) => {
  if (t.dtype !== 'float32') throw new Error(`${what}: expected float32, got ${t.dtype}`);
};
const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const K = (backend: unknown): StrataWasm => kernelsFor(backend);

// ------------------------------------------------------------------------------------------------
// Kernel functions (backend level)
// ------------------------------------------------------------------------------------------------

function matMulKernel({ inputs, backend, attrs }: KernelArgs): Info {
  const { a, b, bias } = inputs as { a: Info; b: Info; bias?: Info };
  const transA = !!attrs?.transA;
  const transB = !!attrs?.transB;
  f32(a, 'StrataMatMul');
  f32(b, 'StrataMatMul');
  const [ar, ac] = a.shape as [number, number];
  const [br, bc] = b.shape as [number, number];
  const M = transA ? ac : ar;
  const Kd = transA ? ar : ac;
  const N = transB ? br : bc;
  const Kb = transB ? bc : br;
  if (Kd !== Kb) throw new Error(`StrataMatMul: inner dimensions ${Kd} and ${Kb} differ`);
  const s = K(backend);
  const out = s.out([M, N]);
  const ws = s.ws(GEMM_WS_FLOATS);
  s.k.sgemm(
    M,
    N,
    Kd,
    s.ptr(a),
    transA ? 1 : ac,
    transA ? ac : 1,
    s.ptr(b),
    transB ? 1 : bc,
    transB ? bc : 1,
    s.ptr(out),
    N,
    0,
    s.ptr(bias),
    0,
    ws,
  );
  return out;
}

function colSumKernel({ inputs, backend }: KernelArgs): Info {
  const { x } = inputs as { x: Info };
  const C = x.shape[x.shape.length - 1]!;
  const R = size(x.shape) / C;
  const s = K(backend);
  const out = s.out([C]);
  s.k.colsum(s.ptr(x), s.ptr(out), R, C);
  return out;
}

function attentionKernel({ inputs, backend, attrs }: KernelArgs): Info[] {
  const { qkv, cos, sin } = inputs as { qkv: Info; cos?: Info; sin?: Info };
  const { batch, seqLen, heads, scale } = attrs as {
    batch: number;
    seqLen: number;
    heads: number;
    scale: number;
  };
  f32(qkv, 'StrataAttention');
  const D = qkv.shape[1]! / 3;
  const hd = D / heads;
  const s = K(backend);
  const y = s.out([batch * seqLen, D]);
  const stats = s.out([batch * heads * seqLen * 2]);
  const ws = s.ws(2 * seqLen * hd + seqLen * seqLen + GEMM_WS_FLOATS);
  s.k.attn_fwd(
    s.ptr(qkv),
    s.ptr(cos),
    s.ptr(sin),
    s.ptr(y),
    s.ptr(stats),
    batch,
    seqLen,
    heads,
    hd,
    scale,
    ws,
  );
  return [y, stats];
}

function attentionGradKernel({ inputs, backend, attrs }: KernelArgs): Info {
  const { dy, qkv, stats, cos, sin } = inputs as { dy: Info; qkv: Info; stats: Info; cos?: Info; sin?: Info };
  const { batch, seqLen, heads, scale } = attrs as {
    batch: number;
    seqLen: number;
    heads: number;
    scale: number;
  };
  const D = qkv.shape[1]! / 3;
  const hd = D / heads;
  const s = K(backend);
  const dqkv = s.out([...qkv.shape]);
  const ws = s.ws(3 * seqLen * hd + 2 * seqLen * seqLen + GEMM_WS_FLOATS);
  s.k.attn_bwd(
    s.ptr(dy),
    s.ptr(qkv),
    s.ptr(cos),
    s.ptr(sin),
    s.ptr(stats),
    s.ptr(dqkv),
    batch,
    seqLen,
    heads,
    hd,
    scale,
    ws,
  );
  return dqkv;
}

function attnDecodeKernel({ inputs, backend, attrs }: KernelArgs): Info {
  const { qkv, kc, vc, cos, sin } = inputs as { qkv: Info; kc: Info; vc: Info; cos?: Info; sin?: Info };
  const { batch, n, heads, p0, scale } = attrs as {
    batch: number;
    n: number;
    heads: number;
    p0: number;
    scale: number;
  };
  const D = qkv.shape[1]! / 3;
  const hd = D / heads;
  const Tmax = kc.shape[2]!;
  const s = K(backend);
  const y = s.out([batch * n, D]);
  const ws = s.ws(Tmax + hd + 16);
  s.k.attn_decode(
    s.ptr(qkv),
    s.ptr(cos),
    s.ptr(sin),
    s.ptr(kc),
    s.ptr(vc),
    s.ptr(y),
    batch,
    n,
    heads,
    hd,
    p0,
    Tmax,
    scale,
    ws,
  );
  return y;
}

function geluKernel({ inputs, backend }: KernelArgs): Info {
  const { x } = inputs as { x: Info };
  f32(x, 'StrataGelu');
  const s = K(backend);
  const y = s.out([...x.shape]);
  s.k.gelu_fwd(s.ptr(x), s.ptr(y), size(x.shape));
  return y;
}

function geluGradKernel({ inputs, backend }: KernelArgs): Info {
  const { dy, x } = inputs as { dy: Info; x: Info };
  const s = K(backend);
  const dx = s.out([...x.shape]);
  s.k.gelu_bwd(s.ptr(x), s.ptr(dy), s.ptr(dx), size(x.shape));
  return dx;
}

function layerNormKernel({ inputs, backend, attrs }: KernelArgs): Info {
  const { x, gain, bias } = inputs as { x: Info; gain?: Info; bias?: Info };
  f32(x, 'StrataLayerNorm');
  const D = x.shape[x.shape.length - 1]!;
  const s = K(backend);
  const y = s.out([...x.shape]);
  s.k.layernorm_fwd(s.ptr(x), s.ptr(gain), s.ptr(bias), s.ptr(y), size(x.shape) / D, D, attrs!.eps as number);
  return y;
}

function layerNormGradKernel({ inputs, backend, attrs }: KernelArgs): Info[] {
  const { dy, x, gain } = inputs as { dy: Info; x: Info; gain?: Info };
  const { eps, wantGain, wantBias } = attrs as { eps: number; wantGain: boolean; wantBias: boolean };
  const D = x.shape[x.shape.length - 1]!;
  const s = K(backend);
  const dx = s.out([...x.shape]);
  const dg = wantGain ? s.out([D]) : undefined;
  const db = wantBias ? s.out([D]) : undefined;
  s.k.layernorm_bwd(
    s.ptr(dy),
    s.ptr(x),
    s.ptr(gain),
    s.ptr(dx),
    s.ptr(dg),
    s.ptr(db),
    size(x.shape) / D,
    D,
    eps,
  );
  return [dx, ...(dg ? [dg] : []), ...(db ? [db] : [])];
}

function rmsNormKernel({ inputs, backend, attrs }: KernelArgs): Info {
  const { x, gain } = inputs as { x: Info; gain?: Info };
  f32(x, 'StrataRMSNorm');
  const D = x.shape[x.shape.length - 1]!;
  const s = K(backend);
  const y = s.out([...x.shape]);
  s.k.rmsnorm_fwd(s.ptr(x), s.ptr(gain), s.ptr(y), size(x.shape) / D, D, attrs!.eps as number);
  return y;
}

function rmsNormGradKernel({ inputs, backend, attrs }: KernelArgs): Info[] {
  const { dy, x, gain } = inputs as { dy: Info; x: Info; gain?: Info };
  const { eps, wantGain } = attrs as { eps: number; wantGain: boolean };
  const D = x.shape[x.shape.length - 1]!;
  const s = K(backend);
  const dx = s.out([...x.shape]);
  const dg = wantGain ? s.out([D]) : undefined;
  s.k.rmsnorm_bwd(s.ptr(dy), s.ptr(x), s.ptr(gain), s.ptr(dx), s.ptr(dg), size(x.shape) / D, D, eps);
  return dg ? [dx, dg] : [dx];
}

function l2NormKernel({ inputs, backend, attrs }: KernelArgs): Info {
  const { x } = inputs as { x: Info };
  f32(x, 'StrataL2Norm');
  const { eps, post } = attrs as { eps: number; post: number };
  const D = x.shape[x.shape.length - 1]!;
  const s = K(backend);
  const y = s.out([...x.shape]);
  s.k.l2norm_fwd(s.ptr(x), s.ptr(y), size(x.shape) / D, D, eps, post);
  return y;
}

function l2NormGradKernel({ inputs, backend, attrs }: KernelArgs): Info {
  const { dy, x } = inputs as { dy: Info; x: Info };
  const { eps, post } = attrs as { eps: number; post: number };
  const D = x.shape[x.shape.length - 1]!;
  const s = K(backend);
  const dx = s.out([...x.shape]);
  s.k.l2norm_bwd(s.ptr(dy), s.ptr(x), s.ptr(dx), size(x.shape) / D, D, eps, post);
  return dx;
}

function l2NormColsKernel({ inputs, backend, attrs }: KernelArgs): Info {
  const { x } = inputs as { x: Info };
  f32(x, 'StrataL2NormCols');
  const [R, C] = x.shape as [number, number];
  const s = K(backend);
  const y = s.out([R, C]);
  s.k.l2norm_cols_fwd(s.ptr(x), s.ptr(y), R, C, attrs!.eps as number, s.ws(C));
  return y;
}

function l2NormColsGradKernel({ inputs, backend, attrs }: KernelArgs): Info {
  const { dy, x } = inputs as { dy: Info; x: Info };
  const [R, C] = x.shape as [number, number];
  const s = K(backend);
  const dx = s.out([R, C]);
  s.k.l2norm_cols_bwd(s.ptr(dy), s.ptr(x), s.ptr(dx), R, C, attrs!.eps as number, s.ws(2 * C));
  return dx;
}

function ngptResidualKernel({ inputs, backend, attrs }: KernelArgs): Info {
  const { h, b, alpha } = inputs as { h: Info; b: Info; alpha: Info };
  f32(h, 'StrataNGPTResidual');
  const { eps, post } = attrs as { eps: number; post: number };
  const D = h.shape[h.shape.length - 1]!;
  const s = K(backend);
  const out = s.out([...h.shape]);
  s.k.ngpt_residual_fwd(
    s.ptr(h),
    s.ptr(b),
    s.ptr(alpha),
    s.ptr(out),
    size(h.shape) / D,
    D,
    eps,
    post,
    s.ws(3 * D),
  );
  return out;
}

function ngptResidualGradKernel({ inputs, backend, attrs }: KernelArgs): Info[] {
  const { dy, h, b, alpha } = inputs as { dy: Info; h: Info; b: Info; alpha: Info };
  const { eps, post } = attrs as { eps: number; post: number };
  const D = h.shape[h.shape.length - 1]!;
  const s = K(backend);
  const dh = s.out([...h.shape]);
  const db = s.out([...h.shape]);
  const da = s.out([D]);
  s.k.ngpt_residual_bwd(
    s.ptr(dy),
    s.ptr(h),
    s.ptr(b),
    s.ptr(alpha),
    s.ptr(dh),
    s.ptr(db),
    s.ptr(da),
    size(h.shape) / D,
    D,
    eps,
    post,
    s.ws(3 * D),
  );
  return [dh, db, da];
}

function swigluKernel({ inputs, backend }: KernelArgs): Info {
  const { a, g, su, sv } = inputs as { a: Info; g: Info; su?: Info; sv?: Info };
  f32(a, 'StrataSwiGLU');
  f32(g, 'StrataSwiGLU');
  const C = a.shape[a.shape.length - 1]!;
  const s = K(backend);
  const y = s.out([...a.shape]);
  s.k.swiglu_fwd(s.ptr(a), s.ptr(g), s.ptr(su), s.ptr(sv), s.ptr(y), size(a.shape) / C, C);
  return y;
}

function swigluGradKernel({ inputs, backend }: KernelArgs): Info[] {
  const { dy, a, g, su, sv } = inputs as { dy: Info; a: Info; g: Info; su?: Info; sv?: Info };
  const C = a.shape[a.shape.length - 1]!;
  const s = K(backend);
  const da = s.out([...a.shape]);
  const dg = s.out([...a.shape]);
  const dsu = su ? s.out([C]) : undefined;
  const dsv = sv ? s.out([C]) : undefined;
  s.k.swiglu_bwd(
    s.ptr(dy),
    s.ptr(a),
    s.ptr(g),
    s.ptr(su),
    s.ptr(sv),
    s.ptr(da),
    s.ptr(dg),
    s.ptr(dsu),
    s.ptr(dsv),
    size(a.shape) / C,
    C,
  );
  return [da, dg, ...(dsu ? [dsu] : []), ...(dsv ? [dsv] : [])];
}

function qkNormKernel({ inputs, backend, attrs }: KernelArgs): Info {
  const { qkv, scale, cos, sin } = inputs as { qkv: Info; scale: Info; cos?: Info; sin?: Info };
  f32(qkv, 'StrataQKNorm');
  const { seqLen, heads, eps, post } = attrs as { seqLen: number; heads: number; eps: number; post: number };
  const [N, D3] = qkv.shape as [number, number];
  const hd = D3 / 3 / heads;
  const s = K(backend);
  const out = s.out([N, D3]);
  s.k.qknorm_fwd(
    s.ptr(qkv),
    s.ptr(cos),
    s.ptr(sin),
    s.ptr(scale),
    s.ptr(out),
    N,
    seqLen,
    heads,
    hd,
    eps,
    post,
    s.ws(hd),
  );
  return out;
}

function qkNormGradKernel({ inputs, backend, attrs }: KernelArgs): Info[] {
  const { dy, qkv, scale, cos, sin } = inputs as {
    dy: Info;
    qkv: Info;
    scale: Info;
    cos?: Info;
    sin?: Info;
  };
  const { seqLen, heads, eps, post } = attrs as { seqLen: number; heads: number; eps: number; post: number };
  const [N, D3] = qkv.shape as [number, number];
  const D = D3 / 3;
  const hd = D / heads;
  const s = K(backend);
  const dqkv = s.out([N, D3]);
  const ds = s.out([D]);
  s.k.qknorm_bwd(
    s.ptr(dy),
    s.ptr(qkv),
    s.ptr(cos),
    s.ptr(sin),
    s.ptr(scale),
    s.ptr(dqkv),
    s.ptr(ds),
    N,
    seqLen,
    heads,
    hd,
    eps,
    post,
    s.ws(3 * hd + 2 * D),
  );
  return [dqkv, ds];
}

function crossEntropyKernel({ inputs, backend }: KernelArgs): Info {
  const { logits, targets } = inputs as { logits: Info; targets: Info };
  f32(logits, 'StrataCrossEntropy');
  if (targets.dtype !== 'int32') throw new Error('StrataCrossEntropy: targets must be int32');
  const [R, V] = logits.shape as [number, number];
  const s = K(backend);
  const out = s.out([]);
  s.k.xent_fwd(s.ptr(logits), s.ptr(targets), s.ptr(out), R, V);
  return out;
}

function crossEntropyGradKernel({ inputs, backend }: KernelArgs): Info {
  const { dy, logits, targets } = inputs as { dy: Info; logits: Info; targets: Info };
  const [R, V] = logits.shape as [number, number];
  const s = K(backend);
  const out = s.out([R, V]);
  s.k.xent_bwd(s.ptr(logits), s.ptr(targets), s.ptr(dy), s.ptr(out), R, V);
  return out;
}

function embeddingKernel({ inputs, backend, attrs }: KernelArgs): Info {
  const { table, ids, pos } = inputs as { table: Info; ids: Info; pos?: Info };
  f32(table, 'StrataEmbedding');
  if (ids.dtype !== 'int32') throw new Error('StrataEmbedding: ids must be int32');
  const [V, D] = table.shape as [number, number];
  const N = size(ids.shape);
  const s = K(backend);
  const out = s.out([N, D]);
  s.k.embed_fwd(s.ptr(table), s.ptr(ids), s.ptr(pos), s.ptr(out), N, D, V, (attrs?.seqLen as number) || 1);
  return out;
}

function embeddingGradKernel({ inputs, backend, attrs }: KernelArgs): Info[] {
  const { dy, ids } = inputs as { dy: Info; ids: Info };
  const { vocab, seqLen, posRows, wantTable, wantPos } = attrs as {
    vocab: number;
    seqLen: number;
    posRows: number;
    wantTable: boolean;
    wantPos: boolean;
  };
  const [N, D] = dy.shape as [number, number];
  const s = K(backend);
  const dt = wantTable ? s.out([vocab, D]) : undefined;
  const dp = wantPos ? s.out([posRows, D]) : undefined;
  s.k.embed_bwd(s.ptr(dy), s.ptr(ids), s.ptr(dt), s.ptr(dp), N, D, vocab, seqLen || 1, posRows);
  return [...(dt ? [dt] : []), ...(dp ? [dp] : [])];
}

function sumSquaresKernel({ inputs, backend }: KernelArgs): Info {
  const s = K(backend);
  let total = 0;
  for (const t of Object.values(inputs)) {
    if (!t) continue;
    f32(t, 'StrataSumSquares');
    total += s.k.sumsq(s.ptr(t), size(t.shape));
  }
  return (backend as { makeOutput(s: number[], d: string, o?: number, v?: Float32Array): Info }).makeOutput(
    [],
    'float32',
    undefined,
    new Float32Array([total]),
  );
}

function adamWKernel({ inputs, backend, attrs }: KernelArgs): Info[] {
  const { p, g, m, v } = inputs as { p: Info; g: Info; m: Info; v: Info };
  const a = attrs as Record<string, number>;
  const s = K(backend);
  const po = s.out([...p.shape]);
  const mo = s.out([...p.shape]);
  const vo = s.out([...p.shape]);
  s.k.adamw(
    s.ptr(p),
    s.ptr(g),
    s.ptr(m),
    s.ptr(v),
    s.ptr(po),
    s.ptr(mo),
    s.ptr(vo),
    size(p.shape),
    a.lr!,
    a.beta1!,
    a.beta2!,
    a.oneMinusBeta1!,
    a.oneMinusBeta2!,
    a.eps!,
    a.decay!,
    a.bc1!,
    a.bc2!,
    a.scale!,
  );
  return [po, mo, vo];
}

// Overrides of tfjs-wasm kernels ------------------------------------------------------------------

type KernelFunc = (args: KernelArgs) => Info | Info[];
const originals = new Map<string, KernelFunc>();

function batchMatMulOverride(args: KernelArgs): Info | Info[] {
  const orig = originals.get('BatchMatMul')!;
  // e.g. tfjs's threaded build (a cross-origin-isolated page): its memory is shared, the kernels cannot load
  if (!enabled || !kernelsLoad(args.backend)) return orig(args);
  const { a, b } = args.inputs as { a: Info; b: Info };
  const transA = !!args.attrs?.transposeA;
  const transB = !!args.attrs?.transposeB;
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return orig(args);
  const ra = a.shape.length;
  const rb = b.shape.length;
  if (ra < 2 || rb < 2) return orig(args);
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  const batchA = size(outerA);
  const batchB = size(outerB);
  // Only equal batches, or one operand without batch (broadcast); anything fancier goes to tfjs.
  let outer: number[];
  if (batchA === batchB && outerA.join() === outerB.join()) outer = outerA;
  else if (batchB === 1) outer = outerA;
  else if (batchA === 1) outer = outerB;
  else return orig(args);
  const [a0, a1] = a.shape.slice(-2) as [number, number];
  const [b0, b1] = b.shape.slice(-2) as [number, number];
  const M = transA ? a1 : a0;
  const Kd = transA ? a0 : a1;
  const N = transB ? b0 : b1;
  if (Kd !== (transB ? b1 : b0)) return orig(args);
  const batch = Math.max(batchA, batchB);
  const s = K(args.backend);
  const out = s.out([...outer, M, N]);
  const ws = s.ws(GEMM_WS_FLOATS);
  s.k.sgemm_batched(
    batch,
    M,
    N,
    Kd,
    s.ptr(a),
    transA ? 1 : a1,
    transA ? a1 : 1,
    batchA === 1 ? 0 : a0 * a1,
    s.ptr(b),
    transB ? 1 : b1,
    transB ? b1 : 1,
    batchB === 1 ? 0 : b0 * b1,
    s.ptr(out),
    N,
    M * N,
    0,
    ws,
  );
  return out;
}

function identityOverride(args: KernelArgs): Info | Info[] {
  const { x } = args.inputs as { x: Info };
  if (!enabled || x.dtype === 'string') return originals.get('Identity')!(args);
  (args.backend as { incRef(d: object): void }).incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
}

function castOverride(args: KernelArgs): Info | Info[] {
  const { x } = args.inputs as { x: Info };
  if (!enabled || x.dtype !== args.attrs?.dtype || x.dtype === 'string') return originals.get('Cast')!(args);
  (args.backend as { incRef(d: object): void }).incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
}

// ------------------------------------------------------------------------------------------------
// Registration
// ------------------------------------------------------------------------------------------------

const KERNELS: [string, KernelFunc][] = [
  ['StrataMatMul', matMulKernel],
  ['StrataColSum', colSumKernel],
  ['StrataAttention', attentionKernel],
  ['StrataAttentionRope', attentionKernel],
  ['StrataAttentionGrad', attentionGradKernel],
  ['StrataAttnDecode', attnDecodeKernel],
  ['StrataGelu', geluKernel],
  ['StrataGeluGrad', geluGradKernel],
  ['StrataLayerNorm', layerNormKernel],
  ['StrataLayerNormNoGain', layerNormKernel],
  ['StrataLayerNormGrad', layerNormGradKernel],
  ['StrataRMSNorm', rmsNormKernel],
  ['StrataRMSNormNoGain', rmsNormKernel],
  ['StrataRMSNormGrad', rmsNormGradKernel],
  ['StrataL2Norm', l2NormKernel],
  ['StrataL2NormGrad', l2NormGradKernel],
  ['StrataL2NormCols', l2NormColsKernel],
  ['StrataL2NormColsGrad', l2NormColsGradKernel],
  ['StrataNGPTResidual', ngptResidualKernel],
  ['StrataNGPTResidualGrad', ngptResidualGradKernel],
  ['StrataSwiGLU', swigluKernel],
  ['StrataSwiGLUScaled', swigluKernel],
  ['StrataSwiGLUGrad', swigluGradKernel],
  ['StrataQKNorm', qkNormKernel],
  ['StrataQKNormRope', qkNormKernel],
  ['StrataQKNormGrad', qkNormGradKernel],
  ['StrataCrossEntropy', crossEntropyKernel],
  ['StrataCrossEntropyGrad', crossEntropyGradKernel],
  ['StrataEmbedding', embeddingKernel],
  ['StrataEmbeddingGrad', embeddingGradKernel],
  ['StrataSumSquares', sumSquaresKernel],
  ['StrataAdamW', adamWKernel],
];

const OVERRIDES: [string, KernelFunc][] = [
  ['BatchMatMul', batchMatMulOverride],
  ['Identity', identityOverride],
  ['Cast', castOverride],
];

const run = (
  name: string,
  inputs: Record<string, tf.Tensor | undefined>,
  attrs: Record<string, unknown> = {},
) => {
  const clean: tf.NamedTensorMap = {};
  for (const [k, v] of Object.entries(inputs)) if (v) clean[k] = v;
  // biome-ignore lint/suspicious/noExplicitAny: tfjs's runKernel typing
  return tf.engine().runKernel(name, clean as any, attrs as any) as tf.Tensor | tf.Tensor[];
};
const zerosFor = (t: tf.Tensor) => () => tf.zerosLike(t);

/**
 * Registers Strata's kernels for the wasm backend and their gradients (idempotent). Called automatically by
 * {@link strataKernelsActive}; call it yourself only to inspect the registry.
 */
export function installStrataKernels(): void {
  if (registered) return;
  registered = true;
  try {
    for (const [kernelName, kernelFunc] of KERNELS) {
      if (!tf.getKernel(kernelName, BACKEND))
        tf.registerKernel({ kernelName, backendName: BACKEND, kernelFunc: kernelFunc as tf.KernelFunc });
    }
    for (const [kernelName, kernelFunc] of OVERRIDES) {
      const orig = tf.getKernel(kernelName, BACKEND);
      if (!orig || originals.has(kernelName)) continue;
      originals.set(kernelName, orig.kernelFunc as unknown as KernelFunc);
      tf.unregisterKernel(kernelName, BACKEND);
      tf.registerKernel({ ...orig, kernelFunc: kernelFunc as tf.KernelFunc });
    }
    registerGradients();
  } catch (e) {
    failed = (e as Error).message;
  }
}

function registerGradients(): void {
  tf.registerGradient({
    kernelName: 'StrataMatMul',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved, attrs) => {
      const [a, b] = saved as [tf.Tensor2D, tf.Tensor2D];
      const tA = !!attrs.transA;
      const tB = !!attrs.transB;
      const d = dy as tf.Tensor2D;
      const grads: Record<string, () => tf.Tensor> = {
        a: () =>
          !tA
            ? matMulFast(d, b, false, !tB)
            : !tB
              ? matMulFast(b, d, false, true)
              : matMulFast(b, d, true, true),
        b: () =>
          !tB
            ? !tA
              ? matMulFast(a, d, true, false)
              : matMulFast(a, d, false, false)
            : !tA
              ? matMulFast(d, a, true, false)
              : matMulFast(d, a, true, true),
      };
      grads.bias = () => run('StrataColSum', { x: d }) as tf.Tensor;
      return grads;
    },
  });
  for (const [kernelName, rope] of [
    ['StrataAttention', false],
    ['StrataAttentionRope', true],
  ] as const) {
    tf.registerGradient({
      kernelName,
      inputsToSave: rope ? ['qkv', 'cos', 'sin'] : ['qkv'],
      outputsToSave: [false, true],
      gradFunc: (dys, saved, attrs) => {
        const dy = (dys as tf.Tensor[])[0]!;
        const qkv = saved[0]!;
        const cos = rope ? saved[1] : undefined;
        const sin = rope ? saved[2] : undefined;
        const stats = saved[saved.length - 1]!;
        const g: Record<string, () => tf.Tensor> = {
          qkv: () => run('StrataAttentionGrad', { dy, qkv, stats, cos, sin }, attrs) as tf.Tensor,
        };
        if (cos && sin) {
          g.cos = zerosFor(cos);
          g.sin = zerosFor(sin);
        }
        return g;
      },
    });
  }
  tf.registerGradient({
    kernelName: 'StrataGelu',
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => ({
      x: () => run('StrataGeluGrad', { dy: dy as tf.Tensor, x: saved[0] }) as tf.Tensor,
    }),
  });
  for (const [kernelName, hasGain] of [
    ['StrataLayerNorm', true],
    ['StrataLayerNormNoGain', false],
  ] as const) {
    tf.registerGradient({
      kernelName,
      inputsToSave: hasGain ? ['x', 'gain'] : ['x'],
      gradFunc: (dy, saved, attrs) => {
        const hasBias = !!attrs.hasBias;
        const x = saved[0]!;
        const gain = hasGain ? saved[1] : undefined;
        const outs = run(
          'StrataLayerNormGrad',
          { dy: dy as tf.Tensor, x, gain },
          { eps: attrs.eps, wantGain: hasGain, wantBias: hasBias },
        ) as tf.Tensor[];
        const g: Record<string, () => tf.Tensor> = { x: () => outs[0]! };
        if (gain) g.gain = () => outs[1]!;
        if (hasBias) g.bias = () => outs[hasGain ? 2 : 1]!;
        return g;
      },
    });
  }
  for (const [kernelName, hasGain] of [
    ['StrataRMSNorm', true],
    ['StrataRMSNormNoGain', false],
  ] as const) {
    tf.registerGradient({
      kernelName,
      inputsToSave: hasGain ? ['x', 'gain'] : ['x'],
      gradFunc: (dy, saved, attrs) => {
        const x = saved[0]!;
        const gain = hasGain ? saved[1] : undefined;
        const outs = run(
          'StrataRMSNormGrad',
          { dy: dy as tf.Tensor, x, gain },
          { eps: attrs.eps, wantGain: hasGain },
        ) as tf.Tensor[];
        const g: Record<string, () => tf.Tensor> = { x: () => outs[0]! };
        if (gain) g.gain = () => outs[1]!;
        return g;
      },
    });
  }
  for (const [kernelName, gradName] of [
    ['StrataL2Norm', 'StrataL2NormGrad'],
    ['StrataL2NormCols', 'StrataL2NormColsGrad'],
  ] as const) {
    tf.registerGradient({
      kernelName,
      inputsToSave: ['x'],
      gradFunc: (dy, saved, attrs) => ({
        x: () => run(gradName, { dy: dy as tf.Tensor, x: saved[0] }, attrs) as tf.Tensor,
      }),
    });
  }
  tf.registerGradient({
    kernelName: 'StrataNGPTResidual',
    inputsToSave: ['h', 'b', 'alpha'],
    gradFunc: (dy, saved, attrs) => {
      const [h, b, alpha] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
      const outs = run('StrataNGPTResidualGrad', { dy: dy as tf.Tensor, h, b, alpha }, attrs) as tf.Tensor[];
      return { h: () => outs[0]!, b: () => outs[1]!, alpha: () => outs[2]! };
    },
  });
  for (const [kernelName, scaled] of [
    ['StrataSwiGLU', false],
    ['StrataSwiGLUScaled', true],
  ] as const) {
    tf.registerGradient({
      kernelName,
      inputsToSave: scaled ? ['a', 'g', 'su', 'sv'] : ['a', 'g'],
      gradFunc: (dy, saved) => {
        const [a, g, su, sv] = saved;
        const outs = run('StrataSwiGLUGrad', { dy: dy as tf.Tensor, a, g, su, sv }) as tf.Tensor[];
        const grads: Record<string, () => tf.Tensor> = { a: () => outs[0]!, g: () => outs[1]! };
        if (scaled) {
          grads.su = () => outs[2]!;
          grads.sv = () => outs[3]!;
        }
        return grads;
      },
    });
  }
  for (const [kernelName, rope] of [
    ['StrataQKNorm', false],
    ['StrataQKNormRope', true],
  ] as const) {
    tf.registerGradient({
      kernelName,
      inputsToSave: rope ? ['qkv', 'scale', 'cos', 'sin'] : ['qkv', 'scale'],
      gradFunc: (dy, saved, attrs) => {
        const [qkv, scale, cos, sin] = saved;
        const outs = run(
          'StrataQKNormGrad',
          { dy: dy as tf.Tensor, qkv, scale, cos, sin },
          attrs,
        ) as tf.Tensor[];
        const g: Record<string, () => tf.Tensor> = { qkv: () => outs[0]!, scale: () => outs[1]! };
        if (cos && sin) {
          g.cos = zerosFor(cos);
          g.sin = zerosFor(sin);
        }
        return g;
      },
    });
  }
  tf.registerGradient({
    kernelName: 'StrataCrossEntropy',
    inputsToSave: ['logits', 'targets'],
    gradFunc: (dy, saved) => {
      const [logits, targets] = saved as [tf.Tensor, tf.Tensor];
      return {
        logits: () => run('StrataCrossEntropyGrad', { dy: dy as tf.Tensor, logits, targets }) as tf.Tensor,
        targets: zerosFor(targets),
      };
    },
  });
  tf.registerGradient({
    kernelName: 'StrataEmbedding',
    inputsToSave: ['table', 'ids'],
    gradFunc: (dy, saved, attrs) => {
      const [table, ids] = saved as [tf.Tensor, tf.Tensor];
      const posRows = attrs.posRows as number;
      const outs = run(
        'StrataEmbeddingGrad',
        { dy: dy as tf.Tensor, ids },
        { vocab: table.shape[0], seqLen: attrs.seqLen, posRows, wantTable: true, wantPos: posRows > 0 },
      ) as tf.Tensor[];
      const g: Record<string, () => tf.Tensor> = { table: () => outs[0]!, ids: zerosFor(ids) };
      if (posRows > 0) g.pos = () => outs[1]!;
      return g;
    },
  });
}

// ------------------------------------------------------------------------------------------------
// Op functions (call only when strataKernelsActive() is true)
// ------------------------------------------------------------------------------------------------

/** `op(a)·op(b) (+ bias)` for 2-D tensors through the SIMD GEMM. */
export function matMulFast(
  a: tf.Tensor2D,
  b: tf.Tensor2D,
  transA = false,
  transB = false,
  bias?: tf.Tensor1D,
): tf.Tensor2D {
  return run('StrataMatMul', { a, b, bias }, { transA, transB }) as tf.Tensor2D;
}

/**
 * Fused causal multi-head attention, `softmax(scale · q·kᵀ + causal)·v` per head (default scale 1/√d_k); see
 * `causalSelfAttention` in ops.ts.
 */
export function attentionFast(
  qkv: tf.Tensor2D,
  batch: number,
  seqLen: number,
  heads: number,
  rope?: { cos: tf.Tensor; sin: tf.Tensor },
  scale = 1 / Math.sqrt(qkv.shape[1] / 3 / heads),
): tf.Tensor2D {
  const name = rope ? 'StrataAttentionRope' : 'StrataAttention';
  const [y, stats] = run(name, { qkv, cos: rope?.cos, sin: rope?.sin }, { batch, seqLen, heads, scale }) as [
    tf.Tensor2D,
    tf.Tensor,
  ];
  stats.dispose();
  return y;
}

/**
 * KV-cached attention of `n` new positions (inference only): writes their keys (after RoPE) and values into
 * the cache tensors `kc`, `vc` `[batch, heads, maxLen, headDim]` IN PLACE at `p0…`, and returns the attention
 * output `[batch·n, d]`. The cache tensors must be private to the caller (see `KVCache`).
 */
export function attnDecodeFast(
  qkv: tf.Tensor2D,
  kc: tf.Tensor4D,
  vc: tf.Tensor4D,
  batch: number,
  n: number,
  heads: number,
  p0: number,
  rope?: { cos: tf.Tensor; sin: tf.Tensor },
): tf.Tensor2D {
  const D = qkv.shape[1] / 3;
  const scale = 1 / Math.sqrt(D / heads);
  return run(
    'StrataAttnDecode',
    { qkv, kc, vc, cos: rope?.cos, sin: rope?.sin },
    { batch, n, heads, p0, scale },
  ) as tf.Tensor2D;
}

/**
 * `x / √(Σx² + eps)` over the last axis (nGPT's `Norm`), as `RMSNorm(x; eps/n)·(1/√n)` in one kernel: the same
 * float32 operations as {@link rmsNormFast} followed by a product with `1/√n`, forward and backward.
 */
export function l2NormFast(x: tf.Tensor, eps: number): tf.Tensor {
  const n = x.shape[x.rank - 1]!;
  return run('StrataL2Norm', { x }, { eps: eps / n, post: 1 / Math.sqrt(n) }) as tf.Tensor;
}

/** `x / √(Σx² + eps)` down each column of a matrix `[R, C]` (sums of squares accumulated row by row). */
export function l2NormColsFast(x: tf.Tensor2D, eps: number): tf.Tensor2D {
  return run('StrataL2NormCols', { x }, { eps }) as tf.Tensor2D;
}

/**
 * nGPT's residual update `Norm(A + (Norm(b) − A) ⊙ alpha)`, `A = Norm(h)`, over the last axis, in one kernel
 * (the same float32 operations as the composition with {@link l2NormFast}).
 */
export function ngptResidualFast(h: tf.Tensor, b: tf.Tensor, alpha: tf.Tensor, eps: number): tf.Tensor {
  const n = h.shape[h.rank - 1]!;
  return run('StrataNGPTResidual', { h, b, alpha }, { eps: eps / n, post: 1 / Math.sqrt(n) }) as tf.Tensor;
}

/** `(a ⊙ su) ⊙ SiLU(g ⊙ sv)` over the last axis (scales both given or both absent), forward and backward fused. */
export function swigluFast(a: tf.Tensor, g: tf.Tensor, su?: tf.Tensor, sv?: tf.Tensor): tf.Tensor {
  return run(su && sv ? 'StrataSwiGLUScaled' : 'StrataSwiGLU', { a, g, su, sv }) as tf.Tensor;
}

/**
 * nGPT's q/k normalization on a fused QKV activation `[B·T, 3d]`: q and k of each head become
 * `scale ⊙ Norm(RoPE(·))` (Norm as {@link l2NormFast} over the head dimension, `scale` `[d]`), v is copied.
 */
export function qkNormFast(
  qkv: tf.Tensor2D,
  seqLen: number,
  heads: number,
  scale: tf.Tensor1D,
  eps: number,
  rope?: { cos: tf.Tensor; sin: tf.Tensor },
): tf.Tensor2D {
  const hd = qkv.shape[1] / 3 / heads;
  return run(
    rope ? 'StrataQKNormRope' : 'StrataQKNorm',
    { qkv, scale, cos: rope?.cos, sin: rope?.sin },
    { seqLen, heads, eps: eps / hd, post: 1 / Math.sqrt(hd) },
  ) as tf.Tensor2D;
}

/** Sums of the columns of `x` viewed as `[rows, C]` (C = last axis): `[C]`. */
export function colSumFast(x: tf.Tensor): tf.Tensor1D {
  return run('StrataColSum', { x }) as tf.Tensor1D;
}

export function geluFast(x: tf.Tensor): tf.Tensor {
  return run('StrataGelu', { x }) as tf.Tensor;
}

export function layerNormFast(
  x: tf.Tensor,
  gain: tf.Tensor | undefined,
  bias: tf.Tensor | undefined,
  eps: number,
) {
  const name = gain ? 'StrataLayerNorm' : 'StrataLayerNormNoGain';
  return run(name, { x, gain, bias }, { eps, hasBias: !!bias }) as tf.Tensor;
}

export function rmsNormFast(x: tf.Tensor, gain: tf.Tensor | undefined, eps: number) {
  return run(gain ? 'StrataRMSNorm' : 'StrataRMSNormNoGain', { x, gain }, { eps }) as tf.Tensor;
}

export function crossEntropyFast(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  return run('StrataCrossEntropy', { logits, targets }) as tf.Scalar;
}

export function embeddingFast(
  table: tf.Tensor2D,
  ids: tf.Tensor1D,
  pos?: tf.Tensor2D,
  seqLen = 1,
): tf.Tensor2D {
  return run(
    'StrataEmbedding',
    { table, ids, pos },
    { seqLen, posRows: pos ? pos.shape[0] : 0 },
  ) as tf.Tensor2D;
}

/** Σ over tensors of Σ x² (accumulated in float64), as a float32 scalar. */
export function sumSquaresFast(ts: readonly tf.Tensor[]): tf.Scalar {
  const inputs: Record<string, tf.Tensor> = {};
  ts.forEach((t, i) => {
    inputs[`t${i}`] = t;
  });
  return run('StrataSumSquares', inputs) as tf.Scalar;
}

/** Hyper-parameters of one fused AdamW update (see `adamw` in strata_kernels.c). */
export interface AdamWStep {
  /** Learning rate of this step (after the schedule). */
  lr: number;
  /** Adam β₁ (first-moment decay). */
  beta1: number;
  /** Adam β₂ (second-moment decay). */
  beta2: number;
  /** Adam ε, added to √v̂. */
  eps: number;
  /** Multiplier of the parameter before the update: `1 − lr·λ` (1 for no decay). */
  decay: number;
  /** Bias corrections `1 − β₁ᵗ`, `1 − β₂ᵗ`. */
  bc1: number;
  /** `1 − β₂ᵗ` (see `bc1`). */
  bc2: number;
  /** Gradient multiplier (clipping). */
  scale: number;
}

/**
 * One fused AdamW update of a parameter: returns new `[param, m, v]` (the same float32 operations as
 * Strata's `AdamW`, in one pass instead of ~12 kernels).
 */
export function adamWFast(p: tf.Tensor, g: tf.Tensor, m: tf.Tensor, v: tf.Tensor, h: AdamWStep): tf.Tensor[] {
  return run(
    'StrataAdamW',
    { p, g, m, v },
    { ...h, oneMinusBeta1: 1 - h.beta1, oneMinusBeta2: 1 - h.beta2 },
  ) as tf.Tensor[];
}
