import { getModelFamily, initBackend, type ParamSpec } from '@strata/core';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  layerGradNorms,
  lossStalled,
  modelUpdateNorm,
  normInputsByLayer,
  registerBuiltinNorms,
} from '../src/index.js';

beforeAll(async () => {
  await initBackend('wasm');
});

describe('modelUpdateNorm', () => {
  it('is the L2 norm of the logit change over √positions, for tensors and arrays', () => {
    // 2 positions × 3 vocab; Δ = [3, 0, 4, 0, 0, 0] → ‖Δ‖ = 5, /√2
    const now = tf.tensor3d([1, 2, 3, 4, 5, 6], [1, 2, 3]);
    const init = tf.tensor3d([-2, 2, -1, 4, 5, 6], [1, 2, 3]);
    expect(modelUpdateNorm(now, init)).toBeCloseTo(5 / Math.SQRT2, 6);
    expect(modelUpdateNorm([1, 2, 3, 4, 5, 6], [-2, 2, -1, 4, 5, 6], 2)).toBeCloseTo(5 / Math.SQRT2, 12);
    expect(modelUpdateNorm(now, now)).toBe(0);
    expect(() => modelUpdateNorm([1], [1, 2], 1)).toThrow(/sizes differ/);
    expect(() => modelUpdateNorm([1], [1])).toThrow(/positions/);
    tf.dispose([now, init]);
  });
});

describe('layerGradNorms', () => {
  it('groups by spec.layer and keeps non-block parameters apart', () => {
    const specs: ParamSpec[] = [
      { name: 'tok_emb.weight', shape: [2], role: 'tok_embedding', decay: false },
      { name: 'blocks.0.a', shape: [2], role: 'qkv', decay: true, layer: 0 },
      { name: 'blocks.0.b', shape: [1], role: 'scale', decay: false, layer: 0 },
      { name: 'blocks.2.a', shape: [1], role: 'qkv', decay: true, layer: 2 },
      { name: 'blocks.3.a', shape: [1], role: 'qkv', decay: true, layer: 3 },
    ];
    const t = tf.tensor1d([2, 0]);
    const grads = new Map<string, tf.Tensor | number[]>([
      ['tok_emb.weight', [3, 4]],
      ['blocks.0.a', t],
      ['blocks.0.b', [1]],
      ['blocks.2.a', [-2]],
    ]);
    const r = layerGradNorms(grads, specs);
    expect(r.layers).toEqual([Math.sqrt(5), 0, 2]);
    expect(r.other).toBe(5);
    expect(r.total).toBeCloseTo(Math.sqrt(25 + 5 + 4), 12);
    expect(layerGradNorms({ 'blocks.2.a': [3] }, specs).layers).toEqual([0, 0, 3]);
    t.dispose();
  });

  it('works on a real model’s gradients', async () => {
    registerBuiltinNorms();
    const fam = getModelFamily('gpt');
    const m = fam.create(
      fam.parseConfig({ vocabSize: 8, contextLength: 4, dModel: 8, nHeads: 2, nLayers: 3, norm: 'post-ln' }),
      { seed: 1 },
    );
    const ids = tf.tensor2d([[1, 2, 3, 4]], [1, 4], 'int32');
    const vars = m.params.variables();
    const { value, grads } = tf.variableGrads(
      () => tf.mean(tf.square(m.forward(ids))) as tf.Scalar,
      vars.map(([, v]) => v),
    );
    const byName = new Map(vars.map(([n, v]) => [n, grads[v.name]!]));
    const r = layerGradNorms(byName, m.params.specs());
    expect(r.layers).toHaveLength(3);
    expect(r.layers.every((x) => x > 0 && Number.isFinite(x))).toBe(true);
    expect(r.total ** 2).toBeCloseTo(r.layers.reduce((s, x) => s + x * x, 0) + r.other ** 2, 6);
    tf.dispose([ids, value, ...Object.values(grads)]);

    m.setDiagnostics!(true);
    const y = m.forward(tf.tensor2d([[1, 2, 3, 4]], [1, 4], 'int32'));
    y.dispose();
    const rec = await m.takeNormInputs!();
    const grouped = normInputsByLayer(rec, 8);
    expect(grouped.layers.map((l) => l.layer)).toEqual([0, 1, 2]);
    expect(Object.keys(grouped.layers[0]!.norms).sort()).toEqual(['attn.norm', 'mlp.norm']);
    expect(grouped.layers[1]!.norms['attn.norm']).toBeCloseTo(
      rec.get('blocks.1.attn.norm')! / Math.sqrt(8),
      6,
    );
    m.dispose();
  });
});

describe('normInputsByLayer / lossStalled', () => {
  it('groups recorded norm inputs by block', () => {
    const r = normInputsByLayer(
      new Map([
        ['blocks.10.mlp.norm', 4],
        ['blocks.2.attn.norm', 2],
        ['final.norm', 8],
      ]),
    );
    expect(r.layers).toEqual([
      { layer: 2, norms: { 'attn.norm': 2 } },
      { layer: 10, norms: { 'mlp.norm': 4 } },
    ]);
    expect(r.final).toEqual({ 'final.norm': 8 });
  });

  it('detects a loss stuck near the unigram floor', () => {
    const floor = Math.log(32);
    const stuck = Array.from({ length: 150 }, () => 3.13);
    const falling = Array.from({ length: 150 }, (_, i) => 3.4 - i * 0.015);
    expect(lossStalled(stuck, { floor })).toBe(true);
    expect(lossStalled(falling, { floor })).toBe(false);
    expect(lossStalled(stuck.slice(0, 50), { floor })).toBe(false); // too early to tell
    expect(lossStalled([...falling.slice(0, 140), ...Array(10).fill(Number.NaN)], { floor })).toBe(true);
  });
});
