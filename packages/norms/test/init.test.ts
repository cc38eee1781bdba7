import { getModelFamily, type InitRequest, initBackend, type LanguageModel } from '@strata/core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  deepNorm,
  deepNormBeta,
  deepNormInit,
  registerBuiltinNorms,
  subLN,
  subLnGamma,
} from '../src/index.js';

// Wide enough for tight statistics: d = 64, dFF = 256, 8 layers → each statistic pools 8 matrices
// (≥ 32,768 samples), so the relative standard error of an empirical std is ≤ 1/√(2·32768) ≈ 0.4 %.
// A 3 % tolerance is > 7 standard errors, yet ≈ 9× smaller than the smallest gap being tested (β vs 1).
const D = 64;
const F = 256;
const N = 8;
const TOL = 0.03;

beforeAll(async () => {
  await initBackend('wasm');
  registerBuiltinNorms();
});

function build(norm: string, options: Record<string, unknown>): LanguageModel {
  const fam = getModelFamily('gpt');
  const cfg = fam.parseConfig({
    vocabSize: 16,
    contextLength: 4,
    dModel: D,
    nHeads: 4,
    nLayers: N,
    dFF: F,
    activation: 'swiglu',
    norm: { name: norm, options },
  });
  return fam.create(cfg, { seed: 5 });
}

type Group = 'q' | 'k' | 'v' | 'attn_out' | 'ffn_in' | 'ffn_gate' | 'ffn_out' | 'qkv_bias' | 'other_bias';

/** Collects the values of each weight group over all layers; q/k/v are column slices of `qkv.weight`. */
async function groups(m: LanguageModel): Promise<Record<Group, number[]>> {
  const out: Record<Group, number[]> = {
    q: [],
    k: [],
    v: [],
    attn_out: [],
    ffn_in: [],
    ffn_gate: [],
    ffn_out: [],
    qkv_bias: [],
    other_bias: [],
  };
  const ws = await m.params.read();
  for (let l = 0; l < N; l++) {
    const qkv = ws.get(`blocks.${l}.attn.qkv.weight`)!;
    for (let r = 0; r < D; r++)
      for (let c = 0; c < 3 * D; c++)
        out[(['q', 'k', 'v'] as const)[Math.floor(c / D)]!].push(qkv[r * 3 * D + c]!);
    out.attn_out.push(...ws.get(`blocks.${l}.attn.proj.weight`)!);
    out.ffn_in.push(...ws.get(`blocks.${l}.mlp.fc.weight`)!);
    out.ffn_gate.push(...ws.get(`blocks.${l}.mlp.gate.weight`)!);
    out.ffn_out.push(...ws.get(`blocks.${l}.mlp.proj.weight`)!);
    out.qkv_bias.push(...ws.get(`blocks.${l}.attn.qkv.bias`)!);
    for (const b of ['attn.proj.bias', 'mlp.fc.bias', 'mlp.gate.bias', 'mlp.proj.bias'])
      out.other_bias.push(...ws.get(`blocks.${l}.${b}`)!);
  }
  return out;
}

function stats(a: number[]): { mean: number; std: number } {
  const mean = a.reduce((s, v) => s + v, 0) / a.length;
  const std = Math.sqrt(a.reduce((s, v) => s + (v - mean) ** 2, 0) / a.length);
  return { mean, std };
}

function expectStd(a: number[], want: number, what: string) {
  const { mean, std } = stats(a);
  expect(Math.abs(std / want - 1), `${what}: std ${std} vs ${want}`).toBeLessThan(TOL);
  expect(Math.abs(mean), `${what}: mean ${mean}`).toBeLessThan((5 * want) / Math.sqrt(a.length));
}

const xavier = (fanIn: number, fanOut: number) => Math.sqrt(2 / (fanIn + fanOut));
const beta = deepNormBeta('decoder-only', { decoderLayers: N });

describe('DeepNorm init (paper): Xavier-normal, gain β on v/out/ffn, gain 1 on q/k, zero biases', () => {
  it('empirical std of each group matches gain·√(2/(fanIn+fanOut))', async () => {
    const m = build('deepnorm', {});
    const g = await groups(m);
    expect(beta).toBeCloseTo(0.35355, 5);
    expectStd(g.q, xavier(D, D), 'q');
    expectStd(g.k, xavier(D, D), 'k');
    expectStd(g.v, beta * xavier(D, D), 'v');
    expectStd(g.attn_out, beta * xavier(D, D), 'attn_out');
    expectStd(g.ffn_in, beta * xavier(D, F), 'ffn_in');
    expectStd(g.ffn_gate, beta * xavier(D, F), 'ffn_gate');
    expectStd(g.ffn_out, beta * xavier(F, D), 'ffn_out');
    expect(g.qkv_bias.every((v) => v === 0) && g.other_bias.every((v) => v === 0)).toBe(true);
    m.dispose();
  });

  it('a pinned β is used instead of the formula', async () => {
    const m = build('deepnorm', { beta: 0.1 });
    const g = await groups(m);
    expectStd(g.v, 0.1 * xavier(D, D), 'v');
    expectStd(g.q, xavier(D, D), 'q');
    m.dispose();
  });
});

