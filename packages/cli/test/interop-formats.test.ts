/**
 * Export/import layouts (hf-gpt2, hf-llama, torchscale, ngpt): round trips on random tiny models with every
 * weight randomized, names and shapes against the documented tables, refusals that name every difference,
 * and — when /usr/bin/python3 has torch — the exported files run through independent float64 PyTorch
 * forwards (test/python/torch_forward.py) and compared with Strata's logits.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  byteLevelAlphabet,
  fromTorchscaleConfig,
  getModelFamily,
  initBackend,
  type LanguageModel,
  Rng,
  readSafetensorsFile,
} from '@strata/core';
import { registerNGPT } from '@strata/ngpt';
import { registerBuiltinNorms } from '@strata/norms';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { byteTokenizerJSON, compareLogits, INTEROP_FORMATS } from '../src/interop.js';

const PY = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./python/torch_forward.py', import.meta.url));
const hasTorch = existsSync(PY) && spawnSync(PY, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;

beforeAll(async () => {
  await initBackend('cpu');
  registerBuiltinNorms();
  registerNGPT();
});

const tmp = () => mkdtempSync(join(tmpdir(), 'strata-interop-'));

/** A model of `family` whose every parameter is random (norm gains around 1, biases and scales nonzero). */
async function randomModel(family: string, raw: Record<string, unknown>, seed = 3): Promise<LanguageModel> {
  const fam = getModelFamily(family);
  const model = fam.create(fam.parseConfig(raw), { seed });
  const rng = Rng.derive(seed, 'interop-test');
  const values = new Map<string, Float32Array>();
  for (const s of model.params.specs()) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    const isGain = /norm\.weight$/.test(s.name);
    const isScale = s.role === 'scale';
    for (let i = 0; i < n; i++) {
      const g = rng.normal();
      v[i] = isGain
        ? 1 + 0.3 * g
        : isScale
          ? (0.5 + Math.abs(g)) * (model.params.get(s.name).dataSync()[0] ?? 1)
          : 0.3 * g;
    }
    values.set(s.name, v);
  }
  model.params.assign(values, 'test');
  return model;
}

