/**
 * Strata's wasm kernels against tfjs's reference kernels (the cpu backend running the tfjs compositions in
 * ops.ts), forward and gradient, on shapes that exercise every edge of the GEMM blocking (sizes that are not
 * multiples of the 4×8 tile, K and N larger than one 256 block, causal triangles longer than a block).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  adamWFast,
  batchMatmul,
  causalSelfAttention,
  crossEntropy,
  embeddingLookup,
  embedWithPositions,
  geluTanh,
  globalNorm,
  initBackend,
  layerNorm,
  linear,
  matmul2d,
  matmulTransposeB,
  Rng,
  rmsNorm,
  ropeTables,
  setStrataKernels,
  strataKernelsActive,
} from '../src/index.js';
import { SOURCE_SHA256 } from '../src/kernels/wasm-binary.js';

type Arr = { data: Float32Array | Int32Array; shape: number[]; dtype: 'float32' | 'int32' };
const rnd = (shape: number[], seed: number, scale = 1): Arr => {
  const r = new Rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = (r.next() * 2 - 1) * scale;
  return { data, shape, dtype: 'float32' };
};
const ints = (shape: number[], seed: number, max: number): Arr => {
  const r = new Rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Int32Array(n);
  for (let i = 0; i < n; i++) data[i] = r.int(max);
  return { data, shape, dtype: 'int32' };
};
const toT = (a: Arr) => tf.tensor(a.data, a.shape, a.dtype);

/**
 * Runs `f` on `backend` and returns its output and the gradient of Σ(out·w) (w a fixed random tensor)
 * with respect to every float input.
 */
async function evalOn(
  backend: 'wasm' | 'cpu',
  inputs: Arr[],
  f: (...xs: tf.Tensor[]) => tf.Tensor,
): Promise<{ y: Float32Array; grads: Float32Array[]; shape: number[] }> {
  await initBackend(backend);
  if (backend === 'wasm') expect(strataKernelsActive()).toBe(true);
  return tf.tidy(() => {
    const xs = inputs.map(toT);
    const y = f(...xs);
    const w = toT(rnd(y.shape, 4242));
    const floatIdx = inputs.map((a, i) => (a.dtype === 'float32' ? i : -1)).filter((i) => i >= 0);
    const g = tf.grads((...fx: tf.Tensor[]) => {
      const all = xs.slice();
      floatIdx.forEach((j, k) => {
        all[j] = fx[k]!;
      });
      return tf.sum(tf.mul(f(...all), w));
    });
    const grads = g(floatIdx.map((j) => xs[j]!));
    return {
      y: y.dataSync() as Float32Array,
      grads: grads.map((t) => t.dataSync() as Float32Array),
      shape: y.shape,
    };
  });
}

