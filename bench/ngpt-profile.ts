/**
 * Kernel time of a GPT step against an nGPT step of the same size (d_model 128, 4 layers, 4 heads, context 128,
 * batch 16; nGPT with NVIDIA's 4·d SwiGLU, or `matched` for d_ff 8d/3), in one process, profiled steps
 * interleaved, the minimum per kernel over the steps (GEMM = StrataMatMul + BatchMatMul), and the minimum CPU
 * time per profiled step. Complements bench/ngpt-step.ts (unprofiled CPU time) and bench/profile.ts (one model).
 * Usage: npx tsx --tsconfig packages/cli/tsconfig.json bench/ngpt-profile.ts [profiled steps, default 6] [matched]
 */
import { getModelFamily, initBackend, parseTrainConfig, Trainer } from '@strata/core';
import { NGPT_TRAINING_DEFAULTS, registerNGPT } from '@strata/ngpt';
import { registerBuiltinNorms } from '@strata/norms';
import * as tf from '@tensorflow/tfjs-core';
import { randomBatches } from './random-batches.js';

registerBuiltinNorms();
registerNGPT();
await initBackend('wasm');
const shape = { dModel: 128, nLayers: 4, nHeads: 4, contextLength: 128 };
const mk = (fam: string, extra: object, train: object) => {
  const f = getModelFamily(fam);
  const m = f.create(f.parseConfig({ ...shape, ...extra }), { seed: 1 });
  const cfg = parseTrainConfig({ ...train, steps: 100, batchSize: 16, seqLen: 128, warmupSteps: 0 }, 128);
  return new Trainer(m, randomBatches, cfg);
};
const runs: [string, Trainer][] = [
  ['gpt', mk('gpt', {}, {})],
  ['ngpt', mk('ngpt', process.argv[3] === 'matched' ? { dFF: 341 } : {}, NGPT_TRAINING_DEFAULTS)],
];
for (const [, t] of runs) await t.step(); // warm-up
const best = new Map<string, Map<string, number>>();
const min = (m: Map<string, number>, k: string, v: number) => m.set(k, Math.min(m.get(k) ?? 1e9, v));
for (let rep = 0; rep < Number(process.argv[2] ?? 6); rep++)
  for (const [name, t] of runs) {
    const c0 = process.cpuUsage();
    const info = await tf.profile(async () => {
      await t.step();
    });
    const cu = process.cpuUsage(c0);
    const by = new Map<string, number>();
    for (const k of info.kernels) {
      const key = k.name === 'StrataMatMul' || k.name === 'BatchMatMul' ? 'GEMM' : k.name;
      by.set(key, (by.get(key) ?? 0) + (k.kernelTimeMs as number));
    }
    by.set(
      '(all kernels)',
      info.kernels.reduce((a, k) => a + (k.kernelTimeMs as number), 0),
    );
    by.set('(kernel launches)', info.kernels.length);
    by.set('(CPU time of the step)', (cu.user + cu.system) / 1000);
    const b = best.get(name) ?? new Map<string, number>();
    for (const [k, v] of by) min(b, k, v);
    best.set(name, b);
  }
const g = best.get('gpt')!;
const n = best.get('ngpt')!;
const rows = [...new Set([...g.keys(), ...n.keys()])].map((k) => [k, g.get(k) ?? 0, n.get(k) ?? 0] as const);
rows.sort(
  (a, b) => (a[0].startsWith('(') ? -1 : 0) - (b[0].startsWith('(') ? -1 : 0) || b[1] + b[2] - a[1] - a[2],
);
console.log(`${'min ms per step'.padEnd(26)} ${'GPT'.padStart(8)} ${'nGPT'.padStart(8)}`);
for (const [k, a, b] of rows)
  console.log(`${k.padEnd(26)} ${a.toFixed(1).padStart(8)} ${b.toFixed(1).padStart(8)}`);
