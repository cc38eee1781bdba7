import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ByteTokenizer, crossEntropy, loadCheckpoint, saveCheckpoint, setStrataKernels } from '@strata/core';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  effectiveScales,
  type NGPT,
  normalizeMatrices,
  registerNGPT,
  unitNormAxisOf,
  unitNormErrors,
  vectorNorms,
} from '../src/index.js';
import { idsTensor, maxAbsDiff, randomIds, randomizeScales, setup, tinyModel } from './helpers.js';

beforeAll(setup);

/** Max |‖row‖ − 1| over the last axis of a [B, T, d] tensor. */
async function maxRowNormError(x: tf.Tensor): Promise<number> {
  const d = x.shape[x.rank - 1]!;
  const data = await x.data();
  const norms = vectorNorms(data, [data.length / d, d], 1);
  return Math.max(...Array.from(norms, (n) => Math.abs(n - 1)));
}

async function maxUnitNormError(model: NGPT): Promise<number> {
  return Math.max(...(await unitNormErrors(model.params)).values());
}

/** One Adam step (tfjs's own optimizer, as a user might) on next-token loss, then `afterStep()`. */
function adamStep(model: NGPT, opt: tf.Optimizer, x: tf.Tensor2D, y: tf.Tensor1D, withHook = true): number {
  const V = model.config.vocabSize;
  const vars = model.params.variables().map(([, v]) => v);
  const { value, grads } = tf.variableGrads(
    () => crossEntropy(tf.reshape(model.forward(x), [-1, V]) as tf.Tensor2D, y),
    vars,
  );
  opt.applyGradients(grads);
  if (withHook) model.afterStep();
  const loss = value.dataSync()[0]!;
  tf.dispose([value, ...Object.values(grads)]);
  return loss;
}

describe('parameter layout', () => {
  it('names, shapes, roles, no weight decay, unit-norm axes', () => {
    const m = tinyModel();
    const rows = m.params
      .specs()
      .map((s) => [s.name, s.shape.join('x'), s.role, unitNormAxisOf(s) ?? '-', s.decay]);
    expect(rows).toEqual([
      ['tok_emb.weight', '11x8', 'tok_embedding', 1, false],
      ...[0, 1].flatMap((i) => [
        [`blocks.${i}.attn.qkv.weight`, '8x24', 'qkv', 0, false],
        [`blocks.${i}.attn.s_qk`, '8', 'scale', '-', false],
        [`blocks.${i}.attn.proj.weight`, '8x8', 'attn_out', 1, false],
        [`blocks.${i}.attn.alpha_A`, '8', 'scale', '-', false],
        [`blocks.${i}.mlp.fc.weight`, '8x12', 'ffn_in', 0, false],
        [`blocks.${i}.mlp.gate.weight`, '8x12', 'ffn_gate', 0, false],
        [`blocks.${i}.mlp.s_u`, '12', 'scale', '-', false],
        [`blocks.${i}.mlp.s_nu`, '12', 'scale', '-', false],
        [`blocks.${i}.mlp.proj.weight`, '12x8', 'ffn_out', 1, false],
        [`blocks.${i}.mlp.alpha_M`, '8', 'scale', '-', false],
      ]),
      ['lm_head.weight', '8x11', 'head', 0, false],
      ['s_z', '11', 'scale', '-', false],
    ]);
    // every unit-norm axis is the axis of length d_model
    for (const s of m.params.specs()) {
      const ax = unitNormAxisOf(s);
      if (ax !== undefined) expect(s.shape[ax]).toBe(8);
    }
    expect(m.components().reduce((a, c) => a + c.params, 0)).toBe(m.params.count());
    expect(m.summary().join('\n')).toContain('nGPT: 2 layers');
    m.dispose();
  });

  it('initial weights are identical for equal seeds and differ for different seeds', async () => {
    const a = tinyModel({}, 5);
    const b = tinyModel({}, 5);
    const c = tinyModel({}, 6);
    const [wa, wb, wc] = await Promise.all([a.params.read(), b.params.read(), c.params.read()]);
    expect(maxAbsDiff(wa.get('blocks.1.mlp.fc.weight')!, wb.get('blocks.1.mlp.fc.weight')!)).toBe(0);
    expect(maxAbsDiff(wa.get('blocks.1.mlp.fc.weight')!, wc.get('blocks.1.mlp.fc.weight')!)).toBeGreaterThan(
      0.01,
    );
    for (const m of [a, b, c]) m.dispose();
  });
});

