import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { type GPTConfig, getModelFamily, initBackend, StrataError } from '../src/index.js';
import { logitsOf, lossOf, tinyGPT } from './helpers.js';
import { hfGPT2Reference } from './reference-gpt2.js';

beforeAll(async () => {
  await initBackend('cpu');
});

/** GPT-2 reference on Strata's parameter names: maps each Hugging Face name to the Strata tensor. */
function gpt2Reference(w: Map<string, Float32Array>, c: GPTConfig, ids: number[]): number[][] {
  const strataName = (hf: string): string => {
    const m = /^h\.(\d+)\.(.+)$/.exec(hf);
    if (!m)
      return {
        'wte.weight': 'tok_emb.weight',
        'wpe.weight': 'pos_emb.weight',
        'ln_f.weight': 'final.norm.weight',
        'ln_f.bias': 'final.norm.bias',
      }[hf]!;
    const rest = m[2]!
      .replace('ln_1.', 'attn.norm.')
      .replace('ln_2.', 'mlp.norm.')
      .replace('attn.c_attn.', 'attn.qkv.')
      .replace('attn.c_proj.', 'attn.proj.')
      .replace('mlp.c_fc.', 'mlp.fc.')
      .replace('mlp.c_proj.', 'mlp.proj.');
    return `blocks.${m[1]}.${rest}`;
  };
  return hfGPT2Reference(
    (name) => w.get(strataName(name))!,
    { V: c.vocabSize, d: c.dModel, H: c.nHeads, F: c.dFF, L: c.nLayers, eps: 1e-5 },
    ids,
    true,
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
