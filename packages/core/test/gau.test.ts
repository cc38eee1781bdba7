import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  AttentionEntropyStats,
  type AttentionNormalization,
  type AttentionObserver,
  attentionRowEntropy,
  causalMask,
  GatedAttentionUnit,
  type GPTConfig,
  getModelFamily,
  getNorm,
  initBackend,
  type LanguageModel,
  NormInputRecorder,
  ParamStore,
  ParamWeightHost,
  paddingMask,
  Rng,
  ropeTables,
  supportsKVCache,
  trainingFlops,
  UnitBuilder,
} from '../src/index.js';
import { type GAUWeights, gauReference } from './reference-gau.js';

beforeAll(async () => {
  await initBackend('cpu');
});

const d = 6;
const e = 8;
const s = 4;
const NORMS: AttentionNormalization[] = ['softmax', 'relu2', 'softmax_plus'];

/** A GAU with biases and non-trivial scales/offsets, its weights as plain arrays, and its run inputs. */
function makeUnit(causal: boolean, norm: AttentionNormalization, seed = 3, softmaxPlusBase = 512) {
  const params = new ParamStore();
  const rng = new Rng(seed);
  const settings = {
    dModel: d,
    dFF: e,
    nHeads: 1,
    bias: true,
    activation: 'gelu' as const,
    normKind: 'rmsnorm' as const,
    normEps: 1e-5,
    normBias: false,
    initStd: 0.5,
    initScheme: 'gpt2' as const,
    architecture: (causal ? 'decoder-only' : 'encoder-only') as 'decoder-only' | 'encoder-only',
  };
  const u = new UnitBuilder(params, rng, getNorm('pre-ln'), {}, new NormInputRecorder(), settings);
  const ctx = {
    numLayers: 1,
    dModel: d,
    dFF: e,
    normKind: 'rmsnorm' as const,
    eps: 1e-5,
    architecture: settings.architecture,
    stack: (causal ? 'decoder' : 'encoder') as 'decoder' | 'encoder',
    encoderLayers: causal ? 0 : 1,
    decoderLayers: causal ? 1 : 0,
    sublayersPerLayer: 1 as const,
  };
  const unit = new GatedAttentionUnit(u, { ctx, index: 0, layer: 0, prefix: 'blocks.0.' }, causal, {
    gauDim: e,
    gauKeyDim: s,
    attentionNorm: norm,
    softmaxPlusBase,
  });
  // Random biases, scales and offsets (their inits are 0 / 1 / 0), so every term is exercised.
  const r = new Rng(seed + 100);
  for (const v of [unit.inB!, unit.qScale, unit.kScale, unit.qOffset!, unit.kOffset!, unit.projB!]) {
    const n = v.shape[0]!;
    v.assign(tf.tensor1d(Array.from({ length: n }, () => r.normal() * 0.7 + (v === unit.qScale ? 1 : 0))));
  }
  const arr = (v: tf.Variable) => Array.from(v.dataSync());
  const weights: GAUWeights = {
    d,
    e,
    s,
    inW: arr(unit.inW),
    inB: arr(unit.inB!),
    qScale: arr(unit.qScale),
    kScale: arr(unit.kScale),
    qOffset: arr(unit.qOffset!),
    kOffset: arr(unit.kOffset!),
    projW: arr(unit.projW),
    projB: arr(unit.projB!),
  };
  return { unit, weights, params };
}

/** ids with padding (256) at the end of row 1 and in the middle of row 2; row 0 has none. */
const IDS = [
  [1, 2, 3, 4, 5],
  [6, 7, 8, 256, 256],
  [9, 256, 10, 11, 256],
];
const B = IDS.length;
const T = IDS[0]!.length;
const valid = IDS.map((r) => r.map((t) => t !== 256));

function runUnit(
  unit: GatedAttentionUnit,
  h: tf.Tensor2D,
  causal: boolean,
  padded: boolean,
  observeAttention?: AttentionObserver,
) {
  const tables = ropeTables(T, s);
  let mask: tf.Tensor | undefined;
  const pad = padded ? paddingMask(tf.tensor2d(IDS, [B, T], 'int32'), 256) : undefined;
  if (causal) {
    const c = causalMask(T);
    // Causal + padding: [B, T, T] (the layer takes any mask broadcastable to its scores).
    mask = pad ? tf.add(c, tf.reshape(pad, [B, 1, T])) : c;
  } else mask = pad;
  return unit.forward(
    h,
    {
      B,
      T,
      dropCount: 0,
      dropout: undefined,
      rope: { cos: tf.tensor2d(tables.cos, [T, s]), sin: tf.tensor2d(tables.sin, [T, s]) },
      mask,
      ...(observeAttention ? { observeAttention } : {}),
    },
    0,
  );
}

