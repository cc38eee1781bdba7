/**
 * nGPT against GPT at the same size (d_model 128, 4 layers, 4 heads, context 128, batch 16), one process, steps
 * interleaved, the minimum CPU time per step of each (the least load-sensitive figure on a shared machine):
 * GPT (Pre-LN, learned positions, GELU 4d), nGPT (SwiGLU 4d per branch, NVIDIA's) and nGPT with the GPT MLP's
 * parameter count (SwiGLU 8d/3 = 341 per branch).
 * Usage: npx tsx --tsconfig packages/cli/tsconfig.json bench/ngpt-step.ts [steps per model, default 6]
 */
import { getModelFamily, initBackend, parseTrainConfig, Trainer } from '@strata/core';
import { NGPT_TRAINING_DEFAULTS, registerNGPT } from '@strata/ngpt';
import { registerBuiltinNorms } from '@strata/norms';
import { randomBatches } from './random-batches.js';

registerBuiltinNorms();
registerNGPT();
await initBackend('wasm');
const data = randomBatches;
const shape = { dModel: 128, nLayers: 4, nHeads: 4, contextLength: 128 };
const mk = (fam: string, extra: object, train: object) => {
  const f = getModelFamily(fam);
  const m = f.create(f.parseConfig({ ...shape, ...extra }), { seed: 1 });
  return new Trainer(
    m,
    data,
    parseTrainConfig({ ...train, steps: 100, batchSize: 16, seqLen: 128, warmupSteps: 0 }, 128),
  );
};
const runs: [string, Trainer][] = [
  ['gpt', mk('gpt', {}, {})],
  ['ngpt', mk('ngpt', {}, NGPT_TRAINING_DEFAULTS)],
  ['ngpt-matched', mk('ngpt', { dFF: 341 }, NGPT_TRAINING_DEFAULTS)],
];
const best = new Map<string, number>();
for (let rep = 0; rep < Number(process.argv[2] ?? 6); rep++)
  for (const [n, t] of runs) {
    const c0 = process.cpuUsage();
    await t.step();
    const cu = process.cpuUsage(c0);
    const ms = (cu.user + cu.system) / 1000;
    if (rep > 0) best.set(n, Math.min(best.get(n) ?? 1e9, ms));
  }
const g = best.get('gpt')!;
for (const [k, v] of best)
  console.log(`${k.padEnd(14)} min CPU ${v.toFixed(0)} ms/step  ratio ${(v / g).toFixed(2)}×`);
