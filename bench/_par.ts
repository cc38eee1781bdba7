import {
  type Batch,
  computeLossAndGrads,
  getModelFamily,
  initBackend,
  parseTrainConfig,
  Rng,
  Trainer,
} from '@strata/core';
import * as tf from '@tensorflow/tfjs-core';

await initBackend('wasm');
const fam = getModelFamily('gpt');
const data = {
  trainBatch(step: number, bs: number, sl: number): Batch {
    const r = Rng.derive(7, 'b', step);
    const x = new Int32Array(bs * sl),
      y = new Int32Array(bs * sl);
    for (let i = 0; i < x.length; i++) {
      x[i] = r.int(256);
      y[i] = r.int(256);
    }
    return { x, y };
  },
  valBatches: () => [],
};
// recompute equality
{
  const m = fam.create(
    fam.parseConfig({ dModel: 32, nLayers: 3, nHeads: 2, contextLength: 16, dropout: 0.1 }),
    { seed: 2 },
  );
  const b = data.trainBatch(0, 4, 16);
  const a = computeLossAndGrads(m, b.x, b.y, 4, 16, { training: true, seed: 5 });
  const r = computeLossAndGrads(m, b.x, b.y, 4, 16, { training: true, seed: 5, recompute: true });
  let worst = 0;
  for (const [k, g] of a.grads)
    worst = Math.max(worst, tf.max(tf.abs(tf.sub(g, r.grads.get(k)!))).dataSync()[0]!);
  console.log(
    'recompute: loss',
    a.loss.dataSync()[0],
    r.loss.dataSync()[0],
    'max grad diff',
    worst,
    a.grads.size,
    r.grads.size,
  );
}
const cfg = fam.parseConfig({ dModel: 128, nLayers: 4, nHeads: 4, contextLength: 128 });
for (const workers of [1, 2]) {
  const model = fam.create(cfg, { seed: 1 });
  const t = new Trainer(
    model,
    data,
    parseTrainConfig({ steps: 100, batchSize: 16, seqLen: 128, warmupSteps: 0 }, 128),
    undefined,
    { workers },
  );
  const ms: number[] = [];
  const losses: number[] = [];
  for (let i = 0; i < 6; i++) {
    const m = await t.step();
    ms.push(m.ms);
    losses.push(m.loss);
  }
  console.log(
    'workers',
    workers,
    'ms',
    ms.map((x) => x.toFixed(0)).join(' '),
    'loss',
    losses.map((x) => x.toFixed(4)).join(' '),
  );
  const c0 = performance.now();
  await t.close();
  console.log('closed in', (performance.now() - c0).toFixed(0), 'ms');
  t.dispose();
  model.dispose();
}