function input(seed = 7): number[][][] {
  const r = new Rng(seed);
  return IDS.map((row) => row.map(() => Array.from({ length: d }, () => r.normal())));
}

describe('GAU layer vs a float64 reference', () => {
  for (const causal of [false, true])
    for (const norm of NORMS)
      for (const padded of [false, true])
        it(`${causal ? 'causal' : 'bidirectional'}, ${norm}, ${padded ? 'with' : 'without'} padding`, () => {
          const { unit, weights, params } = makeUnit(causal, norm);
          const h = input();
          const got = tf.tidy(() =>
            runUnit(unit, tf.tensor2d(h.flat(), [B * T, d]), causal, padded).arraySync(),
          );
          const ref = gauReference(h, {
            weights,
            causal,
            norm,
            rope: true,
            valid: padded ? valid : IDS.map((r) => r.map(() => true)),
          }).flat();
          let maxErr = 0;
          let maxRef = 0;
          for (let i = 0; i < ref.length; i++)
            for (let c = 0; c < d; c++) {
              maxErr = Math.max(maxErr, Math.abs(got[i]![c]! - ref[i]![c]!));
              maxRef = Math.max(maxRef, Math.abs(ref[i]![c]!));
            }
          expect(maxRef).toBeGreaterThan(0.1);
          expect(maxErr).toBeLessThan(2e-5 * Math.max(1, maxRef));
          params.dispose();
        });

  it('softmax_plus differs from softmax exactly by the log n / log 512 factor (n = 512 gives softmax)', () => {
    const { weights } = makeUnit(false, 'softmax');
    const h = input();
    const all = IDS.map((r) => r.map(() => true));
    const a = gauReference(h, { weights, causal: false, norm: 'softmax', rope: true, valid: all });
    const b = gauReference(h, {
      weights,
      causal: false,
      norm: 'softmax_plus',
      rope: true,
      valid: all,
      plusBase: T,
    });
    for (let i = 0; i < B; i++)
      for (let t = 0; t < T; t++)
        for (let c = 0; c < d; c++) expect(b[i]![t]![c]).toBeCloseTo(a[i]![t]![c]!, 12);
  });
});

describe('GAU gradients (finite differences of the float64 reference)', () => {
  for (const norm of NORMS)
    it(`${norm}, causal with padding: d loss / d every weight matches central differences`, () => {
      const causal = true;
      const { unit, weights, params } = makeUnit(causal, norm, 11);
      const h = input(5);
      const R = new Rng(9);
      const proj = Array.from({ length: B * T * d }, () => R.normal());
      const refLoss = (w: GAUWeights) =>
        gauReference(h, { weights: w, causal, norm, rope: true, valid })
          .flat(2)
          .reduce((acc, x, i) => acc + x * proj[i]!, 0);
      const vars: [keyof GAUWeights, tf.Variable][] = [
        ['inW', unit.inW],
        ['inB', unit.inB!],
        ['qScale', unit.qScale],
        ['kScale', unit.kScale],
        ['qOffset', unit.qOffset!],
        ['kOffset', unit.kOffset!],
        ['projW', unit.projW],
      ];
      const { grads } = tf.variableGrads(() =>
        tf.sum(
          tf.mul(
            runUnit(unit, tf.tensor2d(h.flat(), [B * T, d]), causal, true),
            tf.tensor2d(proj, [B * T, d]),
          ),
        ),
      );
      for (const [key, v] of vars) {
        const g = grads[v.name]!.dataSync();
        const base = weights[key] as number[];
        // A few coordinates per tensor (every one for the small vectors).
        const idx = base.length <= s ? base.map((_, i) => i) : [0, 3, base.length >> 1, base.length - 1];
        for (const i of idx) {
          const eps = 1e-5;
          const plus = { ...weights, [key]: base.map((x, j) => (j === i ? x + eps : x)) };
          const minus = { ...weights, [key]: base.map((x, j) => (j === i ? x - eps : x)) };
          const fd = (refLoss(plus) - refLoss(minus)) / (2 * eps);
          expect(Math.abs(g[i]! - fd)).toBeLessThan(2e-3 * Math.max(1, Math.abs(fd)));
        }
      }
      params.dispose();
    });
});