const maxRel = (a: Float32Array, b: Float32Array) => {
  let m = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    m = Math.max(m, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return m / Math.max(scale, 1e-6);
};

/** Compares wasm (Strata kernels) with cpu (tfjs reference) for output and every gradient. */
async function agree(inputs: Arr[], f: (...xs: tf.Tensor[]) => tf.Tensor, tol = 2e-5) {
  const w = await evalOn('wasm', inputs, f);
  const c = await evalOn('cpu', inputs, f);
  expect(w.shape).toEqual(c.shape);
  expect(w.y.length).toBe(c.y.length);
  expect(maxRel(w.y, c.y)).toBeLessThan(tol);
  expect(w.grads.length).toBe(c.grads.length);
  w.grads.forEach((g, i) => {
    expect(maxRel(g, c.grads[i]!), `gradient ${i}`).toBeLessThan(tol);
  });
}

beforeAll(async () => {
  setStrataKernels(true);
  await initBackend('wasm');
});
afterAll(async () => {
  await initBackend('wasm');
});

describe('kernels binary', () => {
  it('was built from the committed C source (run packages/core/native/build.mjs after editing it)', () => {
    const src = readFileSync(fileURLToPath(new URL('../native/strata_kernels.c', import.meta.url)));
    expect(createHash('sha256').update(src).digest('hex')).toBe(SOURCE_SHA256);
  });
});

describe('GEMM', () => {
  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [3, 29, 17], // M <= 4: the unpacked small-M path (decoding)
    [4, 300, 270],
    [5, 3, 7],
    [13, 29, 17],
    [64, 32, 96],
    [37, 300, 9], // K spans two 256-blocks
    [9, 40, 270], // N spans two 256-blocks
  ];
  for (const [M, K, N] of shapes) {
    it(`matmul2d ${M}x${K}x${N}, transposes and bias`, async () => {
      const a = rnd([M, K], 1);
      const b = rnd([K, N], 2);
      await agree([a, b], (x, y) => matmul2d(x as tf.Tensor2D, y as tf.Tensor2D));
      await agree([a, rnd([N, K], 3)], (x, y) => matmulTransposeB(x as tf.Tensor2D, y as tf.Tensor2D));
      await agree([a, b, rnd([N], 4)], (x, y, z) =>
        linear(x as tf.Tensor2D, y as tf.Tensor2D, z as tf.Tensor1D),
      );
      // tfjs's own matMul with flags goes through Strata's BatchMatMul override on wasm
      await agree([rnd([K, M], 5), rnd([N, K], 6)], (x, y) => tf.matMul(x!, y!, true, true));
      await agree([rnd([K, M], 5), b], (x, y) => tf.matMul(x!, y!, true, false));
    });
  }
  it('batched and broadcast BatchMatMul (override) with gradients', async () => {
    await agree([rnd([6, 13, 7], 1), rnd([6, 7, 11], 2)], (x, y) =>
      batchMatmul(x as tf.Tensor3D, y as tf.Tensor3D),
    );
    await agree([rnd([2, 3, 13, 7], 1), rnd([2, 3, 11, 7], 2)], (x, y) => tf.matMul(x!, y!, false, true));
  });
  it('broadcast BatchMatMul forward (tfjs 4.22 has no broadcast gradient on any backend)', async () => {
    for (const [sa, sb] of [
      [
        [4, 13, 7],
        [7, 11],
      ],
      [
        [13, 7],
        [3, 7, 11],
      ],
      [
        [1, 13, 7],
        [3, 7, 11],
      ],
    ] as const) {
      const a = rnd([...sa], 1);
      const b = rnd([...sb], 2);
      await initBackend('wasm');
      const w = tf.tidy(() => tf.matMul(toT(a), toT(b)).dataSync());
      await initBackend('cpu');
      const c = tf.tidy(() => tf.matMul(toT(a), toT(b)).dataSync());
      expect(maxRel(w as Float32Array, c as Float32Array)).toBeLessThan(1e-5);
    }
  });
});

describe('fused attention', () => {
  const cases = [
    { B: 2, T: 8, H: 2, hd: 4 },
    { B: 1, T: 13, H: 3, hd: 6 },
    { B: 2, T: 33, H: 2, hd: 16 },
    { B: 1, T: 270, H: 1, hd: 8 }, // the causal triangle spans two GEMM blocks
  ];
  for (const { B, T, H, hd } of cases) {
    for (const rope of [false, true]) {
      it(`B${B} T${T} H${H} hd${hd}${rope ? ' RoPE' : ''}`, async () => {
        const qkv = rnd([B * T, 3 * H * hd], 7, 2);
        const tables = ropeTables(T, hd);
        const cos: Arr = { data: tables.cos, shape: [T, hd], dtype: 'float32' };
        const sin: Arr = { data: tables.sin, shape: [T, hd], dtype: 'float32' };
        if (rope) {
          // cos/sin are constants: compare the gradient with respect to qkv only
          const f = (x: tf.Tensor) =>
            causalSelfAttention(x as tf.Tensor2D, {
              batch: B,
              seqLen: T,
              heads: H,
              rope: { cos: toT(cos), sin: toT(sin) },
            });
          await agree([qkv], f, 5e-5);
        } else {
          await agree(
            [qkv],
            (x) => causalSelfAttention(x as tf.Tensor2D, { batch: B, seqLen: T, heads: H }),
            5e-5,
          );
        }
      });
    }
  }
  it('is causal: changing a later token leaves earlier outputs unchanged', async () => {
    await initBackend('wasm');
    const B = 1;
    const T = 9;
    const H = 2;
    const d = 8;
    const a = rnd([T, 3 * d], 3);
    const b = { ...a, data: Float32Array.from(a.data) };
    for (let c = 0; c < 3 * d; c++) b.data[(T - 1) * 3 * d + c] = a.data[(T - 1) * 3 * d + c]! + 1;
    const ya = causalSelfAttention(toT(a) as tf.Tensor2D, { batch: B, seqLen: T, heads: H }).dataSync();
    const yb = causalSelfAttention(toT(b) as tf.Tensor2D, { batch: B, seqLen: T, heads: H }).dataSync();
    expect(Array.from(ya.slice(0, (T - 1) * d))).toEqual(Array.from(yb.slice(0, (T - 1) * d)));
    expect(ya[(T - 1) * d]).not.toBe(yb[(T - 1) * d]);
  });
});

