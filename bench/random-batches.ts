/** Random byte batches for the benchmark scripts: they measure compute, not data loading. */
import { type Batch, type BatchSource, Rng } from '@strata/core';

/** Batch `step` of uniformly random bytes (inputs and targets), the same for every run. */
export const randomBatches: BatchSource = {
  trainBatch(step: number, bs: number, sl: number): Batch {
    const rng = Rng.derive(7, 'bench', step);
    const x = new Int32Array(bs * sl);
    const y = new Int32Array(bs * sl);
    for (let i = 0; i < x.length; i++) {
      x[i] = rng.int(256);
      y[i] = rng.int(256);
    }
    return { x, y };
  },
  valBatches: () => [],
};