function gauModel(overrides: Record<string, unknown>, family = 'gpt', seed = 1): LanguageModel {
  const fam = getModelFamily(family);
  return fam.create(
    fam.parseConfig({
      vocabSize: 276,
      contextLength: 12,
      dModel: 8,
      nLayers: 2,
      nHeads: 2,
      block: 'gau',
      gauKeyDim: 4,
      positions: 'rope',
      ...overrides,
    }) as GPTConfig,
    { seed },
  );
}

describe('GAU models', () => {
  for (const attentionNorm of NORMS)
    it(`a causal GAU LM (${attentionNorm}) decodes with its KV cache exactly as the full forward pass`, () => {
      const m = gauModel({ attentionNorm, bias: false, normAffine: false, embedNorm: true });
      expect(supportsKVCache(m)).toBe(true);
      if (!supportsKVCache(m)) return;
      const ids = [[5, 9, 2, 7, 1, 3, 8]];
      const full = tf.tidy(() => m.forward(tf.tensor2d(ids, [1, 7], 'int32')).arraySync()[0]!);
      const cache = m.createKVCache(1);
      const parts = [[5, 9, 2], [7], [1, 3, 8]];
      const inc: number[][] = [];
      for (const p of parts)
        inc.push(
          ...tf.tidy(
            () => m.forwardIncremental(tf.tensor2d([p], [1, p.length], 'int32'), cache).arraySync()[0]!,
          ),
        );
      cache.dispose();
      for (let t = 0; t < 7; t++)
        for (let v = 0; v < 276; v += 37) expect(inc[t]![v]).toBeCloseTo(full[t]![v]!, 4);
      m.dispose();
    });

  it('a GAU layer has 2e+s input columns, (s+e)/2 attention width and no heads in its FLOP count', () => {
    const m = gauModel({ bias: false });
    const names = m.params.specs().map((x) => `${x.name} ${JSON.stringify(x.shape)}`);
    expect(names).toContain('blocks.0.gau.in.weight [8,36]');
    expect(names).toContain('blocks.1.gau.proj.weight [16,8]');
    const f = trainingFlops(m, 12);
    expect(f.attentionWidth).toBe(2 * ((4 + 16) / 2));
    // in [8, 36] + proj [16, 8] per layer, plus the tied head [276, 8].
    expect(f.matmulParams).toBe(2 * (8 * 36 + 16 * 8) + 276 * 8);
    m.dispose();
  });

  it('GPT-2 init counts a GAU layer as one residual sublayer: output projections get std/√L', () => {
    const L = 4;
    const m = gauModel({ dModel: 64, nLayers: L, gauKeyDim: 16, initStd: 0.02 });
    const std = (name: string) => {
      const v = Array.from(m.params.get(name).dataSync());
      return Math.sqrt(v.reduce((a, x) => a + x * x, 0) / v.length);
    };
    expect(std('blocks.0.gau.proj.weight') / (0.02 / Math.sqrt(L))).toBeCloseTo(1, 1);
    expect(std('blocks.0.gau.in.weight') / 0.02).toBeCloseTo(1, 1);
    m.dispose();
  });

  it('the encoder ignores padding: changing a padded token changes no real position', () => {
    const m = gauModel({ attentionNorm: 'softmax_plus' }, 'encoder');
    const a = tf.tidy(() => m.forward(tf.tensor2d([[3, 4, 5, 256, 256]], [1, 5], 'int32')).arraySync()[0]!);
    const ids2 = [[3, 4, 5, 256, 256]];
    // Same real tokens, more padding: real positions must not move (n counts real keys only).
    const b = tf.tidy(
      () => m.forward(tf.tensor2d([[...ids2[0]!, 256, 256]], [1, 7], 'int32')).arraySync()[0]!,
    );
    for (let t = 0; t < 3; t++) for (let v = 0; v < 276; v += 41) expect(b[t]![v]).toBeCloseTo(a[t]![v]!, 5);
    m.dispose();
  });

  it('refuses GAU-only settings on a Transformer stack and odd RoPE key sizes, naming the field', () => {
    const fam = getModelFamily('gpt');
    expect(() => fam.parseConfig({ attentionNorm: 'relu2' })).toThrow(
      /model.attentionNorm .*GAU layers only/,
    );
    expect(() => fam.parseConfig({ block: 'gau', positions: 'rope', gauKeyDim: 5 })).toThrow(/gauKeyDim/);
    expect(() => fam.parseConfig({ block: 'gau', activation: 'swiglu' })).toThrow(/activation/);
    expect(() => fam.parseConfig({ block: 'attention' })).toThrow(/model.block/);
    expect(() => getModelFamily('encdec').parseConfig({ block: 'gau' })).toThrow(/encoder-decoder/);
  });
});

