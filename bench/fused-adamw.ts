/**
 * Experiment: the effect of the proposed fused AdamW (one `StrataAdamW` kernel per parameter instead of ~12
 * tfjs kernels) on a training step. `train/adamw.ts` is not changed by this experiment: it patches
 * `AdamW.prototype.apply` at run time with the code proposed for adamw.ts (see bench/RESULTS.md), which is
 * bit-identical to the current update (test: kernels-ops.test.ts, "fused AdamW equals the composite update").
 *
 *   npx tsx --tsconfig packages/cli/tsconfig.json bench/fused-adamw.ts [reference|deep100|deep1000] [steps]
 */
import {
  AdamW,
  adamWFast,
  type Batch,
  getModelFamily,
  initBackend,
  parseTrainConfig,
  Rng,
  strataKernelsActive,
  Trainer,
} from '@strata/core';
import { registerBuiltinNorms } from '@strata/norms';
import type * as tf from '@tensorflow/tfjs-core';

const [which = 'reference', stepsArg = '5'] = process.argv.slice(2);
const steps = Number(stepsArg);
registerBuiltinNorms();
await initBackend('wasm');
const deep = which.startsWith('deep');
const cfg = deep
  ? {
      dModel: 64,
      nLayers: which === 'deep1000' ? 1000 : 100,
      nHeads: 2,
      contextLength: 64,
      norm: { name: 'deepnorm', options: {} },
    }
  : { dModel: 128, nLayers: 4, nHeads: 4, contextLength: 128 };
const batchSize = deep ? 8 : 16;
const recompute = which === 'deep1000';

const original = AdamW.prototype.apply;
// The proposed AdamW.apply (train/adamw.ts), using the fused kernel when Strata's wasm kernels are active.
function fusedApply(this: AdamW, grads: ReadonlyMap<string, tf.Tensor>, lr: number, scale = 1): void {
  const self = this as unknown as {
    params: { variables(): [string, tf.Variable][]; spec(n: string): { decay: boolean } };
    m: Map<string, tf.Variable>;
    v: Map<string, tf.Variable>;
    lrScale?: Map<string, tf.Tensor>;
  };
  if (!strataKernelsActive() || (self.lrScale?.size ?? 0) > 0) {
    original.call(this, grads, lr, scale);
    return;
  }
  this.step += 1;
  const { beta1, beta2, eps, weightDecay } = this.config;
  const bc1 = 1 - beta1 ** this.step;
  const bc2 = 1 - beta2 ** this.step;
  for (const [name, param] of self.params.variables()) {
    const g0 = grads.get(name);
    if (!g0) continue;
    const decay = self.params.spec(name).decay ? weightDecay : 0;
    const m = self.m.get(name)!;
    const v = self.v.get(name)!;
    const [p, mN, vN] = adamWFast(param, g0, m, v, {
      lr,
      beta1,
      beta2,
      eps,
      decay: decay > 0 ? 1 - lr * decay : 1,
      bc1,
      bc2,
      scale,
    });
    param.assign(p!);
    m.assign(mN!);
    v.assign(vN!);
    p!.dispose();
    mN!.dispose();
    vN!.dispose();
  }
}

const data = {
  trainBatch(step: number, bs: number, sl: number): Batch {
    const r = Rng.derive(7, 'bench', step);
    const x = new Int32Array(bs * sl);
    const y = new Int32Array(bs * sl);
    for (let i = 0; i < x.length; i++) {
      x[i] = r.int(256);
      y[i] = r.int(256);
    }
    return { x, y };
  },
  valBatches: () => [],
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const results: Record<string, number[]> = { composite: [], fused: [] };
// interleave the two variants so that machine load affects both alike
for (let round = 0; round < 2; round++) {
  for (const variant of ['composite', 'fused'] as const) {
    AdamW.prototype.apply = variant === 'fused' ? fusedApply : original;
    const fam = getModelFamily('gpt');
    const model = fam.create(fam.parseConfig(cfg), { seed: 1 });
    const t = new Trainer(
      model,
      data,
      parseTrainConfig(
        { steps: 100, batchSize, seqLen: cfg.contextLength, warmupSteps: 0 },
        cfg.contextLength,
      ),
      undefined,
      { recompute },
    );
    await t.step();
    for (let i = 0; i < steps; i++) results[variant]!.push((await t.step()).ms);
    t.dispose();
    model.dispose();
  }
}
AdamW.prototype.apply = original;
const c = median(results.composite!);
const f = median(results.fused!);
console.log(
  `${which}: AdamW as tfjs ops ${c.toFixed(0)} ms/step, fused kernel ${f.toFixed(0)} ms/step (${(c / f).toFixed(2)}×)`,
);
