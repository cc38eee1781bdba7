import {
  type AnyNormStrategy,
  getModelFamily,
  initBackend,
  type LanguageModel,
  layerNorm,
  NormInputRecorder,
  ParamStore,
  ParamWeightHost,
  Rng,
} from '@strata/core';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { builtinNorms, deepNorm, deepNormAlpha, registerBuiltinNorms } from '../src/index.js';
import { type RefConfig, referenceForward, rules, type SiteRule } from './reference.js';

const V = 20;
const D = 16;
const L = 4;
const IDS = [
  [3, 1, 4, 1, 5, 9],
  [2, 6, 5, 3, 5, 8],
];

beforeAll(async () => {
  await initBackend('wasm');
  registerBuiltinNorms();
});

function build(
  norm: string,
  options: Record<string, unknown>,
  extra: Record<string, unknown> = {},
  seed = 1,
): LanguageModel {
  const fam = getModelFamily('gpt');
  const cfg = fam.parseConfig({
    vocabSize: V,
    contextLength: 8,
    dModel: D,
    nHeads: 2,
    nLayers: L,
    dFF: 24,
    norm: { name: norm, options },
    ...extra,
  });
  return fam.create(cfg, { seed });
}

async function logitsOf(m: LanguageModel, ids = IDS): Promise<Float32Array> {
  const x = tf.tensor2d(ids.flat(), [ids.length, ids[0]!.length], 'int32');
  const y = m.forward(x);
  const out = (await y.data()) as Float32Array;
  x.dispose();
  y.dispose();
  return out;
}

/** Replaces every weight with random values so that LN affines, α/ω/λ and biases all matter. */
async function randomize(m: LanguageModel, seed: number): Promise<Map<string, Float32Array>> {
  const rng = new Rng(seed);
  const values = new Map<string, Float32Array>();
  for (const spec of m.params.specs()) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const z = rng.normal();
      v[i] =
        spec.role === 'norm_gain'
          ? 1 + 0.3 * z
          : spec.role === 'norm_bias'
            ? 0.2 * z
            : spec.role === 'scale'
              ? 0.8 + 0.3 * z
              : 0.3 * z;
    }
    values.set(spec.name, v);
  }
  m.params.assign(values);
  return values;
}

function relErr(model: ArrayLike<number>, ref: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    num = Math.max(num, Math.abs(model[i]! - ref[i]!));
    den = Math.max(den, Math.abs(ref[i]!));
  }
  return num / den;
}

const ruleFor = (s: AnyNormStrategy, opts: Record<string, unknown>): SiteRule => {
  if (s.name === 'deepnorm')
    return rules.deepnorm(
      (opts.alpha as number | undefined) ?? deepNormAlpha('decoder-only', { decoderLayers: L }),
    );
  if (s.name === 'mix-ln')
    return rules.mixLn(Math.floor(((opts.fraction as number | undefined) ?? 0.25) * L));
  return rules.fixed[s.name as keyof typeof rules.fixed];
};

describe('forward passes match a hand-written float64 reference', () => {
  const cases: [AnyNormStrategy, Record<string, unknown>][] = [
    ...builtinNorms.map((s): [AnyNormStrategy, Record<string, unknown>] => [s, {}]),
    [deepNorm, { alpha: 3.5 }],
    [builtinNorms.find((s) => s.name === 'mix-ln')!, { fraction: 0.5 }],
  ];
  for (const normKind of ['layernorm', 'rmsnorm'] as const) {
    for (const [s, opts] of cases) {
      it(`${s.name} ${JSON.stringify(opts)} under ${normKind}`, async () => {
        const m = build(s.name, opts, { normKind });
        const ws = await randomize(m, 7);
        const cfg: RefConfig = { vocab: V, d: D, heads: 2, layers: L, dFF: 24, normKind, eps: 1e-5 };
        const ref = referenceForward(ws, cfg, IDS, ruleFor(s, opts));
        const got = await logitsOf(m);
        expect(got.length).toBe(ref.length);
        // float32 model vs float64 reference: ~1e-6 relative in practice; 1e-4 leaves room for summation order
        expect(relErr(got, ref)).toBeLessThan(1e-4);
        m.dispose();
      });
    }
  }

  it('the reference would catch α on the branch (labml bug) and a missing/extra final norm', async () => {
    const m = build('deepnorm', {});
    const ws = await randomize(m, 3);
    const cfg: RefConfig = { vocab: V, d: D, heads: 2, layers: L, dFF: 24, normKind: 'layernorm', eps: 1e-5 };
    const got = await logitsOf(m);
    const alpha = deepNormAlpha('decoder-only', { decoderLayers: L });
    const onBranch: SiteRule = (x, G, { norm }) => {
      const g = G(x);
      return norm('norm')({ ...x, data: x.data.map((v, i) => v + alpha * g.data[i]!) });
    };
    expect(relErr(got, referenceForward(ws, cfg, IDS, onBranch))).toBeGreaterThan(1e-2);
    expect(relErr(got, referenceForward(ws, cfg, IDS, rules.fixed['post-ln']))).toBeGreaterThan(1e-2);
    const withFinal = new Map(ws);
    withFinal.set('final.norm.weight', new Float32Array(D).fill(1.5));
    expect(relErr(got, referenceForward(withFinal, cfg, IDS, rules.deepnorm(alpha)))).toBeGreaterThan(1e-2);
    m.dispose();
  });
});