describe('unit-norm invariants', () => {
  it('every matrix vector along d_model is unit-norm at init and after Adam steps + afterStep()', async () => {
    const m = tinyModel();
    expect(await maxUnitNormError(m)).toBeLessThan(1e-6);
    const ids = randomIds(4, 8, 11, 2);
    const x = idsTensor(ids);
    const y = tf.tensor1d(randomIds(4, 8, 11, 3).flat(), 'int32');
    const opt = tf.train.adam(0.02, 0.9, 0.95, 1e-8);
    const losses: number[] = [];
    // warm-up step (creates the optimizer's slots), then count tensors: afterStep() must not leak
    losses.push(adamStep(m, opt, x, y));
    const before = tf.memory().numTensors;
    for (let s = 0; s < 10; s++) {
      losses.push(adamStep(m, opt, x, y));
      expect(await maxUnitNormError(m)).toBeLessThan(1e-5);
    }
    expect(tf.memory().numTensors).toBe(before);
    expect(losses[losses.length - 1]!).toBeLessThan(losses[0]! - 0.1);
    // hidden states after training are still on the sphere between every block and sub-block
    const { logits, hidden } = m.forwardWithHidden(x);
    for (const h of hidden) expect(await maxRowNormError(h)).toBeLessThan(1e-5);
    tf.dispose([logits, ...hidden]);
    // the hook is what keeps them there: without it the matrices leave the sphere
    adamStep(m, opt, x, y, false);
    expect(await maxUnitNormError(m)).toBeGreaterThan(1e-3);
    normalizeMatrices(m.params);
    expect(await maxUnitNormError(m)).toBeLessThan(1e-5);
    tf.dispose([x, y]);
    opt.dispose();
    m.dispose();
  });

  it('scaling vectors are never projected', async () => {
    const m = tinyModel();
    randomizeScales(m);
    const before = await m.params.read();
    m.afterStep();
    const after = await m.params.read();
    for (const s of m.params.specs()) {
      if (s.role === 'scale') expect(maxAbsDiff(before.get(s.name)!, after.get(s.name)!)).toBe(0);
    }
    m.dispose();
  });

  it('hidden states are unit-norm between blocks at init (with random scales too)', async () => {
    const m = tinyModel({ nLayers: 3 });
    const x = idsTensor(randomIds(2, 8, 11, 4));
    for (const randomize of [false, true]) {
      if (randomize) randomizeScales(m, { signed: true });
      const { logits, hidden } = m.forwardWithHidden(x);
      expect(hidden).toHaveLength(7);
      for (const h of hidden) {
        expect(h.shape).toEqual([2, 8, 8]);
        expect(await maxRowNormError(h)).toBeLessThan(1e-5);
      }
      tf.dispose([logits, ...hidden]);
    }
    x.dispose();
    m.dispose();
  });
});

