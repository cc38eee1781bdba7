/**
 * Every built-in norm strategy, nGPT and growth on tfjs's webgpu backend (Dawn in Node; SwiftShader's software
 * Vulkan in CI): losses and gradients match the cpu backend, an nGPT Adam step matches, and growth stays
 * function-preserving on the GPU.
 */
import { initBackend, type LanguageModel, MarkovDataset, parseTrainConfig, Trainer } from '@strata/core';
import { registerNGPT } from '@strata/ngpt';
import { builtinNorms, registerBuiltinNorms } from '@strata/norms';
import { beforeAll, describe, expect, it } from 'vitest';
import { relMaxDiff, webgpuSkipReason } from '../../core/test/webgpu-setup.js';
import { growModel } from '../src/index.js';
import { gradients, lossOn, randomBatch, tinyGPT, tinyNGPT, VOCAB } from './helpers.js';

const skip = await webgpuSkipReason();

beforeAll(() => {
  registerBuiltinNorms();
  registerNGPT();
});

/** Runs `f` on cpu, then on webgpu. */
async function onBoth<T>(f: () => Promise<T>): Promise<{ cpu: T; gpu: T }> {
  await initBackend('cpu');
  const cpu = await f();
  await initBackend('webgpu');
  const gpu = await f();
  return { cpu, gpu };
}

/** Loss and flat gradients (in a fixed parameter order) of `make()` on one batch; disposes the model. */
async function lossAndGrads(make: () => Promise<LanguageModel> | LanguageModel) {
  const m = await make();
  const b = randomBatch(11);
  const loss = await lossOn(m, b);
  const g = await gradients(m, b);
  const names = [...g.keys()].sort();
  const flat = names.flatMap((n) => Array.from(g.get(n)!));
  m.dispose();
  return { loss, flat };
}

describe.skipIf(skip !== undefined)('webgpu backend (strategies, nGPT, growth)', () => {
  for (const s of builtinNorms) {
    it(`${s.name}: loss and gradients match cpu`, async () => {
      const { cpu, gpu } = await onBoth(() => lossAndGrads(() => tinyGPT({ norm: s.name, nLayers: 3 })));
      expect(Math.abs(gpu.loss - cpu.loss) / cpu.loss).toBeLessThan(1e-5);
      expect(relMaxDiff(gpu.flat, cpu.flat)).toBeLessThan(1e-4);
      expect(cpu.flat.some((v) => v !== 0)).toBe(true);
    });
  }

  it('nGPT: loss and gradients match cpu, and Adam steps match', async () => {
    const lg = await onBoth(() => lossAndGrads(() => tinyNGPT()));
    expect(Math.abs(lg.gpu.loss - lg.cpu.loss) / lg.cpu.loss).toBeLessThan(1e-5);
    expect(relMaxDiff(lg.gpu.flat, lg.cpu.flat)).toBeLessThan(1e-4);
    const data = new MarkovDataset({ vocab: VOCAB, seed: 3 });
    const cfg = parseTrainConfig(
      { steps: 2, batchSize: 2, seqLen: 8, lr: 1e-2, warmupSteps: 1, eps: 1e-8 },
      VOCAB,
    );
    const steps = await onBoth(async () => {
      const m = tinyNGPT({}, 4);
      const t = new Trainer(m, data, cfg);
      const losses: number[] = [];
      for (let i = 0; i < 2; i++) losses.push((await t.step()).loss);
      t.dispose();
      m.dispose();
      return losses;
    });
    expect(relMaxDiff(steps.gpu, steps.cpu)).toBeLessThan(1e-5);
  }, 300_000);

  it('growth (width ×2, depth ×2) preserves the function on webgpu and matches cpu', async () => {
    const { cpu, gpu } = await onBoth(async () => {
      const m = await tinyGPT({ norm: 'pre-ln' });
      const r = await growModel(m, { width: 2, depth: 2 });
      const b = randomBatch(5);
      const before = await lossOn(m, b);
      const after = await lossOn(r.model, b);
      const rel = r.report.relDeltaLogits;
      m.dispose();
      r.model.dispose();
      return { before, after, rel };
    });
    expect(gpu.rel).toBeLessThan(1e-5);
    expect(Math.abs(gpu.after - gpu.before) / gpu.before).toBeLessThan(1e-5);
    expect(Math.abs(gpu.after - cpu.after) / cpu.after).toBeLessThan(1e-5);
  });
});
