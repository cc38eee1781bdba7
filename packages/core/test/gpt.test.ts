import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { type GPTConfig, getModelFamily, initBackend, StrataError } from '../src/index.js';
import { logitsOf, lossOf, tinyGPT } from './helpers.js';

beforeAll(async () => {
  await initBackend('cpu');
});

// ---------------------------------------------------------------------------------------------
// An independent float64 implementation of GPT-2 (Radford et al. 2019; HF `GPT2LMHeadModel` with
// gelu_new, LayerNorm eps 1e-5, Conv1D [in, out] weights, tied head). Written from the equations,
// not from the model code.
type Mat = number[][];
function mm(a: Mat, w: Float32Array, inDim: number, outDim: number, b?: Float32Array): Mat {
  return a.map((row) => {
    const out = new Array<number>(outDim).fill(0);
    for (let i = 0; i < inDim; i++) {
      const x = row[i]!;
      for (let j = 0; j < outDim; j++) out[j]! += x * w[i * outDim + j]!;
    }
    if (b) for (let j = 0; j < outDim; j++) out[j]! += b[j]!;
    return out;
  });
}
function ln(a: Mat, g: Float32Array, b: Float32Array, eps: number): Mat {
  return a.map((row) => {
    const mu = row.reduce((s, v) => s + v, 0) / row.length;
    const varc = row.reduce((s, v) => s + (v - mu) ** 2, 0) / row.length;
    return row.map((v, i) => ((v - mu) / Math.sqrt(varc + eps)) * g[i]! + b[i]!);
  });
}
const geluNew = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
function gpt2Reference(w: Map<string, Float32Array>, c: GPTConfig, ids: number[]): Mat {
  const d = c.dModel;
  const H = c.nHeads;
  const hd = d / H;
  const T = ids.length;
  const wte = w.get('tok_emb.weight')!;
  const wpe = w.get('pos_emb.weight')!;
  let x: Mat = ids.map((id, t) => Array.from({ length: d }, (_, j) => wte[id * d + j]! + wpe[t * d + j]!));
  for (let l = 0; l < c.nLayers; l++) {
    const p = (n: string) => w.get(`blocks.${l}.${n}`)!;
    const h = ln(x, p('attn.norm.weight'), p('attn.norm.bias'), 1e-5);
    const qkv = mm(h, p('attn.qkv.weight'), d, 3 * d, p('attn.qkv.bias'));
    const merged: Mat = Array.from({ length: T }, () => new Array<number>(d).fill(0));
    for (let hh = 0; hh < H; hh++) {
      for (let i = 0; i < T; i++) {
        const scores: number[] = [];
        for (let j = 0; j <= i; j++) {
          let s = 0;
          for (let k = 0; k < hd; k++) s += qkv[i]![hh * hd + k]! * qkv[j]![d + hh * hd + k]!;
          scores.push(s / Math.sqrt(hd));
        }
        const m = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - m));
        const z = e.reduce((a, b) => a + b, 0);
        for (let j = 0; j <= i; j++)
          for (let k = 0; k < hd; k++)
            merged[i]![hh * hd + k]! += (e[j]! / z) * qkv[j]![2 * d + hh * hd + k]!;
      }
    }
    const a = mm(merged, p('attn.proj.weight'), d, d, p('attn.proj.bias'));
    x = x.map((row, i) => row.map((v, j) => v + a[i]![j]!));
    const h2 = ln(x, p('mlp.norm.weight'), p('mlp.norm.bias'), 1e-5);
    const f = mm(h2, p('mlp.fc.weight'), d, c.dFF, p('mlp.fc.bias')).map((r) => r.map(geluNew));
    const o = mm(f, p('mlp.proj.weight'), c.dFF, d, p('mlp.proj.bias'));
    x = x.map((row, i) => row.map((v, j) => v + o[i]![j]!));
  }
  x = ln(x, w.get('final.norm.weight')!, w.get('final.norm.bias')!, 1e-5);
  return x.map((row) =>
    Array.from({ length: c.vocabSize }, (_, v) => row.reduce((s, xv, j) => s + xv * wte[v * d + j]!, 0)),
  );
}