describe('identity blocks (growth)', () => {
  it('a last block with alpha_A = alpha_M = 0 (signed alpha) leaves the logits of the (L−1)-layer model unchanged', async () => {
    const big = tinyModel({ nLayers: 3, alphaAbs: false }, 12);
    randomizeScales(big, { signed: true });
    for (const n of ['blocks.2.attn.alpha_A', 'blocks.2.mlp.alpha_M']) {
      const z = tf.zeros([8]);
      big.params.get(n).assign(z);
      z.dispose();
    }
    const small = tinyModel({ nLayers: 2, alphaAbs: false }, 99);
    const w = await big.params.read();
    for (const k of [...w.keys()]) if (k.startsWith('blocks.2.')) w.delete(k);
    small.params.assign(w);
    const x = idsTensor(randomIds(3, 8, 11, 8));
    const a = big.forwardWithHidden(x);
    const b = small.forward(x);
    // Norm(h + 0·(…)) = h up to one float32 re-normalization of an (already) unit vector
    expect(maxAbsDiff(await a.logits.data(), await b.data())).toBeLessThan(2e-6);
    const h4 = await a.hidden[4]!.data();
    expect(maxAbsDiff(await a.hidden[5]!.data(), h4)).toBeLessThan(1e-6);
    expect(maxAbsDiff(await a.hidden[6]!.data(), h4)).toBeLessThan(1e-6);
    tf.dispose([x, a.logits, ...a.hidden, b]);
    big.dispose();
    small.dispose();
  });

  it('alpha = 0 can learn with signed alpha; with |alpha| its gradient is 0 (as in PyTorch)', async () => {
    for (const alphaAbs of [false, true]) {
      const m = tinyModel({ alphaAbs });
      const z = tf.zeros([8]);
      m.params.get('blocks.1.mlp.alpha_M').assign(z);
      z.dispose();
      const x = idsTensor(randomIds(2, 6, 11, 1));
      const y = tf.tensor1d(randomIds(2, 6, 11, 2).flat(), 'int32');
      const alpha = m.params.get('blocks.1.mlp.alpha_M');
      const { grads } = tf.variableGrads(
        () => crossEntropy(tf.reshape(m.forward(x), [-1, 11]) as tf.Tensor2D, y),
        [alpha],
      );
      const gv = await grads[alpha.name]!.data();
      const gmax = Math.max(...Array.from(gv, Math.abs));
      if (alphaAbs) expect(gmax).toBe(0);
      else expect(gmax).toBeGreaterThan(1e-4);
      tf.dispose([x, y, ...Object.values(grads)]);
      m.dispose();
    }
  });
});