describe('parameter-free norms', () => {
  it('RMSNorm and LayerNorm without gain or bias: no weights, and the hand-computed values', () => {
    const params = new ParamStore();
    const rec = new NormInputRecorder();
    const host = (kind: 'rmsnorm' | 'layernorm') =>
      new ParamWeightHost(
        'x.',
        params,
        new Rng(1),
        { normKind: kind, eps: 1e-12, normBias: true, dModel: 2, affine: false },
        rec,
      );
    const rms = host('rmsnorm').norm('norm');
    const ln = host('layernorm').norm('norm', { dim: 3 });
    expect(params.count()).toBe(0);
    // [3, 4]: mean square 12.5 → [3, 4] / √12.5.
    const r = tf.tidy(() => rms(tf.tensor2d([[3, 4]])).arraySync()[0]!);
    expect(r[0]).toBeCloseTo(3 / Math.sqrt(12.5), 6);
    expect(r[1]).toBeCloseTo(4 / Math.sqrt(12.5), 6);
    // [1, 2, 6]: mean 3, variance (4 + 1 + 9)/3 → (x − 3)/√(14/3).
    const l = tf.tidy(() => ln(tf.tensor2d([[1, 2, 6]])).arraySync()[0]!);
    for (const [i, x] of [1, 2, 6].entries()) expect(l[i]).toBeCloseTo((x - 3) / Math.sqrt(14 / 3), 6);
  });

  it('a model with normAffine false stores no norm weights (checkpoint names), and forward still normalizes', () => {
    const withNorms = gauModel({ normKind: 'rmsnorm', embedNorm: true });
    const without = gauModel({ normKind: 'rmsnorm', embedNorm: true, normAffine: false });
    const names = (m: LanguageModel) => m.params.specs().map((x) => x.name);
    expect(names(withNorms).filter((n) => /norm/.test(n))).toEqual([
      'emb_norm.weight',
      'blocks.0.gau.norm.weight',
      'blocks.1.gau.norm.weight',
      'final.norm.weight',
    ]);
    expect(names(without).filter((n) => /norm/.test(n))).toEqual([]);
    // Same init stream otherwise (norm gains draw nothing), so with unit gains the two compute the same.
    const ids = tf.tensor2d([[1, 2, 3]], [1, 3], 'int32');
    const a = tf.tidy(() => withNorms.forward(ids).arraySync());
    const b = tf.tidy(() => without.forward(ids).arraySync());
    expect(b[0]![2]![5]).toBeCloseTo(a[0]![2]![5]!, 5);
    withNorms.dispose();
    without.dispose();
  });
});

