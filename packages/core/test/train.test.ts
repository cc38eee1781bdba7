import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AdamW,
  type Batch,
  type BatchSource,
  getModelFamily,
  initBackend,
  learningRateAt,
  loadCheckpoint,
  parseTrainConfig,
  Rng,
  saveCheckpoint,
  Trainer,
} from '../src/index.js';
import { tinyGPT } from './helpers.js';

/** Order-1 Markov data with two successors per token: learnable, with a known entropy floor of ln 2. */
class MarkovSource implements BatchSource {
  private next: number[][];
  constructor(private readonly vocab: number) {
    const rng = new Rng(99);
    this.next = Array.from({ length: vocab }, () => [rng.int(vocab), rng.int(vocab)]);
  }
  private seq(rng: Rng, n: number): number[] {
    const out = [rng.int(this.vocab)];
    while (out.length < n) out.push(this.next[out[out.length - 1]!]![rng.int(2)]!);
    return out;
  }
  trainBatch(step: number, batchSize: number, seqLen: number): Batch {
    const rng = Rng.derive(1, 'markov', step);
    const x = new Int32Array(batchSize * seqLen);
    const y = new Int32Array(batchSize * seqLen);
    for (let b = 0; b < batchSize; b++) {
      const s = this.seq(rng, seqLen + 1);
      for (let t = 0; t < seqLen; t++) {
        x[b * seqLen + t] = s[t]!;
        y[b * seqLen + t] = s[t + 1]!;
      }
    }
    return { x, y };
  }
  valBatches(batchSize: number, seqLen: number, maxBatches: number): Batch[] {
    return Array.from({ length: maxBatches }, (_, i) => this.trainBatch(10_000 + i, batchSize, seqLen));
  }
}

