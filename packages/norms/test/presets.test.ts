/** The named presets (roformer-v2, gau-alpha, gau-lm) build exactly the architecture the checkpoint-format guide lists. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  type GPTConfig,
  getModelFamily,
  getModelPreset,
  initBackend,
  type LanguageModel,
  MODEL_PRESETS,
} from '@strata/core';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { adminResidualCount, deepNormAlpha, deepNormConstants, registerBuiltinNorms } from '../src/index.js';

beforeAll(async () => {
  await initBackend('cpu');
  registerBuiltinNorms();
});

const GUIDE = fileURLToPath(new URL('../../../docs/guides/checkpoint-format.md', import.meta.url));

/** The guide's listings: fenced blocks opened by ```text preset=NAME key=value … */
function documented(): Map<string, { sizes: Record<string, number>; tensors: string[] }> {
  const out = new Map<string, { sizes: Record<string, number>; tensors: string[] }>();
  const re = /```text preset=([\w-]+)((?: \w+=\d+)*)\n([\s\S]*?)```/g;
  for (const m of readFileSync(GUIDE, 'utf8').matchAll(re)) {
    const sizes = Object.fromEntries(
      m[2]!
        .trim()
        .split(/\s+/)
        .map((kv) => kv.split('='))
        .map(([k, v]) => [k!, Number(v)]),
    );
    out.set(m[1]!, { sizes, tensors: m[3]!.trim().split('\n') });
  }
  return out;
}

function build(name: string, sizes: Record<string, number>): LanguageModel {
  const p = getModelPreset(name);
  const fam = getModelFamily(p.family);
  return fam.create(fam.parseConfig({ ...p.model, ...sizes }), { seed: 1 });
}

const listing = (m: LanguageModel) => m.params.specs().map((s) => `${s.name} [${s.shape.join(', ')}]`);

describe('model presets', () => {
  it('every preset has a listing in the checkpoint-format guide, and the CLI offers exactly these', () => {
    expect([...documented().keys()].sort()).toEqual(MODEL_PRESETS.map((p) => p.name).sort());
    const specs = readFileSync(fileURLToPath(new URL('../../cli/src/specs.ts', import.meta.url)), 'utf8');
    const choices = /name: 'preset',[\s\S]*?choices: \[([^\]]*)\]/.exec(specs)![1]!;
    expect(
      choices
        .match(/'[^']+'/g)!
        .map((s) => s.slice(1, -1))
        .sort(),
    ).toEqual(MODEL_PRESETS.map((p) => p.name).sort());
  });

  for (const [name, doc] of documented())
    it(`${name} builds exactly the tensors the guide lists`, () => {
      const m = build(name, doc.sizes);
      expect(listing(m)).toEqual(doc.tensors);
      m.dispose();
    });

  it('roformer-v2 and gau-alpha: RoPE, no biases, Post-LN over a parameter-free RMS norm (eps 1e-12), embedding norm', () => {
    for (const name of ['roformer-v2', 'gau-alpha', 'gau-lm']) {
      const m = build(name, { dModel: 16, nLayers: 2, nHeads: 2 });
      const c = m.config as GPTConfig;
      expect(c).toMatchObject({
        positions: 'rope',
        bias: false,
        normKind: 'rmsnorm',
        normAffine: false,
        normEps: 1e-12,
        embedNorm: true,
      });
      expect(c.norm.name).toBe('post-ln');
      expect(m.params.specs().some((s) => /bias|norm/.test(s.name))).toBe(false);
      expect(c.block).toBe(name === 'roformer-v2' ? 'transformer' : 'gau');
      if (name !== 'roformer-v2') expect(c.attentionNorm).toBe('softmax_plus');
      else expect(c.activation).toBe('relu');
      expect(c.architecture).toBe(name === 'gau-lm' ? 'decoder-only' : 'encoder-only');
      m.dispose();
    }
  });

  it('Post-LN output rows of a parameter-free RMS norm have unit RMS (the last layer normalizes)', () => {
    const m = build('gau-alpha', { dModel: 16, nLayers: 2, nHeads: 2, gauKeyDim: 8 });
    // A tied head reads the normalized stream: logits = h·Eᵀ; recover ‖h‖ through the encoder's own summary is
    // not possible, so check the stage outputs directly.
    const stages = (
      m as unknown as {
        stages: (ids: tf.Tensor2D) => { embed(): tf.Tensor2D; block(i: number, x: tf.Tensor2D): tf.Tensor2D };
      }
    ).stages(tf.tensor2d([[3, 4, 5, 6]], [1, 4], 'int32'));
    const rms = tf.tidy(() => {
      let x = stages.embed();
      x = stages.block(0, x);
      x = stages.block(1, x);
      return Array.from(tf.sqrt(tf.mean(tf.square(x), 1)).dataSync());
    });
    for (const r of rms) expect(r).toBeCloseTo(1, 5);
    m.dispose();
  });
});

