/**
 * Loader for Strata's WebAssembly SIMD kernels (`packages/core/native/strata_kernels.c`) and their registration
 * as tfjs kernels of the `wasm` backend.
 *
 * The kernels module imports the linear memory of tfjs-backend-wasm, so a kernel reads its inputs and writes its
 * outputs directly in tfjs's heap (a pointer is a tensor's `memoryOffset`): no copies in or out. One module
 * instance is made per wasm backend instance (per thread).
 */
import type * as tf from '@tensorflow/tfjs-core';
import { WASM_BASE64, WASM_RELAXED_BASE64 } from './wasm-binary.js';

type Ptr = number;

/** The few WebAssembly JS-API members used here (the project's TypeScript lib has no DOM/wasm typings). */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
  Memory: abstract new (...args: never[]) => object;
}
const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** Functions exported by strata_kernels.wasm. Pointers are byte offsets in tfjs's wasm heap. */
export interface KernelExports {
  __stack_pointer: { value: number };
  sgemm(
    M: number,
    N: number,
    K: number,
    a: Ptr,
    sai: number,
    sap: number,
    b: Ptr,
    sbp: number,
    sbj: number,
    c: Ptr,
    ldc: number,
    beta: number,
    bias: Ptr,
    tri: number,
    ws: Ptr,
  ): void;
  sgemm_batched(
    batch: number,
    M: number,
    N: number,
    K: number,
    a: Ptr,
    sai: number,
    sap: number,
    sa: number,
    b: Ptr,
    sbp: number,
    sbj: number,
    sb: number,
    c: Ptr,
    ldc: number,
    sc: number,
    beta: number,
    ws: Ptr,
  ): void;
  colsum(x: Ptr, out: Ptr, R: number, C: number): void;
  gelu_fwd(x: Ptr, y: Ptr, n: number): void;
  gelu_bwd(x: Ptr, dy: Ptr, dx: Ptr, n: number): void;
  layernorm_fwd(x: Ptr, g: Ptr, b: Ptr, y: Ptr, R: number, D: number, eps: number): void;
  layernorm_bwd(dy: Ptr, x: Ptr, g: Ptr, dx: Ptr, dg: Ptr, db: Ptr, R: number, D: number, eps: number): void;
  rmsnorm_fwd(x: Ptr, g: Ptr, y: Ptr, R: number, D: number, eps: number): void;
  rmsnorm_bwd(dy: Ptr, x: Ptr, g: Ptr, dx: Ptr, dg: Ptr, R: number, D: number, eps: number): void;
  xent_fwd(logits: Ptr, targets: Ptr, out: Ptr, R: number, V: number): void;
  xent_bwd(logits: Ptr, targets: Ptr, dloss: Ptr, dl: Ptr, R: number, V: number): void;
  embed_fwd(table: Ptr, ids: Ptr, pos: Ptr, out: Ptr, N: number, D: number, V: number, T: number): void;
  embed_bwd(
    dy: Ptr,
    ids: Ptr,
    dtable: Ptr,
    dpos: Ptr,
    N: number,
    D: number,
    V: number,
    T: number,
    P: number,
  ): void;
  attn_fwd(
    qkv: Ptr,
    cos: Ptr,
    sin: Ptr,
    y: Ptr,
    stats: Ptr,
    B: number,
    T: number,
    H: number,
    hd: number,
    scale: number,
    ws: Ptr,
  ): void;
  attn_bwd(
    dy: Ptr,
    qkv: Ptr,
    cos: Ptr,
    sin: Ptr,
    stats: Ptr,
    dqkv: Ptr,
    B: number,
    T: number,
    H: number,
    hd: number,
    scale: number,
    ws: Ptr,
  ): void;
  attn_decode(
    qkv: Ptr,
    cos: Ptr,
    sin: Ptr,
    kc: Ptr,
    vc: Ptr,
    y: Ptr,
    B: number,
    n: number,
    H: number,
    hd: number,
    p0: number,
    Tmax: number,
    scale: number,
    ws: Ptr,
  ): void;
  l2norm_fwd(x: Ptr, y: Ptr, R: number, D: number, eps: number, post: number): void;
  l2norm_bwd(dy: Ptr, x: Ptr, dx: Ptr, R: number, D: number, eps: number, post: number): void;
  l2norm_cols_fwd(x: Ptr, y: Ptr, R: number, C: number, eps: number, ws: Ptr): void;
  l2norm_cols_bwd(dy: Ptr, x: Ptr, dx: Ptr, R: number, C: number, eps: number, ws: Ptr): void;
  ngpt_residual_fwd(
    h: Ptr,
    b: Ptr,
    alpha: Ptr,
    out: Ptr,
    R: number,
    D: number,
    eps: number,
    post: number,
    ws: Ptr,
  ): void;
  ngpt_residual_bwd(
    dy: Ptr,
    h: Ptr,
    b: Ptr,
    alpha: Ptr,
    dh: Ptr,
    db: Ptr,
    dalpha: Ptr,
    R: number,
    D: number,
    eps: number,
    post: number,
    ws: Ptr,
  ): void;
  swiglu_fwd(a: Ptr, g: Ptr, su: Ptr, sv: Ptr, y: Ptr, R: number, C: number): void;
  swiglu_bwd(
    dy: Ptr,
    a: Ptr,
    g: Ptr,
    su: Ptr,
    sv: Ptr,
    da: Ptr,
    dg: Ptr,
    dsu: Ptr,
    dsv: Ptr,
    R: number,
    C: number,
  ): void;
  qknorm_fwd(
    qkv: Ptr,
    cos: Ptr,
    sin: Ptr,
    s: Ptr,
    out: Ptr,
    N: number,
    T: number,
    H: number,
    hd: number,
    eps: number,
    post: number,
    ws: Ptr,
  ): void;
  qknorm_bwd(
    dy: Ptr,
    qkv: Ptr,
    cos: Ptr,
    sin: Ptr,
    s: Ptr,
    dqkv: Ptr,
    ds: Ptr,
    N: number,
    T: number,
    H: number,
    hd: number,
    eps: number,
    post: number,
    ws: Ptr,
  ): void;
  sumsq(x: Ptr, n: number): number;
  adamw(
    p: Ptr,
    g: Ptr,
    m: Ptr,
    v: Ptr,
    po: Ptr,
    mo: Ptr,
    vo: Ptr,
    n: number,
    lr: number,
    b1: number,
    b2: number,
    omb1: number,
    omb2: number,
    eps: number,
    decay: number,
    bc1: number,
    bc2: number,
    scale: number,
  ): void;
}

