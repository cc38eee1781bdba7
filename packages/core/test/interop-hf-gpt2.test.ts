import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeSafetensors,
  defineNorm,
  encodeSafetensors,
  type GPTConfig,
  initBackend,
  type LanguageModel,
  registerNorm,
  type SafetensorsTensor,
  StrataError,
} from '../src/index.js';
import {
  exportHFGPT2,
  fromHFGPT2Config,
  hfGPT2Layout,
  importHFGPT2,
  toHFGPT2Config,
} from '../src/interop/hf-gpt2.js';
import { logitsOf, tinyGPT } from './helpers.js';
import { hfGPT2Reference, type Mat, type RefConfig } from './reference-gpt2.js';

const tmp = mkdtempSync(join(tmpdir(), 'strata-hf-gpt2-'));
let dirCount = 0;
const freshDir = () => join(tmp, `m${dirCount++}`);

beforeAll(async () => {
  await initBackend('cpu');
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Deterministic pseudo-random floats (an LCG), independent of Strata's RNG. */
function randoms(n: number, seed: number, scale: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32 - 0.5) * 2 * scale;
  }
  return out;
}

/** A tiny GPT-2-shaped model whose every parameter (norms included) holds non-trivial values. */
function gpt2Shaped(overrides: Record<string, unknown> = {}, seed = 3): LanguageModel {
  const m = tinyGPT(
    { vocabSize: 17, dModel: 16, nHeads: 4, nLayers: 2, contextLength: 8, ...overrides },
    seed,
  );
  let k = 0;
  for (const [, v] of m.params.variables()) {
    const t = tf.tensor(randoms(v.size, 1000 + k++, 0.4), v.shape, 'float32');
    v.assign(tf.add(v, t));
    t.dispose();
  }
  return m;
}

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

// -----------------------------------------------------------------------------------------------------
// The Hugging Face GPT-2 layout, written out by hand from `transformers`' GPT2LMHeadModel (Conv1D weights are
// [in, out] = [nx, nf]; nn.Embedding is [num, dim]; nn.Linear is [out, in]); `save_pretrained` prefixes the
// base model with `transformer.` and leaves out the tied `lm_head.weight`.
function documentedLayout(V: number, T: number, d: number, F: number, L: number, tied: boolean) {
  const rows: [string, number[]][] = [
    ['transformer.wte.weight', [V, d]],
    ['transformer.wpe.weight', [T, d]],
  ];
  for (let i = 0; i < L; i++) {
    rows.push(
      [`transformer.h.${i}.ln_1.weight`, [d]],
      [`transformer.h.${i}.ln_1.bias`, [d]],
      [`transformer.h.${i}.attn.c_attn.weight`, [d, 3 * d]],
      [`transformer.h.${i}.attn.c_attn.bias`, [3 * d]],
      [`transformer.h.${i}.attn.c_proj.weight`, [d, d]],
      [`transformer.h.${i}.attn.c_proj.bias`, [d]],
      [`transformer.h.${i}.ln_2.weight`, [d]],
      [`transformer.h.${i}.ln_2.bias`, [d]],
      [`transformer.h.${i}.mlp.c_fc.weight`, [d, F]],
      [`transformer.h.${i}.mlp.c_fc.bias`, [F]],
      [`transformer.h.${i}.mlp.c_proj.weight`, [F, d]],
      [`transformer.h.${i}.mlp.c_proj.bias`, [d]],
    );
  }
  rows.push(['transformer.ln_f.weight', [d]], ['transformer.ln_f.bias', [d]]);
  if (!tied) rows.push(['lm_head.weight', [V, d]]);
  return new Map(rows);
}

function maxRelErr(got: number[][], ref: number[][]): { err: number; scale: number } {
  let err = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++)
    for (let v = 0; v < ref[i]!.length; v++) {
      err = Math.max(err, Math.abs(got[i]![v]! - ref[i]![v]!));
      scale = Math.max(scale, Math.abs(ref[i]![v]!));
    }
  return { err: err / scale, scale };
}

