/**
 * Kernel-level profile of one training step (forward + backward + AdamW) of a GPT (or nGPT) config on a backend.
 * Usage: npx tsx --tsconfig packages/cli/tsconfig.json bench/profile.ts [wasm|cpu] [d] [layers] [heads] [ctx] [batch] [norm|ngpt]
 * (the last argument `ngpt` profiles the nGPT family at the same size, with its own training settings).
 */
import { getModelFamily, initBackend, parseTrainConfig, Trainer } from '@strata/core';
import { NGPT_TRAINING_DEFAULTS, registerNGPT } from '@strata/ngpt';
import { registerBuiltinNorms } from '@strata/norms';
import * as tf from '@tensorflow/tfjs-core';
import { randomBatches } from './random-batches.js';

const [backend = 'wasm', d = '128', L = '4', H = '4', T = '128', B = '16', norm = 'pre-ln'] =
  process.argv.slice(2);
registerBuiltinNorms();
registerNGPT();
await initBackend(backend);
const isNGPT = norm === 'ngpt';
const fam = getModelFamily(isNGPT ? 'ngpt' : 'gpt');
const cfg = isNGPT
  ? { dModel: +d, nLayers: +L, nHeads: +H, contextLength: +T }
  : { dModel: +d, nLayers: +L, nHeads: +H, contextLength: +T, norm: { name: norm, options: {} } };
const model = fam.create(fam.parseConfig(cfg), { seed: 1 });
const data = randomBatches;
const trainer = new Trainer(
  model,
  data,
  parseTrainConfig(
    { ...(isNGPT ? NGPT_TRAINING_DEFAULTS : {}), steps: 100, batchSize: +B, seqLen: +T, warmupSteps: 0 },
    +T,
  ),
);
await trainer.step();
await trainer.step();
const byKernel = new Map<string, { ms: number; n: number }>();
let totalKernels = 0;
const t0 = performance.now();
const info = await tf.profile(async () => {
  await trainer.step();
});
const wall = performance.now() - t0;
for (const k of info.kernels) {
  totalKernels++;
  const key = `${k.name} ${k.inputShapes.map((s) => `[${s}]`).join('')}`;
  const e = byKernel.get(key) ?? { ms: 0, n: 0 };
  e.ms += k.kernelTimeMs as number;
  e.n++;
  byKernel.set(key, e);
}
const byName = new Map<string, { ms: number; n: number }>();
for (const k of info.kernels) {
  const e = byName.get(k.name) ?? { ms: 0, n: 0 };
  e.ms += k.kernelTimeMs as number;
  e.n++;
  byName.set(k.name, e);
}
const sum = [...byName.values()].reduce((a, b) => a + b.ms, 0);
console.log(
  `wall (profiled) ${wall.toFixed(0)} ms, kernel sum ${sum.toFixed(0)} ms, kernels ${totalKernels}`,
);
console.log('--- by kernel name');
for (const [k, v] of [...byName].sort((a, b) => b[1].ms - a[1].ms).slice(0, 25))
  console.log(`${v.ms.toFixed(1).padStart(8)} ms ${String(v.n).padStart(5)}x  ${k}`);
console.log('--- by kernel+shape');
for (const [k, v] of [...byKernel].sort((a, b) => b[1].ms - a[1].ms).slice(0, 40))
  console.log(`${v.ms.toFixed(1).padStart(8)} ms ${String(v.n).padStart(5)}x  ${k}`);
const times: number[] = [];
for (let i = 0; i < 3; i++) times.push((await trainer.step()).ms);
console.log(`unprofiled steps: ${times.map((t) => t.toFixed(0)).join(', ')} ms`);