/** DeepNorm options without pinned α or β (the formulas decide). */
const NO_PIN = { alpha: null, beta: null };

describe('DeepNorm and Admin count a GAU layer as one sublayer', () => {
  it('L GAU layers get the α, β of L/2 Transformer blocks: α = L^¼, β = (4L)^-¼', () => {
    for (const [architecture, stack] of [
      ['decoder-only', 'decoder'],
      ['encoder-only', 'encoder'],
    ] as const) {
      const ctx = {
        architecture,
        stack,
        numLayers: 6,
        encoderLayers: stack === 'encoder' ? 6 : 0,
        decoderLayers: stack === 'decoder' ? 6 : 0,
        sublayersPerLayer: 1 as const,
      };
      const k = deepNormConstants(ctx, NO_PIN);
      expect(k.alpha).toBeCloseTo(6 ** 0.25, 12);
      expect(k.beta).toBeCloseTo(24 ** -0.25, 12);
      // The same number of sublayers in Transformer blocks: 3 blocks.
      const t = deepNormConstants(
        {
          ...ctx,
          numLayers: 3,
          encoderLayers: ctx.encoderLayers / 2,
          decoderLayers: ctx.decoderLayers / 2,
          sublayersPerLayer: 2,
        },
        NO_PIN,
      );
      expect(t.alpha).toBeCloseTo(k.alpha, 12);
      // Admin counts L residual sublayers (a Transformer stack of L blocks has 2L).
      expect(adminResidualCount(ctx)).toBe(6);
      expect(adminResidualCount({ ...ctx, sublayersPerLayer: 2 })).toBe(12);
    }
    // The public formulas take the count explicitly; an odd number of GAU layers is fine (L/2 = 2.5 blocks).
    expect(deepNormAlpha('decoder-only', { decoderLayers: 5, sublayersPerLayer: 1 })).toBeCloseTo(
      5 ** 0.25,
      12,
    );
  });

  it('a DeepNorm-GAU model uses them: x ← LN(α·x + G(x)) with α = L^¼, and β on u, v and the projection only', () => {
    const fam = getModelFamily('gpt');
    const L = 4;
    const m = fam.create(
      fam.parseConfig({
        vocabSize: 32,
        contextLength: 8,
        dModel: 64,
        nLayers: L,
        block: 'gau',
        gauKeyDim: 32,
        positions: 'rope',
        bias: false,
        norm: 'deepnorm',
      }),
      { seed: 2 },
    );
    const beta = (4 * L) ** -0.25;
    const w = m.params.get('blocks.0.gau.in.weight')!;
    const [d, cols] = w.shape as [number, number];
    const e = 128;
    const data = w.dataSync();
    const std = (c0: number, c1: number) => {
      let s2 = 0;
      for (let r = 0; r < d; r++) for (let c = c0; c < c1; c++) s2 += data[r * cols + c]! ** 2;
      return Math.sqrt(s2 / (d * (c1 - c0)));
    };
    // Xavier-normal: gain·√(2/(fanIn+fanOut)); u, v with β, z with 1.
    expect(std(0, e) / (beta * Math.sqrt(2 / (d + e)))).toBeCloseTo(1, 1);
    expect(std(e, 2 * e) / (beta * Math.sqrt(2 / (d + e)))).toBeCloseTo(1, 1);
    expect(std(2 * e, cols) / Math.sqrt(2 / (d + 32))).toBeCloseTo(1, 1);
    m.dispose();
  });
});