/** Writes a hand-made Hugging Face GPT-2 directory; returns the tensors by unprefixed name. */
function writeHandMade(
  dir: string,
  c: RefConfig & { T: number },
  opts: { tied: boolean; prefix: boolean; buffers?: boolean; dtype?: 'F32' | 'F16' },
) {
  const byName = new Map<string, Float32Array>();
  const tensors = new Map<string, SafetensorsTensor>();
  let seed = 7;
  for (const [full, shape] of documentedLayout(c.V, c.T, c.d, c.F, c.L, opts.tied)) {
    const short = full.replace(/^transformer\./, '');
    const n = shape.reduce((a, b) => a * b, 1);
    // LayerNorm gains around 1, everything else around 0, all non-trivial.
    let data = randoms(n, seed++, short.includes('ln_') ? 0.3 : 0.5);
    if (/ln_(1|2|f)\.weight$/.test(short)) data = data.map((v) => 1 + v);
    if (opts.dtype === 'F16') {
      // Round to what F16 can hold, so the reference sees the same values as the importer.
      const enc = encodeSafetensors(new Map([['x', { dtype: 'F16', shape, data }]]));
      data = decodeSafetensors(enc).tensors.get('x')!.data as Float32Array;
    }
    byName.set(short, data);
    tensors.set(opts.prefix ? full : short, { dtype: opts.dtype ?? 'F32', shape, data });
  }
  if (opts.buffers) {
    // The causal-mask buffers that old transformers versions saved into the hub's gpt2 files.
    for (let i = 0; i < c.L; i++) {
      const mask = new Uint8Array(c.T * c.T);
      for (let r = 0; r < c.T; r++) for (let k = 0; k <= r; k++) mask[r * c.T + k] = 1;
      tensors.set(`h.${i}.attn.bias`, { dtype: 'U8', shape: [1, 1, c.T, c.T], data: mask });
      tensors.set(`h.${i}.attn.masked_bias`, { dtype: 'F32', shape: [], data: new Float32Array([-1e4]) });
    }
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'model.safetensors'), encodeSafetensors(tensors, { format: 'pt' }));
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({
      architectures: ['GPT2LMHeadModel'],
      model_type: 'gpt2',
      vocab_size: c.V,
      n_positions: c.T,
      n_embd: c.d,
      n_layer: c.L,
      n_head: c.H,
      n_inner: c.F === 4 * c.d ? null : c.F,
      activation_function: 'gelu_new',
      layer_norm_epsilon: c.eps,
      tie_word_embeddings: opts.tied,
      resid_pdrop: 0.1,
      embd_pdrop: 0.1,
      attn_pdrop: 0.1,
    }),
  );
  return byName;
}

describe('Hugging Face GPT-2 layout', () => {
  it('lists the documented names and shapes, tied and untied', () => {
    for (const tied of [true, false]) {
      const m = tinyGPT({ tiedEmbeddings: tied, dFF: 24 });
      const c = m.config as GPTConfig;
      const layout = hfGPT2Layout(c);
      const want = documentedLayout(13, 8, 8, 24, 2, tied);
      expect(layout.map((s) => s.hfName)).toEqual([...want.keys()]);
      for (const s of layout) expect(s.hfShape, s.hfName).toEqual(want.get(s.hfName));
      // Every Strata parameter is covered exactly once, with Strata's shape.
      expect(layout.map((s) => s.strataName).sort()).toEqual(m.params.names().sort());
      for (const s of layout) expect(s.strataShape).toEqual([...m.params.spec(s.strataName).shape]);
      expect(layout.filter((s) => s.transposed).map((s) => s.hfName)).toEqual(tied ? [] : ['lm_head.weight']);
      m.dispose();
    }
  });

  it('writes model.safetensors with exactly the documented tensors, F32, format "pt", and a GPT-2 config.json', async () => {
    for (const tied of [true, false]) {
      const m = gpt2Shaped({ tiedEmbeddings: tied });
      const dir = freshDir();
      const res = await exportHFGPT2(m, dir);
      const file = decodeSafetensors(readFileSync(join(dir, 'model.safetensors')));
      expect(file.metadata).toEqual({ format: 'pt' });
      const want = documentedLayout(17, 8, 16, 64, 2, tied);
      expect([...file.tensors.keys()].sort()).toEqual([...want.keys()].sort());
      for (const [name, t] of file.tensors) {
        expect(t.dtype).toBe('F32');
        expect(t.shape, name).toEqual(want.get(name));
      }
      expect(res.tensors.sort()).toEqual([...want.keys()].sort());
      const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
      expect(cfg).toMatchObject({
        model_type: 'gpt2',
        architectures: ['GPT2LMHeadModel'],
        vocab_size: 17,
        n_positions: 8,
        n_ctx: 8,
        n_embd: 16,
        n_layer: 2,
        n_head: 4,
        n_inner: 64,
        activation_function: 'gelu_new',
        layer_norm_epsilon: 1e-5,
        tie_word_embeddings: tied,
        scale_attn_weights: true,
        scale_attn_by_inverse_layer_idx: false,
        bos_token_id: null,
        eos_token_id: null,
      });
      // Layouts: Conv1D c_attn is Strata's qkv [d, 3d] as is; lm_head is Strata's [d, V] transposed.
      const strata = await m.params.read();
      expect(bits(file.tensors.get('transformer.h.1.attn.c_attn.weight')!.data as Float32Array)).toEqual(
        bits(strata.get('blocks.1.attn.qkv.weight')!),
      );
      if (!tied) {
        const head = file.tensors.get('lm_head.weight')!.data as Float32Array; // [V, d]
        const ours = strata.get('lm_head.weight')!; // [d, V]
        expect(head[3 * 16 + 5]).toBe(ours[5 * 17 + 3]);
      }
      m.dispose();
    }
  });
});