describe('scale re-parameterization', () => {
  it('effective values at init are the reference values; sInit/sScale are NVIDIA’s', async () => {
    const m = tinyModel();
    const d = 8;
    const scales = await effectiveScales(m);
    expect(scales.map((s) => s.name)).toEqual([
      ...[0, 1].flatMap((i) => [
        `blocks.${i}.attn.s_qk`,
        `blocks.${i}.attn.alpha_A`,
        `blocks.${i}.mlp.s_u`,
        `blocks.${i}.mlp.s_nu`,
        `blocks.${i}.mlp.alpha_M`,
      ]),
      's_z',
    ]);
    const want: Record<string, [number, number, number, boolean]> = {
      // symbol: [effective init, sScale, gain, abs]
      alpha_A: [0.05, 1 / Math.sqrt(d), 1, true],
      alpha_M: [0.05, 1 / Math.sqrt(d), 1, true],
      s_qk: [1, 1 / Math.sqrt(d), 1, false],
      s_u: [1, 1, 1, false],
      s_nu: [1, 1, Math.sqrt(d), false],
      s_z: [1, 1 / Math.sqrt(d), 1, false],
    };
    for (const s of scales) {
      const [init, scale, gain, abs] = want[s.symbol]!;
      expect(s.min).toBeCloseTo(init, 6);
      expect(s.max).toBeCloseTo(init, 6);
      expect(s.sScale).toBeCloseTo(scale, 12);
      expect(s.gain).toBeCloseTo(gain, 12);
      expect(s.abs).toBe(abs);
      expect(s.multiplier).toBeCloseTo(init / scale, 12);
      // the stored parameter starts at sScale
      const p = await m.params.get(s.name).data();
      expect(maxAbsDiff(p, new Float32Array(p.length).fill(scale))).toBeLessThan(1e-7);
    }
    m.dispose();
  });

  it('scaleSummary pools the effective values per kind over layers (mean, min, max, count)', async () => {
    const m = tinyModel({ alphaAbs: false });
    const at0 = await m.scaleSummary();
    expect(Object.keys(at0)).toEqual(['alpha_A', 'alpha_M', 's_qk', 's_u', 's_nu', 's_z']);
    expect(at0.alpha_A).toMatchObject({ count: 2 * 8 });
    expect(at0.s_u).toMatchObject({ count: 2 * 12 });
    expect(at0.s_z).toMatchObject({ count: 11 });
    for (const v of Object.values(at0)) expect(v.max - v.min).toBeLessThan(1e-6);
    expect(at0.alpha_M!.mean).toBeCloseTo(0.05, 6);
    expect(at0.s_nu!.mean).toBeCloseTo(1, 6); // without the √d gain
    randomizeScales(m, { signed: true, seed: 9 });
    const sum = await m.scaleSummary();
    // against the stored parameters directly: p · sInit/sScale, signed α here
    const p0 = await m.params.get('blocks.0.attn.alpha_A').data();
    const p1 = await m.params.get('blocks.1.attn.alpha_A').data();
    const vals = [...p0, ...p1].map((p) => p * (0.05 / (1 / Math.sqrt(8))));
    expect(sum.alpha_A!.mean).toBeCloseTo(vals.reduce((a, b) => a + b, 0) / vals.length, 6);
    expect(sum.alpha_A!.min).toBeCloseTo(Math.min(...vals), 6);
    expect(sum.alpha_A!.max).toBeCloseTo(Math.max(...vals), 6);
    expect(sum.alpha_A!.min).toBeLessThan(0);
    m.dispose();
  });

  it('one SGD step with unit gradient moves each effective value by lr · sInit/sScale', async () => {
    const m = tinyModel();
    const lr = 0.01;
    const before = await effectiveScales(m);
    const opt = tf.train.sgd(lr);
    const grads: tf.NamedTensorMap = {};
    for (const s of before) {
      const v = m.params.get(s.name);
      grads[v.name] = tf.onesLike(v);
    }
    opt.applyGradients(grads);
    tf.dispose(Object.values(grads));
    const after = await effectiveScales(m);
    const d = 8;
    const expected: Record<string, number> = {
      alpha_A: 0.05 * Math.sqrt(d),
      alpha_M: 0.05 * Math.sqrt(d),
      s_qk: Math.sqrt(d),
      s_u: 1,
      s_nu: 1,
      s_z: Math.sqrt(d),
    };
    before.forEach((b, i) => {
      const a = after[i]!;
      for (let k = 0; k < b.values.length; k++) {
        expect(b.values[k]! - a.values[k]!).toBeCloseTo(lr * expected[b.symbol]!, 6);
      }
    });
    opt.dispose();
    m.dispose();
  });

  it('the forward pass uses the effective values (doubling p of s_z doubles the logits)', async () => {
    const m = tinyModel();
    const x = idsTensor(randomIds(1, 5, 11, 3));
    const l1 = await m.forward(x).data();
    const sz = m.params.get('s_z');
    const twice = tf.mul(sz, 2);
    sz.assign(twice);
    twice.dispose();
    const l2 = await m.forward(x).data();
    expect(
      maxAbsDiff(
        Array.from(l1, (v) => 2 * v),
        l2,
      ),
    ).toBeLessThan(1e-6);
    x.dispose();
    m.dispose();
  });
});

