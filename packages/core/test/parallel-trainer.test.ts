/**
 * Data-parallel training over worker_threads: the shard-weighted average of the ranks' gradients equals the
 * full-batch gradient up to float rounding, a Trainer with `workers: 2` follows the single-worker run and
 * writes the same optimizer state, and the workers exit cleanly.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Batch,
  computeLossAndGrads,
  getModelFamily,
  initBackend,
  type LanguageModel,
  parseTrainConfig,
  Rng,
  Trainer,
} from '../src/index.js';
import { DataParallelPool, shardRows } from '../src/parallel/pool.js';

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
const data = {
  trainBatch: (s: number, bs: number, T: number) => batch(bs, T, 30, 500 + s),
  valBatches: () => [],
};

function model(): LanguageModel {
  const fam = getModelFamily('gpt');
  return fam.create(fam.parseConfig({ vocabSize: 30, contextLength: 8, dModel: 16, nLayers: 2, nHeads: 2 }), {
    seed: 3,
  });
}

/** The pool's averaged loss and gradients equal the full batch's (then frees both). */
function expectSameAsFullBatch(
  par: { loss: number; grads: Map<string, tf.Tensor> },
  full: { loss: tf.Scalar; grads: Map<string, tf.Tensor> },
): void {
  expect(par.loss).toBeCloseTo(full.loss.dataSync()[0]!, 5);
  expect([...par.grads.keys()].sort()).toEqual([...full.grads.keys()].sort());
  for (const [name, g] of full.grads) {
    const [d, s] = tf.tidy(() => [
      tf.max(tf.abs(tf.sub(g, par.grads.get(name)!))).dataSync()[0]!,
      tf.max(tf.abs(g)).dataSync()[0]!,
    ]);
    expect(d, name).toBeLessThanOrEqual(1e-5 * Math.max(s, 1e-3));
  }
  for (const t of [full.loss, ...full.grads.values(), ...par.grads.values()]) t.dispose();
}

beforeAll(async () => {
  await initBackend('wasm');
});
afterAll(async () => {
  await initBackend('wasm');
});

describe('data-parallel workers', () => {
  it('splits rows evenly', () => {
    expect(shardRows(16, 2)).toEqual([
      [0, 8],
      [8, 8],
    ]);
    expect(shardRows(5, 2)).toEqual([
      [0, 3],
      [3, 2],
    ]);
  });

  for (const rows of [4, 5]) {
    it(`averaged shard gradients equal the full-batch gradient (${rows} rows over 2 ranks)`, async () => {
      const m = model();
      const pool = await DataParallelPool.create(m, { ranks: 2, backend: 'wasm' });
      const b = batch(rows, 8, 30, 9);
      const local = (x: Int32Array, y: Int32Array, n: number) => {
        const r = computeLossAndGrads(m, x, y, n, 8, { training: true, seed: 1 });
        const loss = r.loss.dataSync()[0]!;
        r.loss.dispose();
        return { loss, grads: r.grads };
      };
      const par = await pool.step(b.x, b.y, rows, 8, 1, true, local);
      expectSameAsFullBatch(par, computeLossAndGrads(m, b.x, b.y, rows, 8, { training: true, seed: 1 }));
      await pool.close();
      expect(pool.exitCodes).toEqual([0]);
      m.dispose();
    });
  }

  it('encoder-decoder rows (fewer targets than inputs, some ignored) average to the full-batch gradient', async () => {
    const fam = getModelFamily('encdec');
    const m = fam.create(
      fam.parseConfig({
        dModel: 16,
        nHeads: 2,
        nEncoderLayers: 1,
        nDecoderLayers: 1,
        sourceLength: 4,
        targetLength: 4,
      }),
      { seed: 2 },
    );
    const pool = await DataParallelPool.create(m, { ranks: 2, backend: 'wasm' });
    const r = new Rng(4);
    const x = Int32Array.from({ length: 3 * 8 }, () => r.int(256));
    // Row 0 scores 1 target, rows 1 and 2 score 4: the shards (rows 0-1 | row 2) weigh 5 and 4 targets.
    const y = Int32Array.from([5, -1, -1, -1, 1, 2, 3, 259, 7, 8, 9, 259]);
    const local = (xs: Int32Array, ys: Int32Array, n: number) => {
      const res = computeLossAndGrads(m, xs, ys, n, 8, { training: true, seed: 1 });
      const loss = res.loss.dataSync()[0]!;
      res.loss.dispose();
      return { loss, grads: res.grads };
    };
    const par = await pool.step(x, y, 3, 8, 1, true, local);
    expectSameAsFullBatch(par, computeLossAndGrads(m, x, y, 3, 8, { training: true, seed: 1 }));
    await pool.close();
    m.dispose();
  });

  it('a Trainer with workers: 2 matches workers: 1 and exports the same optimizer state', async () => {
    const cfg = parseTrainConfig({ steps: 10, batchSize: 4, seqLen: 8, warmupSteps: 0, lr: 3e-3 }, 8);
    const results: {
      losses: number[];
      state: Awaited<ReturnType<Trainer['optimizer']['exportState']>>;
      params: Float32Array;
    }[] = [];
    for (const workers of [1, 2]) {
      const m = model();
      const t = new Trainer(m, data, cfg, undefined, { workers });
      const losses: number[] = [];
      for (let i = 0; i < 3; i++) losses.push((await t.step()).loss);
      const state = await t.optimizer.exportState();
      const params = m.params.get('blocks.1.mlp.fc.weight').dataSync() as Float32Array;
      await t.close();
      t.dispose();
      m.dispose();
      results.push({ losses, state, params });
    }
    const [one, two] = results as [(typeof results)[0], (typeof results)[0]];
    two.losses.forEach((l, i) => {
      expect(l).toBeCloseTo(one.losses[i]!, 4);
    });
    expect(two.state.step).toBe(one.state.step);
    expect([...two.state.tensors.keys()]).toEqual([...one.state.tensors.keys()]);
    let maxd = 0;
    for (let i = 0; i < one.params.length; i++)
      maxd = Math.max(maxd, Math.abs(one.params[i]! - two.params[i]!));
    expect(maxd).toBeLessThan(1e-3);
  });

  it('refuses impossible settings', async () => {
    const m = model();
    const cfg = parseTrainConfig({ steps: 10, batchSize: 2, seqLen: 8 }, 8);
    expect(() => new Trainer(m, data, cfg, undefined, { workers: 3 })).toThrow(
      /must not exceed train.batchSize/,
    );
    expect(() => new Trainer(m, data, cfg, undefined, { workers: 0 })).toThrow(/integer >= 1/);
    await expect(DataParallelPool.create(m, { ranks: 2, backend: 'tensorflow' })).rejects.toThrow(
      /wasm or cpu/,
    );
    m.dispose();
  });
});