describe('exportHFGPT2 → importHFGPT2', () => {
  it('round-trips bit-identical weights, the same config and identical logits (tied and untied)', async () => {
    for (const tied of [true, false]) {
      const m = gpt2Shaped({ tiedEmbeddings: tied, activation: 'gelu', dropout: 0.05 });
      const dir = freshDir();
      await exportHFGPT2(m, dir);
      const back = await importHFGPT2(dir);
      expect(back.family).toBe('gpt');
      const a = m.config as GPTConfig;
      const b = back.config as GPTConfig;
      for (const k of [
        'vocabSize',
        'contextLength',
        'dModel',
        'nLayers',
        'nHeads',
        'dFF',
        'activation',
        'positions',
        'normKind',
        'normEps',
        'normBias',
        'bias',
        'tiedEmbeddings',
        'initStd',
      ] as const)
        expect(b[k], k).toEqual(a[k]);
      // the export records dropout as *_pdrop; the import drops it (a training setting): dropout 0
      expect(b.dropout).toBe(0);
      expect(b.norm.name).toBe('pre-ln');
      const va = await m.params.read();
      const vb = await back.params.read();
      expect([...vb.keys()].sort()).toEqual([...va.keys()].sort());
      for (const [name, v] of va) expect(bits(vb.get(name)!), name).toEqual(bits(v));
      const ids = [
        [3, 1, 4, 1, 5, 9, 2, 6],
        [0, 16, 8, 8, 2, 7, 1, 1],
      ];
      expect(logitsOf(back, ids)).toEqual(logitsOf(m, ids));
      m.dispose();
      back.dispose();
    }
  });

  it('maps the activation both ways (gelu ↔ gelu_new, gelu_erf ↔ gelu, relu ↔ relu)', async () => {
    for (const [ours, theirs] of [
      ['gelu', 'gelu_new'],
      ['gelu_erf', 'gelu'],
      ['relu', 'relu'],
    ] as const) {
      const m = gpt2Shaped({ activation: ours });
      const dir = freshDir();
      const { config } = await exportHFGPT2(m, dir);
      expect(config.activation_function).toBe(theirs);
      const back = await importHFGPT2(dir);
      expect((back.config as GPTConfig).activation).toBe(ours);
      expect(logitsOf(back, [[1, 2, 3]])).toEqual(logitsOf(m, [[1, 2, 3]]));
      m.dispose();
      back.dispose();
    }
    expect(
      fromHFGPT2Config({ model_type: 'gpt2', activation_function: 'gelu_pytorch_tanh' }).activation,
    ).toBe('gelu');
  });

  it('refuses models that are not GPT-2-shaped, naming every difference', async () => {
    registerNorm(
      defineNorm({
        name: 'test/post-ln',
        version: '1.0.0',
        description: 'Post-LN for this test',
        formula: 'x ← LN(x + G(x))',
        options: {},
        createSite(_ctx, _opts, host) {
          const n = host.norm('norm');
          return { forward: (x, branch) => n(tf.add(x, branch(x as tf.Tensor2D))) as tf.Tensor2D };
        },
      }),
      { override: true },
    );
    const cases: [Record<string, unknown>, RegExp[]][] = [
      [{ positions: 'rope' }, [/positions is "rope"/]],
      [{ activation: 'swiglu' }, [/activation is "swiglu"/]],
      [{ normKind: 'rmsnorm' }, [/normKind is "rmsnorm"/]],
      [{ bias: false }, [/bias is false/]],
      [{ normBias: false }, [/normBias is false/]],
      [{ norm: 'test/post-ln' }, [/norm strategy is "test\/post-ln"/]],
      [
        { positions: 'rope', activation: 'swiglu', normKind: 'rmsnorm', bias: false },
        [/positions is "rope"/, /activation is "swiglu"/, /normKind is "rmsnorm"/, /bias is false/],
      ],
    ];
    for (const [overrides, patterns] of cases) {
      const m = tinyGPT(overrides);
      const dir = freshDir();
      const err = await exportHFGPT2(m, dir).catch((e: unknown) => e);
      expect(err, JSON.stringify(overrides)).toBeInstanceOf(StrataError);
      expect((err as StrataError).code).toBe('E_CONFIG');
      expect((err as Error).message).toMatch(/not GPT-2-shaped/);
      for (const p of patterns) expect((err as Error).message).toMatch(p);
      m.dispose();
    }
    // Another family (e.g. nGPT) is refused by name.
    const fake = { family: 'ngpt', config: { vocabSize: 4, contextLength: 4 } } as unknown as LanguageModel;
    await expect(exportHFGPT2(fake, freshDir())).rejects.toThrow(/model family is "ngpt"/);
    expect(() => toHFGPT2Config(tinyGPT({ positions: 'rope' }).config as GPTConfig)).toThrow(/positions/);
  });
});