describe('elementwise and norms', () => {
  it('GELU (tanh form)', async () => {
    await agree([rnd([7, 37], 1, 6)], (x) => geluTanh(x!));
  });
  it('LayerNorm with and without gain/bias, any rank', async () => {
    await agree([rnd([9, 20], 1, 3), rnd([20], 2), rnd([20], 3)], (x, g, b) => layerNorm(x!, g, b, 1e-5));
    await agree([rnd([2, 5, 19], 1, 3), rnd([19], 2)], (x, g) => layerNorm(x!, g, undefined, 1e-5));
    await agree([rnd([5, 16], 1, 3), rnd([16], 3)], (x, b) => layerNorm(x!, undefined, b, 1e-3));
    await agree([rnd([5, 16], 1, 3)], (x) => layerNorm(x!, undefined, undefined, 1e-5));
  });
  it('RMSNorm with and without gain', async () => {
    await agree([rnd([9, 21], 1, 3), rnd([21], 2)], (x, g) => rmsNorm(x!, g, 1e-6));
    await agree([rnd([9, 8], 1, 3)], (x) => rmsNorm(x!, undefined, 1e-6));
  });
  it('cross-entropy with integer targets', async () => {
    await agree([rnd([11, 30], 1, 4), ints([11], 2, 30)], (l, t) =>
      crossEntropy(l as tf.Tensor2D, t as tf.Tensor1D),
    );
  });
  it('cross-entropy and attention propagate NaN like the reference kernels', async () => {
    const logits = rnd([3, 8], 1);
    logits.data[5] = Number.NaN;
    for (const backend of ['wasm', 'cpu'] as const) {
      await initBackend(backend);
      const l = tf.tidy(
        () => crossEntropy(toT(logits) as tf.Tensor2D, tf.tensor1d([1, 2, 3], 'int32')).dataSync()[0],
      );
      expect(l, backend).toBeNaN();
      const qkv = rnd([4, 6], 2);
      qkv.data[3] = Number.NaN;
      const y = tf.tidy(() =>
        causalSelfAttention(toT(qkv) as tf.Tensor2D, { batch: 1, seqLen: 4, heads: 1 }).dataSync(),
      );
      expect(Number.isNaN(y[0]!), backend).toBe(true);
    }
    await initBackend('wasm');
  });
  it('exp underflows to exact zeros, never to subnormals (x86 computes those ~100× slower)', () => {
    // Every softmax (attention, cross-entropy) goes through the kernels' exp. Below ln(FLT_MIN) ≈ −87.34 it must
    // give 0: it once gave the clamp's 1.2e-38, whose products (× 1/Σ, × 1/rows) were subnormal, and sharply
    // peaked attention at high learning rates ran 4–10× slower.
    expect(strataKernelsActive()).toBe(true);
    const FLT_MIN = 2 ** -126;
    const row = [0, -50, -87.3, -87.4, -90, -200, -1e30, 3];
    const logits = tf.tensor2d([row, row.map((x) => x - 1)]);
    const targets = tf.tensor1d([0, 7], 'int32');
    const g = tf
      .grad((l: tf.Tensor) => crossEntropy(l as tf.Tensor2D, targets))(logits)
      .dataSync();
    const subnormal = [...g].filter((v) => v !== 0 && Math.abs(v) < FLT_MIN);
    expect(subnormal).toEqual([]);
    // l − logsumexp(l) below the threshold (logsumexp ≈ 3.05 here): exactly 0; above it: the softmax (÷ 2 rows)
    const z = row.reduce((a, x) => a + Math.exp(x), 0);
    for (const j of [2, 3, 4, 5, 6]) expect(g[j]).toBe(0);
    expect(g[1]! / (Math.exp(-50) / z / 2)).toBeCloseTo(1, 5);
    expect(g[0]! / (Math.exp(0) / z / 2 - 0.5)).toBeCloseTo(1, 5);
    tf.dispose([logits, targets]);
  });
  it('embedding, with and without learned positions', async () => {
    await agree([rnd([17, 12], 1), ints([15], 2, 17)], (e, i) =>
      embeddingLookup(e as tf.Tensor2D, i as tf.Tensor1D),
    );
    await agree([rnd([17, 12], 1), ints([15], 2, 17), rnd([8, 12], 3)], (e, i, p) =>
      embedWithPositions(e as tf.Tensor2D, i as tf.Tensor1D, p as tf.Tensor2D, 5),
    );
  });
});

