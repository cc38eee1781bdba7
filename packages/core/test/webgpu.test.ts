/**
 * The GPT model family on tfjs's webgpu backend (Dawn in Node; SwiftShader's software Vulkan in CI): forward
 * parity with the cpu backend, Adam training steps, checkpoint resume, recomputation and KV-cached generation.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createIncrementalDecoder,
  generate,
  getModelFamily,
  initBackend,
  type LanguageModel,
  loadCheckpoint,
  MarkovDataset,
  parseTrainConfig,
  saveCheckpoint,
  Trainer,
} from '../src/index.js';
import { relMaxDiff, webgpuSkipReason } from './webgpu-setup.js';

const skip = await webgpuSkipReason();
const tmp = mkdtempSync(join(tmpdir(), 'strata-webgpu-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const VOCAB = 24;
const model = (over: Record<string, unknown> = {}, seed = 3): LanguageModel => {
  const fam = getModelFamily('gpt');
  return fam.create(
    fam.parseConfig({ vocabSize: VOCAB, contextLength: 12, dModel: 16, nLayers: 2, nHeads: 2, ...over }),
    { seed },
  );
};
const data = new MarkovDataset({ vocab: VOCAB, seed: 2 });
const cfg = (steps: number) =>
  parseTrainConfig(
    { steps, batchSize: 4, seqLen: 12, lr: 3e-3, warmupSteps: 2, evalBatches: 1, eps: 1e-8 },
    VOCAB,
  );
const ids = [
  [1, 5, 9, 2, 7, 3, 11, 4, 0, 8, 6, 10],
  [3, 3, 1, 20, 17, 2, 9, 9, 23, 5, 1, 0],
];

/** Flat logits of `model` on `rows` (an async read: webgpu has no synchronous read in Node). */
async function logitsOf(m: LanguageModel, rows: number[][]): Promise<Float32Array> {
  const t = tf.tidy(() => m.forward(tf.tensor2d(rows, [rows.length, rows[0]!.length], 'int32')));
  const v = (await t.data()) as Float32Array;
  t.dispose();
  return v;
}

/** Runs `f` on cpu, then on webgpu; returns both results. */
async function onBoth<T>(f: () => Promise<T> | T): Promise<{ cpu: T; gpu: T }> {
  await initBackend('cpu');
  const cpu = await f();
  await initBackend('webgpu');
  const gpu = await f();
  return { cpu, gpu };
}

async function trainLosses(
  over: Record<string, unknown>,
  steps: number,
  options: { recompute?: boolean } = {},
): Promise<{ losses: number[]; params: Float32Array[] }> {
  const m = model(over);
  const t = new Trainer(m, data, cfg(steps), undefined, options);
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) losses.push((await t.step()).loss);
  const params = [...(await m.params.read()).values()];
  t.dispose();
  m.dispose();
  return { losses, params };
}

describe.skipIf(skip !== undefined)('webgpu backend (GPT)', () => {
  it('initBackend("webgpu") activates it and names the adapter and driver', async () => {
    const b = await initBackend('webgpu');
    expect(b.name).toBe('webgpu');
    expect(tf.getBackend()).toBe('webgpu');
    expect(b.device).toMatch(/\S/);
  });

  for (const [label, over] of [
    ['learned positions, GELU, tied', {}],
    [
      'RoPE, SwiGLU, RMSNorm, untied, no bias',
      {
        positions: 'rope',
        activation: 'swiglu',
        normKind: 'rmsnorm',
        tiedEmbeddings: false,
        bias: false,
      },
    ],
  ] as const) {
    it(`forward pass matches cpu (${label})`, async () => {
      const { cpu, gpu } = await onBoth(async () => {
        const m = model(over);
        const out = Array.from(await logitsOf(m, ids));
        m.dispose();
        return out;
      });
      expect(relMaxDiff(gpu, cpu)).toBeLessThan(1e-5);
      // not a constant: the logits vary
      expect(Math.max(...cpu) - Math.min(...cpu)).toBeGreaterThan(1e-3);
    });
  }

  it('addN of more inputs than a shader can bind (tfjs-webgpu alone makes an invalid pipeline)', async () => {
    await initBackend('webgpu');
    const xs = Array.from({ length: 29 }, (_, i) => tf.fill([3], i + 1));
    const s = tf.addN(xs);
    expect(Array.from(await s.data())).toEqual([435, 435, 435]); // 1 + 2 + … + 29
    tf.dispose([...xs, s]);
  });

  it('Adam training steps match cpu', async () => {
    const { cpu, gpu } = await onBoth(() => trainLosses({}, 5));
    expect(relMaxDiff(gpu.losses, cpu.losses)).toBeLessThan(1e-5);
    expect(cpu.losses[4]!).toBeLessThan(cpu.losses[0]!);
    for (let i = 0; i < cpu.params.length; i++)
      expect(relMaxDiff(gpu.params[i]!, cpu.params[i]!)).toBeLessThan(1e-4);
  });

  it('per-block recomputation gives the same steps as the full tape', async () => {
    await initBackend('webgpu');
    const full = await trainLosses({ nLayers: 3 }, 3);
    const re = await trainLosses({ nLayers: 3 }, 3, { recompute: true });
    expect(relMaxDiff(re.losses, full.losses)).toBeLessThan(1e-6);
  });

  it('resuming from a checkpoint continues the uninterrupted run', async () => {
    await initBackend('webgpu');
    const straight = await trainLosses({ dropout: 0.1 }, 4);
    const m = model({ dropout: 0.1 });
    const t = new Trainer(m, data, cfg(4));
    const losses: number[] = [];
    for (let i = 0; i < 2; i++) losses.push((await t.step()).loss);
    const dir = join(tmp, 'resume');
    await saveCheckpoint(dir, m, {
      tokenizer: { kind: 'byte' },
      optimizer: await t.optimizer.exportState(),
      state: { ...t.state },
    });
    t.dispose();
    m.dispose();
    const loaded = await loadCheckpoint(dir, { optimizer: true });
    const t2 = new Trainer(loaded.model, data, cfg(4), {
      optimizer: loaded.optimizer!,
      state: loaded.state!,
    });
    for (let i = 2; i < 4; i++) losses.push((await t2.step()).loss);
    expect(relMaxDiff(losses, straight.losses)).toBeLessThan(1e-6);
    t2.dispose();
    loaded.model.dispose();
  });

  it('KV-cached generation: incremental logits equal the full pass, and greedy text equals cpu', async () => {
    await initBackend('webgpu');
    const m = model({ positions: 'rope' });
    const dec = createIncrementalDecoder(m);
    expect(dec).toBeDefined();
    const seq = ids[0]!.slice(0, 6);
    const full = await logitsOf(m, [seq]);
    for (let t = 1; t <= seq.length; t++) {
      const step = await dec!.next(seq.slice(0, t));
      expect(relMaxDiff(step, full.subarray((t - 1) * VOCAB, t * VOCAB))).toBeLessThan(1e-5);
    }
    dec!.dispose();
    m.dispose();
    const { cpu, gpu } = await onBoth(async () => {
      const g = model({ positions: 'rope' });
      const out = await generate(g, [1, 2, 3], { maxTokens: 8, temperature: 0 });
      g.dispose();
      return out;
    });
    expect(gpu).toEqual(cpu);
    expect(gpu).toHaveLength(8);
  });
});