describe('DeepNorm: α multiplies the skip, not the branch', () => {
  it('site output is LN(α·x + G(x)) for a branch independent of x', async () => {
    const store = new ParamStore();
    const rng = new Rng(1);
    const host = new ParamWeightHost(
      'blocks.0.attn.',
      store,
      rng,
      { normKind: 'layernorm', eps: 1e-5, normBias: true, dModel: 4, layer: 0 },
      new NormInputRecorder(),
    );
    const ctx = {
      layer: 0,
      numLayers: 8,
      site: 'attn',
      dModel: 4,
      dFF: 8,
      normKind: 'layernorm',
      eps: 1e-5,
      architecture: 'decoder-only',
      stack: 'decoder',
      encoderLayers: 0,
      decoderLayers: 8,
    } as const;
    const site = deepNorm.createSite(ctx, deepNorm.parseOptions({}), host);
    const alpha = 2; // (2·8)^(1/4)
    const x = tf.tensor2d([
      [1, -2, 0.5, 3],
      [0.1, 0.2, -0.3, 0.4],
    ]);
    const c = tf.tensor2d([
      [4, 1, -1, 0],
      [0, 2, 5, -3],
    ]);
    const out = site.forward(x, () => c);
    const skip = layerNorm(tf.add(tf.mul(x, alpha), c), undefined, undefined, 1e-5);
    const branch = layerNorm(tf.add(x, tf.mul(c, alpha)), undefined, undefined, 1e-5);
    const diff = (a: tf.Tensor, b: tf.Tensor) => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!;
    expect(diff(out, skip)).toBeLessThan(1e-5);
    expect(diff(out, branch)).toBeGreaterThan(0.1);
    tf.dispose([x, c, out, skip, branch]);
    store.dispose();
  });
});

describe('final norms', () => {
  const withFinal = ['pre-ln', 'subln', 'sandwich-ln', 'layerscale', 'mix-ln'];
  const without = ['post-ln', 'deepnorm', 'rezero', 'admin'];
  it.each([...withFinal, ...without])('%s', (name) => {
    const m = build(name, {}, { nLayers: 1 });
    const finals = m.params.names().filter((n) => n.startsWith('final.'));
    if (withFinal.includes(name)) expect(finals).toEqual(['final.norm.weight', 'final.norm.bias']);
    else expect(finals).toEqual([]);
    m.dispose();
  });
});

describe('ReZero', () => {
  it('is the identity at init: logits = (tok_emb[ids] + pos_emb) · tok_embᵀ', async () => {
    const m = build('rezero', {});
    const ws = await m.params.read();
    const tok = ws.get('tok_emb.weight')!;
    const pos = ws.get('pos_emb.weight')!;
    const ref: number[] = [];
    for (const row of IDS)
      row.forEach((id, t) => {
        for (let v = 0; v < V; v++) {
          let s = 0;
          for (let j = 0; j < D; j++) s += (tok[id * D + j]! + pos[t * D + j]!) * tok[v * D + j]!;
          ref.push(s);
        }
      });
    expect(relErr(await logitsOf(m), ref)).toBeLessThan(1e-5);
    expect(m.params.names().filter((n) => n.endsWith('.alpha'))).toHaveLength(2 * L);
    m.dispose();
  });
});