describe('language-model behaviour', () => {
  it('loads from a checkpoint at twice its context (RoPE, no position table) and keeps its prefix logits', async () => {
    registerNGPT();
    const m = tinyModel({ vocabSize: 256 });
    randomizeScales(m, { signed: true });
    const dir = mkdtempSync(join(tmpdir(), 'strata-ngpt-ctx-'));
    try {
      await saveCheckpoint(join(dir, 'ckpt'), m, { tokenizer: new ByteTokenizer().toJSON() });
      const long = await loadCheckpoint(join(dir, 'ckpt'), { contextLength: 16 });
      expect((long.model as unknown as NGPT).config.contextLength).toBe(16);
      const ids = randomIds(2, 16, 256, 9);
      const short = ids.map((row) => row.slice(0, 8));
      const [a, b] = [m.forward(idsTensor(short)), long.model.forward(idsTensor(ids))];
      const av = (await a.array()) as number[][][];
      const bv = (await b.array()) as number[][][];
      expect(bv[0]!.length).toBe(16);
      for (let bi = 0; bi < 2; bi++)
        expect(maxAbsDiff(av[bi]!.flat(), bv[bi]!.slice(0, 8).flat())).toBeLessThan(1e-5);
      tf.dispose([a, b]);
      long.model.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
      m.dispose();
    }
  });

  it('is causal: changing a future token leaves earlier logits unchanged', async () => {
    const m = tinyModel();
    randomizeScales(m, { signed: true });
    const ids = randomIds(2, 8, 11, 6);
    const changed = ids.map((row) => row.map((t, j) => (j >= 5 ? (t + 3) % 11 : t)));
    const [a, b] = [m.forward(idsTensor(ids)), m.forward(idsTensor(changed))];
    const av = (await a.array()) as number[][][];
    const bv = (await b.array()) as number[][][];
    for (let bi = 0; bi < 2; bi++) {
      expect(maxAbsDiff(av[bi]!.slice(0, 5).flat(), bv[bi]!.slice(0, 5).flat())).toBeLessThan(1e-6);
      expect(maxAbsDiff(av[bi]![5]!, bv[bi]![5]!)).toBeGreaterThan(1e-4);
    }
    tf.dispose([a, b]);
    m.dispose();
  });

  it('untrained loss ≈ ln V (logits are cosines in [−1, 1])', async () => {
    const m = tinyModel({ vocabSize: 64, dModel: 32, nHeads: 4, dFF: 64 });
    const x = idsTensor(randomIds(4, 8, 64, 1));
    const y = tf.tensor1d(randomIds(4, 8, 64, 2).flat(), 'int32');
    const logits = m.forward(x);
    const l = await logits.data();
    expect(Math.max(...Array.from(l, Math.abs))).toBeLessThanOrEqual(1 + 1e-6);
    const loss = crossEntropy(tf.reshape(logits, [-1, 64]) as tf.Tensor2D, y);
    expect(Math.abs((await loss.data())[0]! - Math.log(64))).toBeLessThan(0.1);
    tf.dispose([x, y, logits, loss]);
    m.dispose();
  });

  it('forward rejects sequences longer than contextLength and does not leak', () => {
    const m = tinyModel();
    const x = tf.zeros([1, 9], 'int32') as tf.Tensor2D;
    expect(() => m.forward(x)).toThrow(/contextLength 8/);
    const x2 = tf.zeros([1, 8], 'int32') as tf.Tensor2D;
    m.forward(x2).dispose();
    const n = tf.memory().numTensors;
    m.forward(x2).dispose();
    expect(tf.memory().numTensors).toBe(n);
    tf.dispose([x, x2]);
    m.dispose();
  });

  it('diagnostics record each Norm input', async () => {
    const m = tinyModel();
    m.setDiagnostics(true);
    const x = idsTensor(randomIds(1, 4, 11, 3));
    m.forward(x).dispose();
    const rec = await m.takeNormInputs();
    expect([...rec.keys()]).toEqual([
      'blocks.0.attn.h_A',
      'blocks.0.attn.residual',
      'blocks.0.mlp.h_M',
      'blocks.0.mlp.residual',
      'blocks.1.attn.h_A',
      'blocks.1.attn.residual',
      'blocks.1.mlp.h_M',
      'blocks.1.mlp.residual',
    ]);
    // h + α(Norm(h_A) − h) with α = 0.05 stays close to the sphere
    expect(rec.get('blocks.0.attn.residual')!).toBeGreaterThan(0.9);
    expect(rec.get('blocks.0.attn.residual')!).toBeLessThanOrEqual(1 + 1e-6);
    m.setDiagnostics(false);
    x.dispose();
    m.dispose();
  });
});

