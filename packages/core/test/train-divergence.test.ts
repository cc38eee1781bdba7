import { beforeAll, describe, expect, it } from 'vitest';
import {
  type Batch,
  type BatchSource,
  initBackend,
  learningRateAt,
  parseTrainConfig,
  Trainer,
} from '../src/index.js';
import { tinyGPT } from './helpers.js';

/** Fixed random-looking batches (a pure function of the step). */
const source: BatchSource = {
  trainBatch(step: number, batchSize: number, seqLen: number): Batch {
    const n = batchSize * seqLen;
    const x = new Int32Array(n).map((_, i) => (i * 5 + step * 3) % 13);
    const y = new Int32Array(n).map((_, i) => (i * 5 + step * 3 + 1) % 13);
    return { x, y };
  },
  valBatches(batchSize: number, seqLen: number, maxBatches: number): Batch[] {
    return Array.from({ length: maxBatches }, (_, i) => this.trainBatch(1000 + i, batchSize, seqLen));
  },
};

beforeAll(async () => {
  await initBackend('cpu');
});

describe('loss-explosion rule', () => {
  it('stops after explodePatience steps above explodeFactor·ln V, and reports the loss as not sane', async () => {
    // At init the loss is ≈ ln 13 ≈ 2.56; with a factor of 0.5 every step is "above the limit" (≈ 1.28).
    const model = tinyGPT();
    const config = parseTrainConfig(
      { steps: 20, batchSize: 2, seqLen: 8, explodeFactor: 0.5, explodePatience: 3 },
      8,
    );
    const t = new Trainer(model, source, config);
    expect(t.lossLimit).toBeCloseTo(0.5 * Math.log(13), 12);
    await t.step();
    expect(t.lossSane).toBe(false);
    await t.step();
    await expect(t.step()).rejects.toMatchObject({
      code: 'E_DIVERGED',
      message: expect.stringMatching(
        /^training diverged at step 3: the loss exploded \(2\.\d\d, above 1\.28 = 0\.5 × ln 13, .* for 3 steps in a row/,
      ),
    });
    t.dispose();
    model.dispose();
  });

  it('is off with explodeFactor 0, and a sane step resets the count', async () => {
    const model = tinyGPT();
    const off = new Trainer(
      model,
      source,
      parseTrainConfig({ steps: 4, batchSize: 2, seqLen: 8, explodeFactor: 0, explodePatience: 1 }, 8),
    );
    expect(off.lossLimit).toBe(Number.POSITIVE_INFINITY);
    for (let i = 0; i < 4; i++) await off.step();
    expect(off.lossSane).toBe(true);
    off.dispose();
    // The default rule (2 × ln V) never fires on a model that is learning.
    const def = new Trainer(model, source, parseTrainConfig({ steps: 3, batchSize: 2, seqLen: 8 }, 8));
    for (let i = 0; i < 3; i++) expect((await def.step()).loss).toBeLessThan(def.lossLimit);
    def.dispose();
    model.dispose();
  });
});

describe('scheduleSteps', () => {
  it('keeps the schedule of the original step budget: after it the rate stays at minLr', async () => {
    const model = tinyGPT();
    const c = parseTrainConfig(
      { steps: 12, scheduleSteps: 6, batchSize: 2, seqLen: 8, lr: 1e-2, minLr: 1e-3, warmupSteps: 2 },
      8,
    );
    const t = new Trainer(model, source, c, { state: { step: 8, trainSeconds: 0, skippedSteps: 0 } });
    expect(t.lr).toBe(1e-3);
    // Same as the schedule of a 6-step run, which has reached its end.
    expect(learningRateAt(8, { lr: 1e-2, minLr: 1e-3, warmupSteps: 2, totalSteps: 6, decay: 'cosine' })).toBe(
      1e-3,
    );
    // Without it, the same 12-step config is mid-cosine at step 8.
    const stretched = new Trainer(
      model,
      source,
      { ...c, scheduleSteps: null },
      { state: { step: 8, trainSeconds: 0, skippedSteps: 0 } },
    );
    expect(stretched.lr).toBeGreaterThan(2e-3);
    t.dispose();
    stretched.dispose();
    model.dispose();
  });
});
