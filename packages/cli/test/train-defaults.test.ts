/**
 * `strata train`'s first-run defaults: what they resolve to, that other commands keep the shared ones, and
 * that the default model is big enough to use both cores while the tiny test models are not.
 */
import { getModelFamily, initBackend } from '@strata/core';
import { registerBuiltinNorms } from '@strata/norms';
import { beforeAll, describe, expect, it } from 'vitest';
import { defaultWorkers, planFreshRun, TRAIN_DEFAULTS, TRAIN_MODEL_DEFAULTS } from '../src/commands/train.js';
import { modelConfigFromArgs, trainConfigFromArgs } from '../src/run-training.js';

beforeAll(async () => {
  await initBackend('cpu');
  registerBuiltinNorms();
});

describe('strata train defaults', () => {
  it('train resolves to RoPE, 1000 steps at lr 3e-3 (cosine to 3e-4); compare keeps the shared defaults', () => {
    const { family, raw } = modelConfigFromArgs({}, TRAIN_MODEL_DEFAULTS);
    const config = getModelFamily(family).parseConfig(raw);
    expect(config.positions).toBe('rope');
    const t = trainConfigFromArgs({}, {}, config.contextLength, TRAIN_DEFAULTS);
    expect(t).toMatchObject({
      steps: 1000,
      lr: 3e-3,
      warmupSteps: 30,
      batchSize: 16,
      seqLen: 64,
    });
    expect(t.minLr).toBeCloseTo(3e-4, 15);
    const shared = trainConfigFromArgs({}, {}, config.contextLength);
    expect(shared.steps).toBe(200);
    expect(getModelFamily('gpt').parseConfig(modelConfigFromArgs({}).raw).positions).toBe('learned');
  });

  it('planFreshRun: train plans a first run, a comparison (and non-decoder architectures) the shared defaults', () => {
    const first = planFreshRun({}, { firstRun: true });
    expect(first.training.steps).toBe(1000);
    expect(first.config.positions).toBe('rope');
    const grid = planFreshRun({});
    expect(grid.training.steps).toBe(200);
    expect(grid.config.positions).toBe('learned');
    expect(planFreshRun({ arch: 'encoder-only' }, { firstRun: true }).training.steps).toBe(200);
  });

  it('flags and config files still win over the train defaults, and nGPT keeps its own recipe', () => {
    const t = trainConfigFromArgs({ steps: 50, lr: 1e-3 }, {}, 64, TRAIN_DEFAULTS);
    expect(t).toMatchObject({ steps: 50, lr: 1e-3 });
    expect(t.minLr).toBeCloseTo(1e-4, 15);
    const { raw } = modelConfigFromArgs({ positions: 'learned' }, TRAIN_MODEL_DEFAULTS);
    expect(raw.positions).toBe('learned');
    const ngpt = trainConfigFromArgs({}, { lr: 3e-3, warmupSteps: 0, weightDecay: 0 }, 64, TRAIN_DEFAULTS);
    expect(ngpt).toMatchObject({ steps: 1000, warmupSteps: 0, weightDecay: 0 });
  });

  it('both cores for the default model on wasm/cpu, one for tiny models, native backends or one core', () => {
    const { family, raw } = modelConfigFromArgs({}, TRAIN_MODEL_DEFAULTS);
    const fam = getModelFamily(family);
    const model = fam.create(fam.parseConfig(raw), { seed: 1 });
    const params = model.params.count();
    model.dispose();
    // The learned-position model `strata train` printed before (834,304) minus its 64 × 128 position table.
    expect(params).toBe(834_304 - 64 * 128);
    expect(defaultWorkers('wasm', params, 16 * 64, 2)).toBe(2);
    expect(defaultWorkers('cpu', params, 16 * 64, 16)).toBe(2);
    expect(defaultWorkers('wasm', params, 16 * 64, 1)).toBe(1);
    expect(defaultWorkers('tensorflow', params, 16 * 64, 2)).toBe(1);
    expect(defaultWorkers('wasm', 30_000, 4 * 16, 2)).toBe(1); // the tests' TINY_MODEL
  });
});
