import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  computeLossAndGrads,
  estimateParameters,
  estimateTrainingMemory,
  formatBytes,
  getModelFamily,
  initBackend,
} from '../src/index.js';

beforeAll(async () => {
  await initBackend('cpu');
});

const gpt = (over: Record<string, unknown>) => {
  const fam = getModelFamily('gpt');
  const config = fam.parseConfig({
    vocabSize: 256,
    contextLength: 32,
    dModel: 32,
    nLayers: 2,
    nHeads: 2,
    ...over,
  });
  return { config, model: fam.create(config, { seed: 1 }) };
};

describe('estimateParameters', () => {
  it.each([
    [{}],
    [{ positions: 'rope' }],
    [{ tiedEmbeddings: false }],
    [{ dModel: 48, nHeads: 3, nLayers: 3, dFF: 100 }],
  ])('equals the parameter count of a built GPT %j', (over) => {
    const { config, model } = gpt(over);
    expect(estimateParameters(config as never)).toBe(model.params.count());
    model.dispose();
  });
});

describe('estimateTrainingMemory', () => {
  // Shapes outside the ones the constants were fitted to: the estimate must stay near the measured peak.
  it.each([
    { dModel: 48, nLayers: 3, nHeads: 3, T: 32, B: 6, recompute: false },
    { dModel: 96, nLayers: 1, nHeads: 4, T: 48, B: 3, recompute: false },
    { dModel: 48, nLayers: 3, nHeads: 3, T: 32, B: 6, recompute: true },
    { dModel: 40, nLayers: 5, nHeads: 2, T: 24, B: 5, recompute: true },
  ])('is within 30% of tf.profile peak bytes for %j', async (c) => {
    const { config, model } = gpt({
      dModel: c.dModel,
      nLayers: c.nLayers,
      nHeads: c.nHeads,
      contextLength: c.T,
    });
    const x = new Int32Array(c.B * c.T).map((_, i) => (i * 7) % 256);
    const held = tf.memory().numBytes;
    const prof = await tf.profile(() => {
      const r = computeLossAndGrads(model, x, x, c.B, c.T, {
        training: true,
        seed: 1,
        recompute: c.recompute,
      });
      r.loss.dispose();
      for (const g of r.grads.values()) g.dispose();
    });
    const P = model.params.count();
    model.dispose();
    // The step's own peak (gradients included) on top of the parameters, plus the two AdamW moments (8·P).
    const measured = prof.peakBytes - held + 4 * P + 8 * P;
    const est = estimateTrainingMemory(config as never, {
      batchSize: c.B,
      seqLen: c.T,
      recompute: c.recompute,
    });
    const ratio = est.totalBytes / measured;
    expect(
      ratio,
      `estimate ${formatBytes(est.totalBytes)}, measured ${formatBytes(measured)}`,
    ).toBeGreaterThan(0.7);
    expect(ratio, `estimate ${formatBytes(est.totalBytes)}, measured ${formatBytes(measured)}`).toBeLessThan(
      1.3,
    );
  });

  it('splits the batch between data-parallel workers and shrinks with recomputation', () => {
    const m = { vocabSize: 256, contextLength: 64, dModel: 128, nLayers: 24, nHeads: 4 };
    const one = estimateTrainingMemory(m, { batchSize: 16, seqLen: 64 });
    const two = estimateTrainingMemory(m, { batchSize: 16, seqLen: 64, workers: 2 });
    expect(two.rows).toBe(8);
    expect(two.stateBytes).toBe(one.stateBytes);
    expect(two.activationBytes).toBeLessThan(one.activationBytes);
    expect(
      estimateTrainingMemory(m, { batchSize: 16, seqLen: 64, recompute: true }).activationBytes,
    ).toBeLessThan(one.activationBytes / 10);
  });

  it('formats bytes in powers of 1000', () => {
    expect([512, 13_300_000, 4_294_901_760, 1.7e12].map(formatBytes)).toEqual([
      '512 B',
      '13.3 MB',
      '4.3 GB',
      '1.7 TB',
    ]);
  });
});