describe('DeepNorm depth growth stays exact when α is pinned', () => {
  /** Appends `extra` zero-output blocks after the last block using the Post-LN insertion recipe. */
  function grow(
    small: Map<string, Float32Array>,
    big: LanguageModel,
    nSmall: number,
    perLayerAlpha?: number,
  ) {
    const values = new Map<string, Float32Array>();
    for (const spec of big.params.specs()) {
      const n = spec.shape.reduce((a, b) => a * b, 1);
      const from = small.get(spec.name);
      let v: Float32Array;
      if (from) v = Float32Array.from(from);
      else if (spec.role === 'norm_gain') v = new Float32Array(n).fill(1);
      else if (/\.(attn|mlp)\.proj\.(weight|bias)$/.test(spec.name) || spec.role === 'norm_bias')
        v = new Float32Array(n);
      else if (spec.name.endsWith('.alpha')) v = new Float32Array(n).fill(perLayerAlpha ?? 1);
      else v = Float32Array.from({ length: n }, (_, i) => Math.sin(i + 1) * 0.1);
      values.set(spec.name, v);
    }
    // Move the old last LN's affine to the new last LN; reset the old one.
    const lastOld = `blocks.${nSmall - 1}.mlp.norm`;
    const lastNew = `blocks.${L - 1}.mlp.norm`;
    values.set(`${lastNew}.weight`, Float32Array.from(small.get(`${lastOld}.weight`)!));
    values.set(`${lastNew}.bias`, Float32Array.from(small.get(`${lastOld}.bias`)!));
    values.set(`${lastOld}.weight`, new Float32Array(D).fill(1));
    values.set(`${lastOld}.bias`, new Float32Array(D));
    big.params.assign(values);
  }

  it('pinning the old α (option alpha) keeps the function; recomputing α does not', async () => {
    const nSmall = 2;
    const small = build('deepnorm', {}, { nLayers: nSmall });
    const w = await randomize(small, 11);
    const want = await logitsOf(small);
    const alphaOld = deepNormAlpha('decoder-only', { decoderLayers: nSmall });

    const pinned = build('deepnorm', { alpha: alphaOld });
    grow(w, pinned, nSmall);
    expect(relErr(await logitsOf(pinned), want)).toBeLessThan(1e-4);

    const perLayer = build('deepnorm', { perLayerAlpha: true });
    grow(w, perLayer, nSmall, alphaOld);
    expect(relErr(await logitsOf(perLayer), want)).toBeLessThan(1e-4);

    const recomputed = build('deepnorm', {});
    grow(w, recomputed, nSmall);
    expect(relErr(await logitsOf(recomputed), want)).toBeGreaterThan(1e-2);
    for (const m of [small, pinned, perLayer, recomputed]) m.dispose();
  });

  it('perLayerAlpha stores α = (2N)^(1/4) of the created depth as non-trainable weights', async () => {
    const m = build('deepnorm', { perLayerAlpha: true });
    const alphas = m.params.specs().filter((s) => s.name.endsWith('.alpha'));
    expect(alphas).toHaveLength(2 * L);
    for (const s of alphas) {
      expect(s.meta?.frozen).toBe(true);
      expect(s.decay).toBe(false);
      expect(m.params.get(s.name).dataSync()[0]).toBeCloseTo((2 * L) ** 0.25, 6);
    }
    const x = tf.tensor2d(IDS.flat(), [2, 6], 'int32');
    // α is a non-trainable buffer: the trainer never asks for its gradient, and the optimizer never sees it.
    for (const s of alphas) expect(s.trainable).toBe(false);
    expect(m.params.trainableVariables().some(([n]) => n.endsWith('.alpha'))).toBe(false);
    const { grads, value } = tf.variableGrads(
      () => tf.sum(m.forward(x)) as tf.Scalar,
      m.params.trainableVariables().map(([, v]) => v),
    );
    tf.dispose([x, value, ...Object.values(grads)]);
    m.dispose();
  });
});
