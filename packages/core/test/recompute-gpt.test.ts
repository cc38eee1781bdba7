/**
 * Per-block activation recomputation gives bit-identical losses and gradients to the normal (full tape) path,
 * with and without Strata's wasm kernels, for tied/untied heads, learned/RoPE positions, dropout, and a norm
 * strategy that owns weights in every site.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type Batch,
  computeLossAndGrads,
  defineNorm,
  getModelFamily,
  initBackend,
  type LanguageModel,
  parseTrainConfig,
  Rng,
  registerNorm,
  setStrataKernels,
  Trainer,
} from '../src/index.js';

/** Post-LN with a learnable per-site scale: weights in every site, no final norm. */
const scaledPostLN = defineNorm({
  name: 'test/scaled-post-ln',
  version: '1.0.0',
  description: 'x ← LN(x + s·G(x))',
  options: {},
  createSite(ctx, _opts, host) {
    const s = host.addWeight('scale', [ctx.dModel], { kind: 'ones' });
    const ln = host.norm('ln');
    return { forward: (x, g) => ln(tf.add(x, tf.mul(g(x), s))) as tf.Tensor2D };
  },
});

function batch(rows: number, T: number, vocab: number, seed: number): Batch {
  const r = new Rng(seed);
  const x = new Int32Array(rows * T);
  const y = new Int32Array(rows * T);
  for (let i = 0; i < x.length; i++) {
    x[i] = r.int(vocab);
    y[i] = r.int(vocab);
  }
  return { x, y };
}

function model(over: Record<string, unknown>): LanguageModel {
  const fam = getModelFamily('gpt');
  return fam.create(
    fam.parseConfig({ vocabSize: 40, contextLength: 12, dModel: 16, nLayers: 3, nHeads: 2, ...over }),
    { seed: 5 },
  );
}

beforeAll(async () => {
  await initBackend('wasm');
  try {
    registerNorm(scaledPostLN);
  } catch {
    // registered by another test file in this process
  }
});

const configs: [string, Record<string, unknown>][] = [
  ['tied, learned positions', {}],
  ['untied, RoPE, SwiGLU', { tiedEmbeddings: false, positions: 'rope', activation: 'swiglu' }],
  ['dropout', { dropout: 0.2 }],
  [
    'strategy weights in every site, RMSNorm',
    { norm: { name: 'test/scaled-post-ln', options: {} }, normKind: 'rmsnorm' },
  ],
];

describe('recompute: bit-identical gradients', () => {
  for (const kernels of [true, false]) {
    for (const [label, over] of configs) {
      it(`${label} (${kernels ? 'Strata kernels' : 'tfjs kernels'})`, () => {
        setStrataKernels(kernels);
        try {
          const m = model(over);
          const b = batch(3, 12, 40, 1);
          const opts = { training: true, seed: 77 };
          const a = computeLossAndGrads(m, b.x, b.y, 3, 12, opts);
          const r = computeLossAndGrads(m, b.x, b.y, 3, 12, { ...opts, recompute: true });
          expect(r.loss.dataSync()[0]).toBe(a.loss.dataSync()[0]);
          expect([...r.grads.keys()].sort()).toEqual([...a.grads.keys()].sort());
          for (const [name, g] of a.grads) {
            const d = tf.tidy(() => tf.max(tf.abs(tf.sub(g, r.grads.get(name)!))).dataSync()[0]);
            expect(d, name).toBe(0);
          }
          for (const t of [a.loss, r.loss, ...a.grads.values(), ...r.grads.values()]) t.dispose();
          m.dispose();
        } finally {
          setStrataKernels(true);
        }
      });
    }
  }

  it('a Trainer with recompute follows the same trajectory and leaks nothing', async () => {
    const data = {
      trainBatch: (s: number, bs: number, T: number) => batch(bs, T, 40, 100 + s),
      valBatches: () => [],
    };
    const cfg = parseTrainConfig({ steps: 10, batchSize: 2, seqLen: 12, warmupSteps: 0, lr: 1e-2 }, 12);
    const runs: number[][] = [];
    for (const recompute of [false, true]) {
      const m = model({});
      const t = new Trainer(m, data, cfg, undefined, { recompute });
      const losses: number[] = [];
      const counts: number[] = [];
      for (let i = 0; i < 4; i++) {
        const s = await t.step();
        losses.push(s.loss);
        counts.push(s.numTensors);
      }
      expect(counts[3]).toBe(counts[1]);
      runs.push(losses);
      t.dispose();
      m.dispose();
    }
    expect(runs[1]).toEqual(runs[0]);
  });
});
