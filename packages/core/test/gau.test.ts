import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type AttentionNormalization,
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
function makeUnit(causal: boolean, norm: AttentionNormalization, seed = 3) {
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
    softmaxPlusBase: 512,
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

function runUnit(unit: GatedAttentionUnit, h: tf.Tensor2D, causal: boolean, padded: boolean) {
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