describe('DeepNorm init (torchscale): the model’s base init, v/out/ffn weights and biases × β', () => {
  it('scales the GPT base std (0.02; output projections 0.02/√(2N)) by β on v/out/ffn only', async () => {
    const m = build('deepnorm', { init: 'torchscale' });
    const g = await groups(m);
    const proj = 0.02 / Math.sqrt(2 * N);
    expectStd(g.q, 0.02, 'q');
    expectStd(g.k, 0.02, 'k');
    expectStd(g.v, 0.02 * beta, 'v');
    expectStd(g.attn_out, proj * beta, 'attn_out');
    expectStd(g.ffn_in, 0.02 * beta, 'ffn_in');
    expectStd(g.ffn_gate, 0.02 * beta, 'ffn_gate');
    expectStd(g.ffn_out, proj * beta, 'ffn_out');
    m.dispose();
  });

  it('scales biases too (with a non-zero base), and leaves q/k biases and other roles alone', () => {
    const base = { kind: 'normal', std: 0.1 } as const;
    const req = (
      role: InitRequest['role'],
      kind: 'weight' | 'bias',
      slice?: 'q' | 'k' | 'v',
    ): InitRequest => ({
      role,
      kind,
      fanIn: 8,
      fanOut: 8,
      base,
      ...(slice ? { slice } : {}),
    });
    for (const role of ['attn_out', 'ffn_in', 'ffn_gate', 'ffn_out'] as const) {
      expect(deepNormInit(req(role, 'bias'), 0.5, 'torchscale')).toEqual({ kind: 'normal', std: 0.05 });
      expect(deepNormInit(req(role, 'weight'), 0.5, 'torchscale')).toEqual({ kind: 'normal', std: 0.05 });
    }
    expect(deepNormInit(req('qkv', 'bias', 'v'), 0.5, 'torchscale')).toEqual({ kind: 'normal', std: 0.05 });
    expect(deepNormInit(req('qkv', 'bias', 'q'), 0.5, 'torchscale')).toEqual(base);
    expect(deepNormInit(req('qkv', 'weight', 'k'), 0.5, 'torchscale')).toEqual(base);
    expect(deepNormInit(req('head', 'weight'), 0.5, 'torchscale')).toEqual(base);
    // paper mode: zero biases, Xavier gains
    expect(deepNormInit(req('ffn_out', 'bias'), 0.5, 'paper')).toEqual({ kind: 'zeros' });
    expect(deepNormInit(req('qkv', 'weight', 'v'), 0.5, 'paper')).toEqual({
      kind: 'xavier-normal',
      gain: 0.5,
    });
    expect(deepNormInit(req('qkv', 'weight', 'q'), 0.5, 'paper')).toEqual({ kind: 'xavier-normal', gain: 1 });
    expect(deepNormInit(req('tok_embedding', 'weight'), 0.5, 'paper')).toEqual(base);
  });

  it('the strategy hook passes the site’s β', () => {
    const ctx = {
      layer: 0,
      numLayers: 2,
      site: 'mlp',
      dModel: 8,
      dFF: 16,
      normKind: 'layernorm',
      eps: 1e-5,
      architecture: 'decoder-only',
      stack: 'decoder',
      encoderLayers: 0,
      decoderLayers: 2,
    } as const;
    const r: InitRequest = {
      role: 'ffn_in',
      kind: 'weight',
      fanIn: 8,
      fanOut: 16,
      base: { kind: 'normal', std: 0.02 },
    };
    expect(deepNorm.init!(r, ctx, deepNorm.parseOptions({}))).toEqual({ kind: 'xavier-normal', gain: 0.5 });
    expect(deepNorm.init!(r, ctx, deepNorm.parseOptions({ init: 'torchscale' }))).toEqual({
      kind: 'normal',
      std: 0.01,
    });
  });
});

describe('SubLN init: γ = √ln(2N) up-scaling of v/out/ffn', () => {
  it('Xavier-normal with gain γ on v/out/ffn and 1 on q/k', async () => {
    const m = build('subln', {});
    const g = await groups(m);
    const gamma = subLnGamma('decoder-only', { decoderLayers: N });
    expect(gamma).toBeCloseTo(1.6651, 4);
    expectStd(g.q, xavier(D, D), 'q');
    expectStd(g.v, gamma * xavier(D, D), 'v');
    expectStd(g.attn_out, gamma * xavier(D, D), 'attn_out');
    expectStd(g.ffn_out, gamma * xavier(F, D), 'ffn_out');
    // inner norms: width d for attention, dFF for the MLP
    expect(m.params.spec('blocks.0.attn.inner_norm.weight').shape).toEqual([D]);
    expect(m.params.spec('blocks.0.mlp.inner_norm.weight').shape).toEqual([F]);
    expect(subLN.parseOptions({ init: 'base' }).init).toBe('base');
    m.dispose();
  });
});