describe('attention entropy (the observeAttention hook)', () => {
  /** Float64 entropy of a row of weights, normalized to sum 1 (NaN for a row of zeros). */
  const entropy64 = (A: number[]) => {
    const m = A.reduce((acc, a) => acc + a, 0);
    if (m === 0) return Number.NaN;
    let h = 0;
    for (const a of A) if (a > 0) h -= (a / m) * Math.log(a / m);
    return h;
  };
  const allValid = IDS.map((r) => r.map(() => true));

  /** The unit's observed attention weights `[B][T][T]`, their row entropies and sums `[B·T]`. */
  function observe(unit: GatedAttentionUnit, causal: boolean, padded: boolean, h: number[][][]) {
    const got = { entropy: [] as number[], mass: [] as number[], weights: [] as number[][][], calls: 0 };
    tf.tidy(() => {
      runUnit(unit, tf.tensor2d(h.flat(), [B * T, d]), causal, padded, (layer, A) => {
        expect(layer).toBe(0);
        const r = attentionRowEntropy(A);
        got.entropy = Array.from(r.entropy.dataSync());
        got.mass = Array.from(r.mass.dataSync());
        got.weights = A.arraySync();
        got.calls++;
      });
    });
    expect(got.calls).toBe(1);
    return got;
  }

  /** Float64 rows of the reference: entropy, sum and n per query `[B·T]`. */
  function referenceRows(
    weights: GAUWeights,
    causal: boolean,
    norm: AttentionNormalization,
    padded: boolean,
    plusBase = 512,
  ) {
    const rows: { H: number; mass: number; n: number; A: number[] }[] = [];
    gauReference(input(), {
      weights,
      causal,
      norm,
      rope: true,
      plusBase,
      valid: padded ? valid : allValid,
      onRow: (b, t, n, A) => {
        rows[b * T + t] = { H: entropy64(A), mass: A.reduce((acc, a) => acc + a, 0), n, A };
      },
    });
    return rows;
  }

  for (const causal of [false, true])
    for (const norm of NORMS)
      for (const padded of [false, true])
        it(`${causal ? 'causal' : 'bidirectional'}, ${norm}, ${padded ? 'with' : 'without'} padding: H_i matches float64 and 0 ≤ H_i ≤ ln n_i`, () => {
          const { unit, weights, params } = makeUnit(causal, norm);
          const got = observe(unit, causal, padded, input());
          const ref = referenceRows(weights, causal, norm, padded);
          let sharp = 0;
          for (let i = 0; i < B * T; i++) {
            const r = ref[i]!;
            expect(r.n).toBeGreaterThanOrEqual(1);
            expect(got.mass[i]).toBeCloseTo(r.mass, 5);
            if (Number.isNaN(r.H)) {
              // relu2: every allowed score was negative, so the row has no distribution.
              expect(norm).toBe('relu2');
              expect(got.entropy[i]).toBeNaN();
              continue;
            }
            expect(Math.abs(got.entropy[i]! - r.H)).toBeLessThan(1e-5);
            expect(r.H).toBeGreaterThanOrEqual(0);
            expect(r.H).toBeLessThanOrEqual(Math.log(r.n) + 1e-12);
            expect(got.entropy[i]).toBeGreaterThanOrEqual(-1e-6);
            expect(got.entropy[i]).toBeLessThanOrEqual(Math.log(r.n) + 1e-5);
            if (r.H < Math.log(r.n) - 1e-3) sharp++;
          }
          // Several rows are measurably non-uniform (100× the tolerance), so the check could not pass on ln n alone.
          expect(sharp).toBeGreaterThanOrEqual(2);
          params.dispose();
        });

  for (const zero of ['q', 'k'] as const)
    for (const norm of NORMS)
      it(`${zero} = 0 gives uniform attention: H_i = ln n_i exactly (${norm}; relu2: zero rows, no entropy)`, () => {
        for (const causal of [false, true]) {
          const { unit, weights, params } = makeUnit(causal, norm);
          const [scale, offset] = zero === 'q' ? [unit.qScale, unit.qOffset!] : [unit.kScale, unit.kOffset!];
          scale.assign(tf.zerosLike(scale));
          offset.assign(tf.zerosLike(offset));
          const got = observe(unit, causal, true, input());
          const ref = referenceRows(weights, causal, norm, true);
          for (let i = 0; i < B * T; i++) {
            if (norm === 'relu2') {
              expect(got.mass[i]).toBe(0);
              expect(got.entropy[i]).toBeNaN();
            } else expect(Math.abs(got.entropy[i]! - Math.log(ref[i]!.n))).toBeLessThan(1e-6);
          }
          params.dispose();
        }
      });

  it('softmax_plus with base n equals softmax on rows with n keys, and differs on the others', () => {
    for (const causal of [false, true]) {
      const soft = makeUnit(causal, 'softmax');
      const plus = makeUnit(causal, 'softmax_plus', 3, T);
      const a = observe(soft.unit, causal, false, input());
      const b = observe(plus.unit, causal, false, input());
      for (let i = 0; i < B; i++)
        for (let t = 0; t < T; t++) {
          const n = causal ? t + 1 : T;
          const diff = Math.max(...a.weights[i]![t]!.map((x, j) => Math.abs(x - b.weights[i]![t]![j]!)));
          if (n === T) {
            expect(diff).toBeLessThan(1e-6);
            expect(b.entropy[i * T + t]).toBeCloseTo(a.entropy[i * T + t]!, 6);
          } else if (n > 1) expect(diff).toBeGreaterThan(1e-3);
        }
      soft.params.dispose();
      plus.params.dispose();
    }
  });

  it('GPT.attentionEntropy: per layer and query of a causal GAU LM, with n = t + 1 keys', async () => {
    const m = gauModel({ attentionNorm: 'softmax', initStd: 0.5 });
    const ids = tf.tensor2d([[5, 9, 2, 7, 1, 3, 8, 4]], [1, 8], 'int32');
    const r = await m.attentionEntropy!(ids);
    expect([r.layers, r.batch, r.length]).toEqual([2, 1, 8]);
    expect(Array.from(r.keys)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    for (let l = 0; l < 2; l++)
      for (let t = 0; t < 8; t++) {
        expect(r.mass[l]![t]).toBeCloseTo(1, 5);
        expect(r.entropy[l]![t]).toBeGreaterThanOrEqual(-1e-6);
        expect(r.entropy[l]![t]).toBeLessThanOrEqual(Math.log(t + 1) + 1e-5);
      }
    expect(r.entropy[0]![0]).toBeCloseTo(0, 6);
    ids.dispose();
    m.dispose();
  });

  it('GPT.attentionEntropy in an encoder leaves padding out: pad queries get n = 0, real ones n = real tokens', async () => {
    const m = gauModel({ attentionNorm: 'softmax_plus', initStd: 0.5 }, 'encoder');
    const padded = tf.tensor2d(
      [
        [3, 4, 5, 256, 256],
        [1, 2, 3, 4, 5],
      ],
      [2, 5],
      'int32',
    );
    const alone = tf.tensor2d([[3, 4, 5]], [1, 3], 'int32');
    const r = await m.attentionEntropy!(padded);
    const s = await m.attentionEntropy!(alone);
    expect(Array.from(r.keys)).toEqual([3, 3, 3, 0, 0, 5, 5, 5, 5, 5]);
    // The padded sequence's real queries see exactly what the unpadded one's do.
    for (let l = 0; l < 2; l++)
      for (let t = 0; t < 3; t++) expect(r.entropy[l]![t]).toBeCloseTo(s.entropy[l]![t]!, 5);
    tf.dispose([padded, alone]);
    m.dispose();
  });

  it('refuses a model with standard Transformer blocks, saying their fused attention never materializes A', async () => {
    const m = gauModel({ block: 'transformer', gauKeyDim: undefined });
    const ids = tf.tensor2d([[1, 2, 3]], [1, 3], 'int32');
    await expect(m.attentionEntropy!(ids)).rejects.toThrow(
      /GAU layers.*fused kernel that never materializes/,
    );
    ids.dispose();
    m.dispose();
  });

  it('AttentionEntropyStats: power-of-two buckets of n, bucket means, ln n and the slope of H on ln n', () => {
    const stats = new AttentionEntropyStats();
    const n = 10;
    // Two sequences of 10 causal positions (and one padding query, n = 0, left out); layer 0 has
    // H = 0.5 ln n + 0.1, layer 1 H = ln n, except one row with no distribution (NaN).
    for (let rep = 0; rep < 2; rep++) {
      const keys = Int32Array.from([...Array.from({ length: n }, (_, t) => t + 1), 0]);
      const l0 = Float32Array.from(keys, (k) => (k > 0 ? 0.5 * Math.log(k) + 0.1 : 99));
      const l1 = Float32Array.from(keys, (k) =>
        k === 5 && rep === 0 ? Number.NaN : k > 0 ? Math.log(k) : 99,
      );
      stats.add({ layers: 2, batch: 1, length: 11, entropy: [l0, l1], mass: [l0, l1], keys });
    }
    const r = stats.report();
    expect(r.layers).toBe(2);
    expect(r.rows).toBe(20);
    expect(r.buckets.map((b) => [b.nMin, b.nMax, b.rows])).toEqual([
      [1, 1, 2],
      [2, 3, 4],
      [4, 7, 8],
      [8, 10, 6],
    ]);
    const b = r.buckets[2]!;
    const ln = [4, 5, 6, 7].map(Math.log);
    const meanLn = ln.reduce((a, x) => a + x, 0) / 4;
    expect(b.meanLogN).toBeCloseTo(meanLn, 12);
    expect(b.layers[0]).toBeCloseTo(0.5 * meanLn + 0.1, 6);
    // Layer 1 lost one row of n = 5: the mean of its 7 rows.
    expect(b.layers[1]).toBeCloseTo((2 * (ln[0]! + ln[2]! + ln[3]!) + ln[1]!) / 7, 6);
    expect(b.emptyRows).toEqual([0, 1]);
    expect(b.meanEntropy).toBeCloseTo((b.layers[0]! + b.layers[1]!) / 2, 12);
    expect(r.buckets[0]!.layers[0]).toBeCloseTo(0.1, 6);
    expect(r.slope.layers[0]).toBeCloseTo(0.5, 5);
    expect(r.slope.layers[1]).toBeCloseTo(1, 5);
    expect(r.slope.mean).toBeCloseTo(0.75, 5);
  });
});