/** GEMM blocking constants of the C code (workspace = KC·NC + MR·KC floats). */
export const GEMM_WS_FLOATS = 256 * 256 + 4 * 256;

interface TensorData {
  memoryOffset: number;
}
/** The parts of tfjs-backend-wasm's `BackendWasm` that Strata uses (not exported with types). */
export interface WasmBackendLike {
  wasm: {
    asm?: { memory?: object };
    _malloc(bytes: number): number;
    _free(ptr: number): void;
  };
  dataIdMap: { get(dataId: object): TensorData | undefined };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  incRef(dataId: object): void;
}

/** One kernels instance bound to one wasm backend's memory. */
export class StrataWasm {
  readonly k: KernelExports;
  private wsPtr = 0;
  private wsBytes = 0;

  constructor(readonly backend: WasmBackendLike) {
    const memory = backend.wasm.asm?.memory;
    if (!(memory instanceof WA.Memory)) throw new Error('tfjs-backend-wasm exposes no memory');
    const module = compiled();
    const instance = new WA.Instance(module, { env: { memory } });
    this.k = instance.exports as unknown as KernelExports;
    // The module's shadow stack lives in a block of tfjs's heap (it must never touch memory it does not own).
    const stackBytes = 64 * 1024;
    const stack = backend.wasm._malloc(stackBytes + 16);
    if (!stack) throw new Error('could not allocate the kernels stack');
    this.k.__stack_pointer.value = (stack + stackBytes) & ~15;
  }

  /** Byte offset of a tensor's data in the heap. */
  ptr(t: tf.TensorInfo | undefined): Ptr {
    if (!t) return 0;
    const d = this.backend.dataIdMap.get(t.dataId);
    if (!d) throw new Error('tensor data is not on the wasm backend');
    return d.memoryOffset;
  }

  /** A new float32 (or int32) output tensor, allocated in the heap. */
  out(shape: number[], dtype: tf.DataType = 'float32'): tf.TensorInfo {
    return this.backend.makeOutput(shape, dtype);
  }

  /** Scratch space of at least `floats` floats (reused between calls; valid until the next call). */
  ws(floats: number): Ptr {
    const bytes = floats * 4 + 64;
    if (bytes > this.wsBytes) {
      if (this.wsPtr) this.backend.wasm._free(this.wsPtr);
      const size = Math.max(bytes, this.wsBytes * 2);
      this.wsPtr = this.backend.wasm._malloc(size);
      if (!this.wsPtr) throw new Error(`could not allocate ${size} bytes of kernel workspace`);
      this.wsBytes = size;
    }
    return (this.wsPtr + 15) & ~15;
  }
}

let compiledModule: object | undefined;
let variant: 'simd128' | 'relaxed-simd' | undefined;

/** Compiles the kernels once per thread: the relaxed-SIMD (FMA) build when the runtime accepts it. */
function compiled(): object {
  if (compiledModule) return compiledModule;
  const env = typeof process !== 'undefined' ? process.env?.STRATA_WASM_RELAXED : undefined;
  const allowRelaxed = !/^(0|off|false|no)$/i.test(env ?? '');
  const relaxed = allowRelaxed ? decodeBase64(WASM_RELAXED_BASE64) : undefined;
  if (relaxed && WA.validate(relaxed)) {
    compiledModule = new WA.Module(relaxed);
    variant = 'relaxed-simd';
  } else {
    compiledModule = new WA.Module(decodeBase64(WASM_BASE64));
    variant = 'simd128';
  }
  return compiledModule;
}

/**
 * Which build of the kernels this thread runs: `relaxed-simd` (fused multiply-add; Node >= 22, or Node 20
 * started with `--experimental-wasm-relaxed-simd`) or `simd128`. `STRATA_WASM_RELAXED=0` forces `simd128`.
 */
export function kernelsVariant(): 'simd128' | 'relaxed-simd' {
  compiled();
  return variant!;
}

function decodeBase64(s: string): Uint8Array {
  if (typeof Buffer !== 'undefined') return new Uint8Array(Buffer.from(s, 'base64'));
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const instances = new WeakMap<object, StrataWasm>();

/** The kernels instance for a wasm backend (created on first use). */
export function kernelsFor(backend: unknown): StrataWasm {
  const b = backend as WasmBackendLike;
  let s = instances.get(b);
  if (!s) {
    s = new StrataWasm(b);
    instances.set(b, s);
  }
  return s;
}