const ids = [
  [3, 17, 250, 9, 44, 120, 7, 0, 255, 31, 64, 12],
  [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
];
/** Packed encoder-decoder rows: 6 source tokens (padding 256 in the first) and `<bos>` + 5 decoder tokens. */
const encdecIds = [
  [3, 17, 250, 256, 256, 256, 258, 31, 64, 12, 9, 1],
  [1, 2, 3, 4, 5, 6, 258, 8, 9, 10, 11, 12],
];
const probeFor = (family: string) => (family === 'encdec' ? encdecIds : ids);

function logits(model: LanguageModel): number[][][] {
  const x = probeFor(model.family);
  return tf.tidy(() => model.forward(tf.tensor2d(x, [2, 12], 'int32')).arraySync() as number[][][]);
}

function torchLogits(format: string, dir: string, family: string): number[][][] {
  const r = spawnSync(PY, [SCRIPT, format, dir, JSON.stringify(probeFor(family))], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as number[][][];
}

function maxDiff(a: number[][][], b: number[][][]): { diff: number; scale: number } {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++)
    for (let j = 0; j < a[i]!.length; j++)
      for (let k = 0; k < a[i]![j]!.length; k++) {
        const x = a[i]![j]![k]!;
        diff = Math.max(diff, Math.abs(x - b[i]![j]![k]!));
        scale = Math.max(scale, Math.abs(x));
      }
  return { diff, scale };
}

const small = { vocabSize: 256, contextLength: 16, dModel: 16, nLayers: 2, nHeads: 2 };
const CASES: { label: string; format: string; family: string; config: Record<string, unknown> }[] = [
  { label: 'GPT-2 tied', format: 'hf-gpt2', family: 'gpt', config: { ...small, positions: 'learned' } },
  {
    label: 'GPT-2 untied, erf GELU',
    format: 'hf-gpt2',
    family: 'gpt',
    config: { ...small, positions: 'learned', tiedEmbeddings: false, activation: 'gelu_erf', dFF: 40 },
  },
  {
    label: 'Llama untied',
    format: 'hf-llama',
    family: 'gpt',
    config: {
      ...small,
      positions: 'rope',
      activation: 'swiglu',
      normKind: 'rmsnorm',
      bias: false,
      tiedEmbeddings: false,
      dFF: 24,
      ropeBase: 500000,
      normEps: 1e-6,
    },
  },
  {
    label: 'Llama tied',
    format: 'hf-llama',
    family: 'gpt',
    config: { ...small, positions: 'rope', activation: 'swiglu', normKind: 'rmsnorm', bias: false },
  },
  ...['pre-ln', 'post-ln', 'deepnorm', 'subln'].map((norm) => ({
    label: `torchscale decoder ${norm}`,
    format: 'torchscale',
    family: 'gpt',
    config: {
      ...small,
      nLayers: 3,
      positions: 'learned',
      activation: 'gelu_erf',
      norm,
      tiedEmbeddings: norm !== 'subln',
    },
  })),
  {
    label: 'torchscale decoder relu, no positions',
    format: 'torchscale',
    family: 'gpt',
    config: { ...small, positions: 'none', activation: 'relu', norm: 'deepnorm', tiedEmbeddings: false },
  },
  {
    label: 'torchscale encoder deepnorm (padding mask)',
    format: 'torchscale',
    family: 'encoder',
    config: {
      ...small,
      vocabSize: 276,
      positions: 'learned',
      activation: 'gelu_erf',
      norm: 'deepnorm',
      padId: 0,
    },
  },
  {
    label: 'torchscale encoder subln',
    format: 'torchscale',
    family: 'encoder',
    config: {
      ...small,
      vocabSize: 276,
      positions: 'learned',
      activation: 'gelu_erf',
      norm: 'subln',
      padId: null,
    },
  },
  ...['deepnorm', 'subln', 'post-ln'].map((norm) => ({
    label: `torchscale encoder-decoder ${norm}`,
    format: 'torchscale',
    family: 'encdec',
    config: {
      vocabSize: 276,
      dModel: 16,
      nHeads: 2,
      nEncoderLayers: 2,
      nDecoderLayers: 3,
      sourceLength: 6,
      targetLength: 8,
      positions: 'learned',
      activation: 'gelu_erf',
      norm,
      tiedEmbeddings: norm !== 'subln',
    },
  })),
  { label: 'nGPT', format: 'ngpt', family: 'ngpt', config: { ...small } },
];

describe('export → import round trips (random tiny models, every weight random)', () => {
  for (const c of CASES) {
    it(`${c.label}: weights and logits come back exactly`, async () => {
      const model = await randomModel(c.family, c.config);
      const dir = tmp();
      const f = INTEROP_FORMATS[c.format]!;
      await f.write(model, dir);
      const back = await f.read(dir, {});
      expect(back.family).toBe(model.family);
      const a = await model.params.read();
      const b = await back.params.read();
      expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
      let w = 0;
      for (const [k, v] of a)
        for (let i = 0; i < v.length; i++) w = Math.max(w, Math.abs(v[i]! - b.get(k)![i]!));
      expect(w).toBeLessThanOrEqual(1e-6); // exact, or float32 round-off of the nGPT scale conversion
      const { maxAbsDelta, maxAbsLogit } = compareLogits(model, back, probeFor(c.family));
      expect(maxAbsLogit).toBeGreaterThan(0.1);
      expect(maxAbsDelta).toBeLessThanOrEqual(1e-5 * maxAbsLogit);
      model.dispose();
      back.dispose();
    });
  }
});

describe.skipIf(!hasTorch)(
  'plain PyTorch float64 forwards of the exported files (optional: /usr/bin/python3 with torch)',
  () => {
    for (const c of CASES) {
      it(`${c.label}: Strata's logits = PyTorch's`, async () => {
        const model = await randomModel(c.family, c.config);
        const dir = tmp();
        await INTEROP_FORMATS[c.format]!.write(model, dir);
        const { diff, scale } = maxDiff(logits(model), torchLogits(c.format, dir, c.family));
        expect(scale).toBeGreaterThan(0.1);
        expect(diff).toBeLessThan(2e-5 * Math.max(1, scale));
        model.dispose();
      }, 60_000);
    }
  },
);
if (!hasTorch) console.warn('skipped the PyTorch interop checks: /usr/bin/python3 has no torch');

describe('names and shapes against the documented layouts', () => {
  it('hf-llama: q/k/v/o, gate/up/down transposed [out, in], norms, lm_head', async () => {
    const m = await randomModel('gpt', CASES[2]!.config);
    const dir = tmp();
    await INTEROP_FORMATS['hf-llama']!.write(m, dir);
    const st = await readSafetensorsFile(join(dir, 'model.safetensors'));
    const shape = (n: string) => st.tensors.get(n)?.shape;
    expect(shape('model.embed_tokens.weight')).toEqual([256, 16]);
    expect(shape('model.layers.1.self_attn.q_proj.weight')).toEqual([16, 16]);
    expect(shape('model.layers.1.mlp.gate_proj.weight')).toEqual([24, 16]);
    expect(shape('model.layers.1.mlp.up_proj.weight')).toEqual([24, 16]);
    expect(shape('model.layers.1.mlp.down_proj.weight')).toEqual([16, 24]);
    expect(shape('model.layers.0.input_layernorm.weight')).toEqual([16]);
    expect(shape('model.layers.0.post_attention_layernorm.weight')).toEqual([16]);
    expect(shape('model.norm.weight')).toEqual([16]);
    expect(shape('lm_head.weight')).toEqual([256, 16]);
    expect(st.tensors.size).toBe(1 + 2 * 9 + 2);
    // q_proj row r = column r of Strata's qkv; k_proj row r = column d + r
    const qkv = (await m.params.read()).get('blocks.0.attn.qkv.weight')!;
    const k = st.tensors.get('model.layers.0.self_attn.k_proj.weight')!.data as Float32Array;
    expect(k[3 * 16 + 5]).toBe(qkv[5 * 48 + 16 + 3]);
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    expect(cfg).toMatchObject({
      model_type: 'llama',
      architectures: ['LlamaForCausalLM'],
      hidden_act: 'silu',
      num_key_value_heads: 2,
      rope_theta: 500000,
      rms_norm_eps: 1e-6,
      attention_bias: false,
      mlp_bias: false,
      tie_word_embeddings: false,
    });
    expect(existsSync(join(dir, 'generation_config.json'))).toBe(true);
    m.dispose();
  });

  it('torchscale: fairseq position offset 2, split q/k/v with biases, DeepNorm flags', async () => {
    const c = CASES.find((x) => x.label === 'torchscale decoder deepnorm')!;
    const m = await randomModel('gpt', c.config);
    const dir = tmp();
    await INTEROP_FORMATS.torchscale!.write(m, dir);
    const st = await readSafetensorsFile(join(dir, 'model.safetensors'));
    const pos = st.tensors.get('embed_positions.weight')!;
    expect(pos.shape).toEqual([18, 16]);
    const posData = pos.data as Float32Array;
    expect([...posData.subarray(0, 32)].every((x) => x === 0)).toBe(true);
    expect(posData[2 * 16 + 5]).toBe((await m.params.read()).get('pos_emb.weight')![5]);
    expect(st.tensors.get('layers.2.self_attn.v_proj.bias')!.shape).toEqual([16]);
    expect(st.tensors.get('layers.2.ffn.fc1.weight')!.shape).toEqual([64, 16]);
    expect(st.tensors.has('layer_norm.weight')).toBe(false); // DeepNorm: no final LN
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    expect(cfg.torchscale_class).toBe('Decoder');
    expect(cfg.config).toMatchObject({
      decoder_normalize_before: false,
      deepnorm: true,
      subln: false,
      activation_fn: 'gelu',
      no_scale_embedding: true,
      decoder_layers: 3,
    });
    m.dispose();
  });

  it('ngpt: NVIDIA names, fused c_fc [2F, d] and suv [2F], stored scale values', async () => {
    const m = await randomModel('ngpt', { ...small });
    const dir = tmp();
    await INTEROP_FORMATS.ngpt!.write(m, dir);
    const st = await readSafetensorsFile(join(dir, 'model.safetensors'));
    expect(st.tensors.get('transformer.h.0.c_fc.weight')!.shape).toEqual([128, 16]);
    expect(st.tensors.get('transformer.h.0.suv')!.shape).toEqual([128]);
    expect(st.tensors.get('transformer.h.0.mlp_c_proj.weight')!.shape).toEqual([16, 64]);
    expect(st.tensors.get('sz')!.shape).toEqual([256]);
    // stored sqk = effective s_qk · base_scale (NVIDIA: effective = stored · 1/base_scale)
    const p = (await m.params.read()).get('blocks.0.attn.s_qk')!;
    const eff = p[0]! * (1 / (1 / 4)); // Strata: effective = p · sInit/sScale, sScale = 1/√16
    expect((st.tensors.get('transformer.h.0.sqk')!.data as Float32Array)[0]).toBeCloseTo(eff * 0.25, 6);
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    expect(cfg).toMatchObject({ use_nGPT: 1, n_embd: 16, n_layer: 2, base_scale: 0.25, bias: false });
    m.dispose();
  });
});

describe('refusals name every difference', () => {
  it('a GPT-2-shaped model is not Llama-shaped: four reasons', async () => {
    const m = await randomModel('gpt', CASES[0]!.config);
    const err = await INTEROP_FORMATS['hf-llama']!.write(m, tmp()).then(
      () => undefined,
      (e: Error) => e.message,
    );
    for (const s of [
      'positions is "learned"',
      'activation is "gelu"',
      'normKind is "layernorm"',
      'bias is true',
    ])
      expect(err).toContain(s);
    m.dispose();
  });

  it('torchscale refuses RoPE, SwiGLU, RMSNorm, no biases and a pinned DeepNorm α', async () => {
    const m = await randomModel('gpt', {
      ...CASES[2]!.config,
      norm: { name: 'deepnorm', options: { alpha: 3 } },
    });
    const err = await INTEROP_FORMATS.torchscale!.write(m, tmp()).then(
      () => undefined,
      (e: Error) => e.message,
    );
    for (const s of ['rope', 'swiglu', 'rmsnorm', 'bias is false', 'α is pinned to 3'])
      expect(err).toContain(s);
    m.dispose();
  });

  it('ngpt refuses a d_ff other than 4·d and signed α', async () => {
    const m = await randomModel('ngpt', { ...small, dFF: 32, alphaAbs: false });
    const err = await INTEROP_FORMATS.ngpt!.write(m, tmp()).then(
      () => undefined,
      (e: Error) => e.message,
    );
    expect(err).toContain('dFF is 32');
    expect(err).toContain('alphaAbs is false');
    m.dispose();
  });

  it('a torchscale DeepNorm decoder needs decoder_normalize_before=False (torchscale does not set it)', () => {
    expect(() =>
      fromTorchscaleConfig(
        { torchscale_class: 'Decoder', config: { deepnorm: true, decoder_layers: 4 } },
        'c.json',
      ),
    ).toThrow(/decoder_normalize_before=True .*set decoder_normalize_before=False/);
    // subln defaults to True in torchscale: no flags = SubLN, and dropout is dropped
    const { config } = fromTorchscaleConfig(
      { torchscale_class: 'Decoder', config: { vocab_size: 10, dropout: 0.1 }, embed_positions: null },
      'c.json',
    );
    expect(config.norm).toEqual({ name: 'subln', options: {} });
    expect(config.dropout).toBe(0);
  });
});

describe('byte tokenizer.json', () => {
  it('maps every byte b to id b through the byte-level alphabet, with no merges', () => {
    const j = byteTokenizerJSON(['<pad>']) as {
      model: { vocab: Record<string, number>; merges: unknown[] };
      added_tokens: { id: number }[];
    };
    const alphabet = byteLevelAlphabet();
    expect(new Set(alphabet).size).toBe(256);
    expect(alphabet[65]).toBe('A');
    expect(alphabet[32]).toBe('Ġ'); // GPT-2's space symbol
    expect(Object.keys(j.model.vocab)).toHaveLength(256);
    for (let b = 0; b < 256; b++) expect(j.model.vocab[alphabet[b]!]).toBe(b);
    expect(j.model.merges).toEqual([]);
    expect(j.added_tokens[0]!.id).toBe(256);
  });
});