const tmp = mkdtempSync(join(tmpdir(), 'strata-train-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
beforeAll(async () => {
  await initBackend('wasm');
});

const cfg = (o: Record<string, unknown> = {}) =>
  parseTrainConfig(
    { steps: 30, batchSize: 4, seqLen: 8, lr: 1e-2, minLr: 1e-3, warmupSteps: 3, evalBatches: 2, ...o },
    8,
  );

describe('schedule', () => {
  it('warms up linearly then follows a cosine to minLr', () => {
    const s = { lr: 1, minLr: 0.1, warmupSteps: 10, totalSteps: 110, decay: 'cosine' as const };
    expect(learningRateAt(0, s)).toBeCloseTo(0.1, 12);
    expect(learningRateAt(9, s)).toBeCloseTo(1, 12);
    expect(learningRateAt(60, s)).toBeCloseTo(0.55, 12); // halfway: (1 + 0.1)/2
    expect(learningRateAt(110, s)).toBeCloseTo(0.1, 12);
    expect(learningRateAt(500, s)).toBeCloseTo(0.1, 12);
  });
});

describe('AdamW', () => {
  it('matches the closed-form first step and decays only the decay group', () => {
    const m = tinyGPT();
    const opt = new AdamW(m.params, { weightDecay: 0.5, beta1: 0.9, beta2: 0.99, eps: 1e-8 });
    const before = new Map(m.params.variables().map(([n, v]) => [n, v.dataSync().slice()]));
    const grads = new Map(
      m.params.variables().map(([n, v]) => [n, tf.fill(v.shape, 0.3)] as [string, tf.Tensor]),
    );
    opt.apply(grads, 0.01);
    for (const [name, v] of m.params.variables()) {
      const decay = m.params.spec(name).decay;
      const b = before.get(name)!;
      const a = v.dataSync();
      // Step 1: m̂ = g, v̂ = g², update = g/(|g|+eps) ≈ 1 → θ' = θ(1 − lr·λ) − lr.
      const expected = (x: number) => x * (1 - (decay ? 0.01 * 0.5 : 0)) - 0.01 * (0.3 / (0.3 + 1e-8));
      for (let i = 0; i < a.length; i += Math.max(1, Math.floor(a.length / 7)))
        expect(a[i]).toBeCloseTo(expected(b[i]!), 6);
    }
    expect(m.params.spec('tok_emb.weight').decay).toBe(false);
    expect(m.params.spec('blocks.0.attn.norm.weight').decay).toBe(false);
    expect(m.params.spec('blocks.0.attn.qkv.bias').decay).toBe(false);
    expect(m.params.spec('blocks.0.mlp.fc.weight').decay).toBe(true);
    for (const g of grads.values()) g.dispose();
    opt.dispose();
    m.dispose();
  });
});

describe('Trainer', () => {
  it('overfits a tiny batch to near-zero loss', async () => {
    const m = tinyGPT({ dModel: 32, nHeads: 4, vocabSize: 16, contextLength: 8 });
    const fixed = new MarkovSource(16).trainBatch(0, 2, 8);
    const src: BatchSource = { trainBatch: () => fixed, valBatches: () => [fixed] };
    const t = new Trainer(
      m,
      src,
      cfg({ steps: 150, batchSize: 2, lr: 1e-2, minLr: 1e-2, weightDecay: 0, warmupSteps: 0 }),
    );
    let last = Number.NaN;
    for (let i = 0; i < 150; i++) last = (await t.step()).loss;
    expect(last).toBeLessThan(0.05);
    t.dispose();
    m.dispose();
  });

  it('learns Markov data well below ln(vocab) and keeps the tensor count flat (no leaks)', async () => {
    const m = tinyGPT({ dModel: 32, nHeads: 4, vocabSize: 16, contextLength: 8 });
    const t = new Trainer(m, new MarkovSource(16), cfg({ steps: 60, diagnosticsEvery: 20 }));
    const counts: number[] = [];
    const first = await t.evaluate();
    for (let i = 0; i < 60; i++) counts.push((await t.step()).numTensors);
    const after = await t.evaluate();
    expect(first.loss).toBeGreaterThan(2.5);
    expect(after.loss).toBeLessThan(1.4); // floor is ln 2 ≈ 0.69
    expect(new Set(counts.slice(1)).size).toBe(1);
    t.dispose();
    m.dispose();
  });

  it('records diagnostics: per-layer gradient norms, norm-input norms and ‖ΔF‖', async () => {
    const m = tinyGPT({ nLayers: 3 });
    const t = new Trainer(m, new MarkovSource(13), cfg({ diagnosticsEvery: 2 }));
    const s1 = await t.step();
    expect(s1.diagnostics!.layerGradNorms).toHaveLength(3);
    expect(s1.diagnostics!.layerGradNorms.every((g) => g > 0)).toBe(true);
    expect(Object.keys(s1.diagnostics!.normInputs)).toContain('blocks.2.mlp.norm');
    expect(s1.diagnostics!.deltaF).toBeGreaterThan(0);
    t.dispose();
    m.dispose();
  });

  it('‖ΔF‖ after a resume is measured from θ_0 (the initial model), or NaN when θ_0 is not given', async () => {
    const c = cfg({ steps: 8, diagnosticsEvery: 2 });
    const src = new MarkovSource(13);
    const a = tinyGPT({}, 3);
    const ta = new Trainer(a, src, c);
    const dA: number[] = [];
    for (let i = 0; i < 8; i++) dA.push((await ta.step()).diagnostics?.deltaF ?? -1);
    const b = tinyGPT({}, 3);
    const tb = new Trainer(b, src, c);
    for (let i = 0; i < 4; i++) await tb.step();
    const resumeState = { optimizer: await tb.optimizer.exportState(), state: { ...tb.state } };
    // with θ_0 given: the same ‖ΔF‖ as the uninterrupted run (not the update since the checkpoint)
    const theta0 = tinyGPT({}, 3);
    const tc = new Trainer(b, src, c, resumeState, { initialModel: theta0 });
    const dC: number[] = [];
    for (let i = 4; i < 8; i++) dC.push((await tc.step()).diagnostics?.deltaF ?? -1);
    for (let i = 0; i < 4; i++) expect(dC[i]).toBeCloseTo(dA[4 + i]!, 5);
    expect(dA[7]).toBeGreaterThan(0);
    tc.dispose();
    theta0.dispose();
    b.dispose();
    // without it: NaN, never a small number that looks like a tiny update
    const d = tinyGPT({}, 3);
    const td = new Trainer(d, src, c, { state: { step: 6, trainSeconds: 0, skippedSteps: 0 } });
    expect((await td.step()).diagnostics!.deltaF).toBeNaN();
    td.dispose();
    d.dispose();
    ta.dispose();
    a.dispose();
  });

  it('resuming from a checkpoint reproduces the uninterrupted run bit for bit', async () => {
    const c = cfg({ steps: 12 });
    const model = () => tinyGPT({ dropout: 0.1 }, 7);
    const src = new MarkovSource(13);
    const a = model();
    const ta = new Trainer(a, src, c);
    const lossesA: number[] = [];
    for (let i = 0; i < 12; i++) lossesA.push((await ta.step()).loss);

    const b = model();
    const tb = new Trainer(b, src, c);
    const lossesB: number[] = [];
    for (let i = 0; i < 5; i++) lossesB.push((await tb.step()).loss);
    const dir = join(tmp, 'resume');
    await saveCheckpoint(dir, b, {
      tokenizer: { kind: 'byte' },
      optimizer: await tb.optimizer.exportState(),
      state: { ...tb.state },
    });
    tb.dispose();
    b.dispose();
    const loaded = await loadCheckpoint(dir, { optimizer: true });
    const tc = new Trainer(loaded.model, src, c, { optimizer: loaded.optimizer!, state: loaded.state! });
    for (let i = 5; i < 12; i++) lossesB.push((await tc.step()).loss);
    expect(lossesB).toEqual(lossesA);
    const wa = await a.params.read();
    const wc = await loaded.model.params.read();
    for (const [n, v] of wa) expect(Array.from(wc.get(n)!)).toEqual(Array.from(v));
    ta.dispose();
    tc.dispose();
    a.dispose();
    loaded.model.dispose();
  });

  it('checkpoint round trip is bit-exact for every family option', async () => {
    for (const o of [
      {},
      { positions: 'rope', activation: 'swiglu', tiedEmbeddings: false, normKind: 'rmsnorm', bias: false },
    ]) {
      const m = tinyGPT(o, 3);
      const dir = join(tmp, `rt-${Object.keys(o).length}`);
      await saveCheckpoint(dir, m, { tokenizer: { kind: 'byte' } });
      const { model } = await loadCheckpoint(dir);
      expect(model.config).toEqual(m.config);
      const a = await m.params.read();
      const b = await model.params.read();
      expect([...b.keys()]).toEqual([...a.keys()]);
      for (const [n, v] of a) expect(Buffer.from(b.get(n)!.buffer).equals(Buffer.from(v.buffer))).toBe(true);
      m.dispose();
      model.dispose();
    }
  });

  it('stops with a clear error when the loss is not finite, and can skip instead', async () => {
    const m = tinyGPT();
    const bad: BatchSource = new MarkovSource(13);
    m.params.get('tok_emb.weight').assign(tf.fill([13, 8], Number.NaN));
    const t = new Trainer(m, bad, cfg());
    await expect(t.step()).rejects.toThrow(/diverged at step 1: loss is NaN/);
    t.dispose();
    const t2 = new Trainer(m, bad, cfg({ onNonFinite: 'skip' }));
    const s = await t2.step();
    expect(s.skipped).toBe(true);
    t2.dispose();
    m.dispose();
  });

  it('wasm and cpu agree on a forward pass', async () => {
    const ids = [[1, 2, 3, 4, 5, 6, 7, 8]];
    const fam = getModelFamily('gpt');
    const c = fam.parseConfig({
      vocabSize: 50,
      contextLength: 8,
      dModel: 32,
      nLayers: 2,
      nHeads: 4,
      positions: 'rope',
      activation: 'swiglu',
    });
    const run = async (backend: string) => {
      await initBackend(backend);
      const m = fam.create(c, { seed: 11 });
      const out = tf.tidy(() =>
        m
          .forward(tf.tensor2d(ids, [1, 8], 'int32'))
          .dataSync()
          .slice(),
      );
      m.dispose();
      return out;
    };
    const w = await run('wasm');
    const cpu = await run('cpu');
    await initBackend('wasm');
    let max = 0;
    for (let i = 0; i < w.length; i++) max = Math.max(max, Math.abs(w[i]! - cpu[i]!));
    expect(max).toBeLessThan(1e-5);
  });
});