describe('importHFGPT2', () => {
  const c = { V: 19, T: 8, d: 16, H: 4, F: 40, L: 2, eps: 1e-5 };
  const ids = [3, 1, 4, 1, 5, 9, 2, 6];

  it('computes the float64 GPT-2 reference on a hand-made save_pretrained directory (tied head)', async () => {
    const dir = freshDir();
    const w = writeHandMade(dir, c, { tied: true, prefix: true });
    const m = await importHFGPT2(dir);
    const ref = hfGPT2Reference((n) => w.get(n)!, c, ids, true);
    const { err, scale } = maxRelErr(logitsOf(m, [ids])[0]!, ref);
    expect(scale).toBeGreaterThan(0.5);
    expect(err).toBeLessThan(2e-5);
    expect((m.config as GPTConfig).tiedEmbeddings).toBe(true);
    expect((m.config as GPTConfig).dFF).toBe(40);
    // resid_pdrop 0.1 is a training setting: an imported model does not train with dropout unless asked
    expect((m.config as GPTConfig).dropout).toBe(0);
    m.dispose();
  });

  it('reads the hub layout too: no transformer. prefix, mask buffers, untied lm_head [V, d], F16 weights', async () => {
    const dir = freshDir();
    const w = writeHandMade(dir, c, { tied: false, prefix: false, buffers: true, dtype: 'F16' });
    const m = await importHFGPT2(dir, { dropout: 0 });
    expect((m.config as GPTConfig).tiedEmbeddings).toBe(false);
    expect((m.config as GPTConfig).dropout).toBe(0);
    const ref = hfGPT2Reference((n) => w.get(n)!, c, ids, false);
    const { err } = maxRelErr(logitsOf(m, [ids])[0]!, ref);
    expect(err).toBeLessThan(2e-5);
    m.dispose();
  });

  it('reads sharded weights (model.safetensors.index.json)', async () => {
    const dir = freshDir();
    writeHandMade(dir, c, { tied: true, prefix: true });
    const whole = decodeSafetensors(readFileSync(join(dir, 'model.safetensors')));
    rmSync(join(dir, 'model.safetensors'));
    const names = [...whole.tensors.keys()];
    const half = Math.ceil(names.length / 2);
    const weightMap: Record<string, string> = {};
    names.forEach((n, i) => {
      weightMap[n] = i < half ? 'model-00001-of-00002.safetensors' : 'model-00002-of-00002.safetensors';
    });
    for (const shard of new Set(Object.values(weightMap))) {
      const part = new Map(
        names.filter((n) => weightMap[n] === shard).map((n) => [n, whole.tensors.get(n)!]),
      );
      writeFileSync(join(dir, shard), encodeSafetensors(part, { format: 'pt' }));
    }
    writeFileSync(
      join(dir, 'model.safetensors.index.json'),
      JSON.stringify({ metadata: {}, weight_map: weightMap }),
    );
    const m = await importHFGPT2(dir);
    const w = new Map(
      [...whole.tensors].map(([k, t]) => [k.replace(/^transformer\./, ''), t.data as Float32Array]),
    );
    const { err } = maxRelErr(
      logitsOf(m, [ids])[0]!,
      hfGPT2Reference((n) => w.get(n)!, c, ids, true),
    );
    expect(err).toBeLessThan(2e-5);
    m.dispose();
  });

  it('fails with messages naming the problem', async () => {
    const base = () => {
      const dir = freshDir();
      writeHandMade(dir, c, { tied: true, prefix: true });
      return dir;
    };
    const editConfig = (dir: string, patch: Record<string, unknown>) => {
      const p = join(dir, 'config.json');
      writeFileSync(p, JSON.stringify({ ...JSON.parse(readFileSync(p, 'utf8')), ...patch }));
    };
    const editWeights = (dir: string, edit: (t: Map<string, SafetensorsTensor>) => void) => {
      const p = join(dir, 'model.safetensors');
      const f = decodeSafetensors(readFileSync(p));
      edit(f.tensors);
      writeFileSync(p, encodeSafetensors(f.tensors, { format: 'pt' }));
    };
    const cases: [(dir: string) => void, RegExp][] = [
      [(d) => editConfig(d, { model_type: 'llama' }), /model_type is "llama"/],
      [(d) => editConfig(d, { activation_function: 'silu' }), /activation_function "silu" is not supported/],
      [(d) => editConfig(d, { scale_attn_by_inverse_layer_idx: true }), /scale_attn_by_inverse_layer_idx/],
      [(d) => editConfig(d, { add_cross_attention: true }), /cross-attention/],
      [(d) => editConfig(d, { n_head: 3 }), /dModel \(16\) must be divisible by model\.nHeads \(3\)/],
      [(d) => editConfig(d, { tie_word_embeddings: false }), /missing tensor\(s\) lm_head\.weight/],
      [
        (d) => editConfig(d, { n_positions: 16 }),
        /"transformer\.wpe\.weight" has shape \[8, 16\].*\[16, 16\]/,
      ],
      [
        (d) => editWeights(d, (t) => t.delete('transformer.h.1.mlp.c_fc.bias')),
        /missing tensor\(s\) transformer\.h\.1\.mlp\.c_fc\.bias/,
      ],
      [
        (d) =>
          editWeights(d, (t) =>
            t.set('transformer.h.0.crossattention.c_attn.weight', {
              dtype: 'F32',
              shape: [1],
              data: new Float32Array(1),
            }),
          ),
        /unexpected tensor\(s\) transformer\.h\.0\.crossattention\.c_attn\.weight/,
      ],
      [
        (d) =>
          editWeights(d, (t) =>
            t.set('transformer.wte.weight', { dtype: 'I32', shape: [19, 16], data: new Int32Array(19 * 16) }),
          ),
        /"transformer\.wte\.weight" is I32/,
      ],
      [(d) => rmSync(join(d, 'model.safetensors')), /no Hugging Face weights/],
      [(d) => rmSync(join(d, 'config.json')), /config\.json is missing/],
    ];
    for (const [breakIt, re] of cases) {
      const dir = base();
      breakIt(dir);
      const err = await importHFGPT2(dir).catch((e: unknown) => e);
      expect(err, String(re)).toBeInstanceOf(StrataError);
      expect((err as Error).message).toMatch(re);
    }
  });
});

