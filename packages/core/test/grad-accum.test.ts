/**
 * Gradient accumulation: `gradAccum: N` micro-batches of `batchSize` rows equal one step on a batch of
 * `N · batchSize` rows (same data, mean gradient) up to float32 rounding, alone and with data-parallel workers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Batch,
  type BatchSource,
  getModelFamily,
  initBackend,
  type LanguageModel,
  parseTrainConfig,
  Rng,
  type StepMetrics,
  Trainer,
} from '../src/index.js';

/** Batch `step` of `rows` rows: row r depends only on (step, r), so a batch of 8 rows is 4 batches of 2. */
const data: BatchSource & { calls: number[] } = {
  calls: [],
  trainBatch(step: number, rows: number, T: number): Batch {
    this.calls.push(rows);
    const x = new Int32Array(rows * T);
    const y = new Int32Array(rows * T);
    for (let r = 0; r < rows; r++) {
      const rng = new Rng(1000 * step + r + 7);
      for (let t = 0; t < T; t++) {
        x[r * T + t] = rng.int(30);
        y[r * T + t] = rng.int(30);
      }
    }
    return { x, y };
  },
  valBatches: () => [],
};

function model(): LanguageModel {
  const fam = getModelFamily('gpt');
  return fam.create(fam.parseConfig({ vocabSize: 30, contextLength: 8, dModel: 16, nLayers: 2, nHeads: 2 }), {
    seed: 3,
  });
}

async function run(
  batchSize: number,
  gradAccum: number,
  workers = 1,
): Promise<{
  metrics: StepMetrics[];
  params: Map<string, Float32Array>;
  grads: Map<string, Float32Array>[];
}> {
  const m = model();
  const cfg = parseTrainConfig(
    { steps: 10, batchSize, gradAccum, seqLen: 8, warmupSteps: 0, lr: 3e-3, weightDecay: 0.1 },
    8,
  );
  const t = new Trainer(m, data, cfg, undefined, { workers });
  // what the optimizer receives each step: the (accumulated, averaged) gradient
  const grads: Map<string, Float32Array>[] = [];
  const apply = t.optimizer.apply.bind(t.optimizer);
  t.optimizer.apply = (g, lr, scale) => {
    grads.push(new Map([...g].map(([k, v]) => [k, v.dataSync() as Float32Array])));
    apply(g, lr, scale);
  };
  const metrics: StepMetrics[] = [];
  for (let i = 0; i < 3; i++) metrics.push(await t.step());
  const params = (await m.params.read()) as Map<string, Float32Array>;
  expect(t.tokensPerStep).toBe(batchSize * gradAccum * 8);
  await t.close();
  t.dispose();
  m.dispose();
  return { metrics, params, grads };
}

function expectSame(
  a: Awaited<ReturnType<typeof run>>,
  b: Awaited<ReturnType<typeof run>>,
  tol: number,
): number {
  a.metrics.forEach((m, i) => {
    const n = b.metrics[i]!;
    // the mean loss and the gradient norm of the whole batch, to float32 round-off
    expect(Math.abs(m.loss - n.loss) / n.loss).toBeLessThan(1e-6);
    expect(Math.abs(m.gradNorm - n.gradNorm) / n.gradNorm).toBeLessThan(1e-5);
  });
  // The gradient the optimizer applied at step 1 (same weights in both runs): equal to float32 round-off of
  // each parameter's largest entry (measured 3e-7 of it). Later steps start from weights that already differ
  // by Adam's amplified round-off, so only the loss, the gradient norm and the weights are compared there.
  expect(a.grads).toHaveLength(3);
  let worstGrad = 0;
  for (const [name, g] of a.grads[0]!) {
    const h = b.grads[0]!.get(name)!;
    let scale = 0;
    for (const x of h) scale = Math.max(scale, Math.abs(x));
    for (let j = 0; j < g.length; j++)
      worstGrad = Math.max(worstGrad, Math.abs(g[j]! - h[j]!) / (1e-5 * scale + 1e-12));
  }
  expect(worstGrad).toBeLessThan(1);
  let worst = 0;
  for (const [name, w] of a.params) {
    const v = b.params.get(name)!;
    for (let i = 0; i < w.length; i++) worst = Math.max(worst, Math.abs(w[i]! - v[i]!));
  }
  expect(worst).toBeLessThan(tol);
  return worst;
}

beforeAll(async () => {
  await initBackend('wasm');
});
afterAll(async () => {
  await initBackend('wasm');
});

describe('gradient accumulation', () => {
  it('4 micro-batches of 2 rows = one batch of 8 rows (loss, gradient norm, weights after 3 AdamW steps)', async () => {
    data.calls.length = 0;
    const big = await run(8, 1);
    const accum = await run(2, 4);
    // the step's data is drawn whole (8 rows), then cut into micro-batches
    expect(data.calls).toEqual([8, 8, 8, 8, 8, 8]);
    // Weights: AdamW divides by √v̂ entry by entry, so an entry whose gradient is far below its tensor's
    // largest carries a relative round-off of up to ~1e-3 into its step (measured 5.5e-6 absolute with
    // lr 3e-3). A missing 1/N, a wrong slice or a lost micro-batch moves weights by ~lr.
    const worst = expectSame(accum, big, 3e-5);
    console.log(`gradAccum 4 × 2 vs batch 8: max |Δw| after 3 steps ${worst.toExponential(2)}`);
  });

  it('combines with data-parallel workers: 2 workers × 2 micro-batches of 4 rows = one batch of 8 rows', async () => {
    const big = await run(8, 1);
    const both = await run(4, 2, 2);
    const worst = expectSame(both, big, 3e-5);
    console.log(`workers 2 × gradAccum 2 vs batch 8: max |Δw| after 3 steps ${worst.toExponential(2)}`);
  });

  it('rejects a non-positive count, naming the field', () => {
    expect(() => parseTrainConfig({ gradAccum: 0 })).toThrow(/train\.gradAccum/);
    expect(() => parseTrainConfig({ gradAccum: 1.5 })).toThrow(/train\.gradAccum/);
  });
});