describe('GPT', () => {
  it('a GPT-2-shaped config computes GPT-2 (float64 reference, random non-trivial weights)', async () => {
    const m = tinyGPT({ vocabSize: 17, dModel: 16, nHeads: 4, nLayers: 2, contextLength: 8, initStd: 0.3 });
    // Perturb norm gains/biases too, so LayerNorm parameters are exercised.
    for (const [name, v] of m.params.variables()) {
      if (name.includes('norm')) v.assign(tf.add(v, tf.randomNormal(v.shape, 0, 0.2, 'float32', 3)));
    }
    const ids = [3, 1, 4, 1, 5, 9, 2, 6];
    const ref = gpt2Reference(await m.params.read(), m.config as GPTConfig, ids);
    const got = logitsOf(m, [ids])[0]!;
    let maxErr = 0;
    let maxAbs = 0;
    for (let i = 0; i < ids.length; i++)
      for (let v = 0; v < 17; v++) {
        maxErr = Math.max(maxErr, Math.abs(got[i]![v]! - ref[i]![v]!));
        maxAbs = Math.max(maxAbs, Math.abs(ref[i]![v]!));
      }
    expect(maxAbs).toBeGreaterThan(0.5);
    expect(maxErr / maxAbs).toBeLessThan(2e-5);
    m.dispose();
  });

  it('is causal: changing a future token leaves earlier logits unchanged', () => {
    for (const positions of ['learned', 'rope']) {
      const m = tinyGPT({ positions, activation: 'swiglu' });
      const a = logitsOf(m, [[1, 2, 3, 4, 5, 6]])[0]!;
      const b = logitsOf(m, [[1, 2, 3, 4, 12, 0]])[0]!;
      for (let t = 0; t < 4; t++) expect(b[t]).toEqual(a[t]);
      expect(b[4]).not.toEqual(a[4]);
      m.dispose();
    }
  });

  it('untrained loss is ≈ ln(vocab)', () => {
    const m = tinyGPT({ vocabSize: 256, dModel: 32, nHeads: 4, contextLength: 16 });
    const ids = [Array.from({ length: 16 }, (_, i) => (i * 37) % 256)];
    const tgt = [Array.from({ length: 16 }, (_, i) => (i * 91 + 5) % 256)];
    const loss = lossOf(m, ids, tgt);
    expect(Math.abs(loss.dataSync()[0]! - Math.log(256))).toBeLessThan(0.05);
    loss.dispose();
    m.dispose();
  });

  it('gradients match central finite differences', () => {
    const configs = [
      { positions: 'learned', activation: 'gelu', normKind: 'layernorm' },
      { positions: 'rope', activation: 'swiglu', normKind: 'rmsnorm', tiedEmbeddings: false, bias: false },
    ];
    for (const extra of configs) {
      const m = tinyGPT({ initStd: 0.4, ...extra }, 5);
      const ids = [
        [1, 5, 2, 7],
        [3, 3, 9, 0],
      ];
      const tgt = [
        [5, 2, 7, 1],
        [3, 9, 0, 4],
      ];
      const { grads } = tf.variableGrads(() => lossOf(m, ids, tgt));
      const byVar = new Map(Object.entries(grads));
      let checked = 0;
      for (const [name, v] of m.params.variables()) {
        const g = byVar.get(v.name)!.dataSync();
        const vals = v.dataSync().slice();
        for (const idx of [0, Math.floor(vals.length / 2), vals.length - 1]) {
          const h = 1e-2;
          const at = (delta: number) => {
            const copy = vals.slice();
            copy[idx]! += delta;
            v.assign(tf.tensor(copy, v.shape));
            const l = lossOf(m, ids, tgt);
            const r = l.dataSync()[0]!;
            l.dispose();
            return r;
          };
          const fd = (at(h) - at(-h)) / (2 * h);
          v.assign(tf.tensor(vals, v.shape));
          // float32 losses (~1e-7 relative) and O(h²) truncation bound the achievable agreement.
          expect(Math.abs(fd - g[idx]!), `${name}[${idx}]: analytic ${g[idx]} vs fd ${fd}`).toBeLessThan(
            2e-3 + 2e-2 * Math.abs(fd),
          );
          checked++;
        }
      }
      expect(checked).toBeGreaterThan(30);
      for (const t of Object.values(grads)) t.dispose();
      m.dispose();
    }
  });

  it('rejects impossible configs with messages naming the field', () => {
    const fam = getModelFamily('gpt');
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ dModel: 130, nHeads: 4 }, /model\.dModel \(130\) must be divisible by model\.nHeads \(4\)/],
      [{ nLayers: 0 }, /model\.nLayers/],
      [{ activation: 'tanh' }, /model\.activation must be/],
      [{ dmodel: 64 }, /unknown model config key "dmodel"/],
      [{ norm: { name: 'no-such-norm' } }, /unknown norm strategy "no-such-norm"; registered: .*"pre-ln"/],
      [{ positions: 'rope', dModel: 12, nHeads: 4 }, /even head dimension/],
    ];
    for (const [cfg, re] of bad) {
      let err: unknown;
      try {
        fam.parseConfig(cfg);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(StrataError);
      expect((err as Error).message).toMatch(re);
    }
  });

  it('reports parameter counts per component that add up', () => {
    const m = tinyGPT({ tiedEmbeddings: false });
    const sum = m.components().reduce((s, c) => s + c.params, 0);
    expect(sum).toBe(m.params.count());
    // d=8, V=13, T=8, 2 layers, dFF=32, biases: closed form.
    const d = 8;
    const perLayer = 2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * 32 + 32) + (32 * d + d);
    expect(m.params.count()).toBe(13 * d + 8 * d + 2 * perLayer + 2 * d + d * 13);
    m.dispose();
  });
});