// Optional: load the export with PyTorch + transformers when they are importable (they are not in CI).
const python = spawnSync('python3', ['-c', 'import torch, transformers'], { encoding: 'utf8' });
const hasTransformers = python.status === 0;
describe.skipIf(!hasTransformers)('transformers (optional, needs python3 with torch + transformers)', () => {
  it('GPT2LMHeadModel.from_pretrained loads the export and computes the same logits', async () => {
    for (const tied of [true, false]) {
      const m = gpt2Shaped({ tiedEmbeddings: tied });
      const dir = freshDir();
      await exportHFGPT2(m, dir);
      const ids = [3, 1, 4, 1, 5, 9, 2, 6];
      const script = [
        'import json, sys, torch',
        'from transformers import GPT2LMHeadModel',
        'm = GPT2LMHeadModel.from_pretrained(sys.argv[1]).eval()',
        'with torch.no_grad():',
        `    out = m(torch.tensor([${JSON.stringify(ids)}])).logits[0]`,
        'print(json.dumps(out.tolist()))',
      ].join('\n');
      const r = spawnSync('python3', ['-c', script, dir], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const theirs = JSON.parse(r.stdout.trim().split('\n').pop()!) as number[][];
      const { err } = maxRelErr(logitsOf(m, [ids])[0]!, theirs);
      expect(err).toBeLessThan(1e-4);
      m.dispose();
    }
  });
});