describe('fused wasm kernels', () => {
  /** Logits and every parameter gradient of the mean next-token loss. */
  async function lossGrads(model: NGPT, ids: number[][], targets: number[][]) {
    const V = model.config.vocabSize;
    const x = idsTensor(ids);
    const y = tf.tensor1d(targets.flat(), 'int32');
    const vars = model.params.variables();
    const logits = tf.tidy(() => model.forward(x));
    const { grads } = tf.variableGrads(
      () => crossEntropy(tf.reshape(model.forward(x), [-1, V]) as tf.Tensor2D, y),
      vars.map(([, v]) => v),
    );
    const out = new Map<string, Float32Array>();
    for (const [name, v] of vars) out.set(name, (await grads[v.name]!.data()) as Float32Array);
    const l = (await logits.data()) as Float32Array;
    tf.dispose([x, y, logits, ...Object.values(grads)]);
    return { logits: l, grads: out };
  }

  it('run the whole step (q/k norm + attention, SwiGLU, residual updates) and equal the tfjs ops to round-off', async () => {
    const model = tinyModel({ dModel: 12, nHeads: 2, dFF: 10 }); // d_k 6, d_ff 10: SIMD tails everywhere
    randomizeScales(model, { seed: 9 });
    const ids = randomIds(2, 8, 11, 41);
    const targets = randomIds(2, 8, 11, 42);
    const x = idsTensor(ids);
    const used = new Set((await tf.profile(() => tf.tidy(() => model.forward(x)))).kernelNames);
    x.dispose();
    for (const k of ['StrataQKNormRope', 'StrataAttention', 'StrataSwiGLUScaled', 'StrataNGPTResidual'])
      expect(used, k).toContain(k);
    for (const k of ['SplitV', 'Softmax', 'Sigmoid', 'BatchMatMul']) expect(used, k).not.toContain(k);

    const fused = await lossGrads(model, ids, targets);
    setStrataKernels(false);
    const plain = await lossGrads(model, ids, targets).finally(() => setStrataKernels(true));
    expect(maxAbsDiff(Array.from(fused.logits), Array.from(plain.logits))).toBeLessThan(2e-6);
    for (const [name, g] of fused.grads) {
      const p = plain.grads.get(name)!;
      const scale = Math.max(...Array.from(p, Math.abs));
      expect(maxAbsDiff(Array.from(g), Array.from(p)) / scale, name).toBeLessThan(5e-5);
    }
    model.dispose();
  });

  it('re-projection in one kernel per matrix, equal to the tfjs ops to round-off', async () => {
    const model = tinyModel();
    for (const [name, v] of model.params.variables())
      if (v.shape.length === 2)
        v.assign(tf.mul(v, tf.randomUniform(v.shape, 0.5, 2, 'float32', name.length)));
    const perturbed = await model.params.read();
    const profile = await tf.profile(() => normalizeMatrices(model.params));
    const matrices = model.params.specs().filter((s) => unitNormAxisOf(s) !== undefined).length;
    expect(profile.kernels.map((k) => k.name).filter((n) => n.startsWith('StrataL2Norm')).length).toBe(
      matrices,
    );
    expect(profile.kernels.length).toBe(matrices); // nothing else: one launch per matrix
    const fused = await model.params.read();
    for (const [name, data] of perturbed)
      model.params.get(name).assign(tf.tensor(data, model.params.get(name).shape));
    setStrataKernels(false);
    try {
      normalizeMatrices(model.params);
    } finally {
      setStrataKernels(true);
    }
    const plain = await model.params.read();
    for (const [name, f] of fused) {
      expect(maxAbsDiff(Array.from(f), Array.from(plain.get(name)!)), name).toBeLessThan(1e-6);
    }
    expect(await maxUnitNormError(model)).toBeLessThan(1e-6);
    model.dispose();
  });
});