describe('reductions and the optimizer kernel', () => {
  it('globalNorm', async () => {
    const arrs = [rnd([7, 9], 1), rnd([13], 2), rnd([3, 4, 5], 3)];
    await initBackend('wasm');
    const w = tf.tidy(() => globalNorm(arrs.map(toT)).dataSync()[0]!);
    await initBackend('cpu');
    const c = tf.tidy(() => globalNorm(arrs.map(toT)).dataSync()[0]!);
    expect(Math.abs(w - c) / c).toBeLessThan(1e-6);
  });
  it('fused AdamW equals the composite update bit for bit', async () => {
    await initBackend('wasm');
    const [p, g, m, v] = [rnd([37], 1), rnd([37], 2), rnd([37], 3, 0.1), rnd([37], 4, 0.01)].map(toT);
    for (const v0 of [v!, tf.abs(v!)]) {
      const h = {
        lr: 3e-3,
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-8,
        decay: 1 - 3e-3 * 0.1,
        bc1: 0.19,
        bc2: 0.0975,
        scale: 0.7,
      };
      const [po, mo, vo] = adamWFast(p!, g!, m!, v0, h);
      setStrataKernels(false);
      const gs = tf.mul(g!, h.scale);
      const mN = tf.add(tf.mul(m!, h.beta1), tf.mul(gs, 1 - h.beta1));
      const vN = tf.add(tf.mul(v0, h.beta2), tf.mul(tf.mul(gs, gs), 1 - h.beta2));
      const upd = tf.div(tf.div(mN, h.bc1), tf.add(tf.sqrt(tf.div(vN, h.bc2)), h.eps));
      const pN = tf.sub(tf.mul(p!, h.decay), tf.mul(upd, h.lr));
      setStrataKernels(true);
      expect(Array.from(mo!.dataSync())).toEqual(Array.from(mN.dataSync()));
      const vv = Array.from(vN.dataSync());
      const pp = Array.from(pN.dataSync());
      expect(Array.from(vo!.dataSync())).toEqual(vv);
      expect(Array.from(po!.dataSync())).toEqual(pp);
    }
  });
  it('shares buffers for clones (Identity/Cast overrides) without aliasing bugs', async () => {
    await initBackend('wasm');
    const a = tf.tensor([1, 2, 3]);
    const b = tf.clone(a);
    const c = tf.cast(a, 'float32');
    a.dispose();
    expect(Array.from(b.dataSync())).toEqual([1, 2, 3]);
    b.dispose();
    expect(Array.from(c.dataSync())).toEqual([1, 2, 3]);
    const i = tf.cast(tf.tensor([1.7, -2.2]), 'int32');
    expect(Array.from(i.dataSync())).toEqual([1, -2]);
    const v = tf.variable(tf.tensor([5, 6]));
    const snap = tf.clone(v);
    v.assign(tf.tensor([7, 8]));
    expect(Array.from(snap.dataSync())).toEqual([5, 6]);
  });
});
