import {
  defineNorm,
  getModelFamily,
  getNorm,
  initBackend,
  type LanguageModel,
  type NormContext,
  registerNorm,
} from '@strata/core';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  builtinNorms,
  deepNormBeta,
  deepNormConstants,
  registerBuiltinNorms,
  subLnGamma,
} from '../src/index.js';

beforeAll(async () => {
  await initBackend('cpu');
  registerBuiltinNorms();
});

const D = 64;

function encDec(norm: string, N: number, M: number, extra: Record<string, unknown> = {}): LanguageModel {
  const fam = getModelFamily('encdec');
  return fam.create(
    fam.parseConfig({
      dModel: D,
      nHeads: 4,
      dFF: 128,
      nEncoderLayers: N,
      nDecoderLayers: M,
      sourceLength: 4,
      targetLength: 4,
      norm: { name: norm, options: {} },
      ...extra,
    }),
    { seed: 3 },
  );
}

function encoder(norm: string, N: number): LanguageModel {
  const fam = getModelFamily('encoder');
  return fam.create(
    fam.parseConfig({
      dModel: 16,
      nHeads: 2,
      nLayers: N,
      contextLength: 4,
      norm: { name: norm, options: {} },
    }),
    { seed: 3 },
  );
}

/** A strategy that records the context of every site it is asked to create (Pre-LN otherwise). */
const seen: NormContext[] = [];
const spy = defineNorm({
  name: 'test/context-spy',
  version: '1.0.0',
  description: 'records NormContext',
  options: {},
  createSite(ctx, opts, host) {
    seen.push(ctx);
    return getNorm('pre-ln').createSite(ctx, opts, host);
  },
});

function std(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m += a[i]!;
  m /= a.length;
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - m) ** 2;
  return Math.sqrt(s / a.length);
}

/** Columns `[from, to)` of a `[rows, cols]` row-major matrix. */
function columns(w: Float32Array, rows: number, cols: number, from: number, to: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < rows; r++) for (let c = from; c < to; c++) out.push(w[r * cols + c]!);
  return out;
}

describe('stack context of the new architectures', () => {
  it('every site gets its stack, N and M; DeepNorm fixtures hold per stack', () => {
    registerNorm(spy);
    seen.length = 0;
    encoder('test/context-spy', 8).dispose();
    expect(seen.map((c) => `${c.stack}:${c.site}:${c.layer}`)).toEqual(
      Array.from({ length: 8 }, (_, i) => [`encoder:attn:${i}`, `encoder:mlp:${i}`]).flat(),
    );
    for (const c of seen) {
      expect(c.architecture).toBe('encoder-only');
      const { alpha, beta } = deepNormConstants(c, { alpha: null, beta: null });
      expect(alpha).toBeCloseTo(2, 10);
      expect(beta).toBeCloseTo(0.35355, 5);
    }
    seen.length = 0;
    encDec('test/context-spy', 6, 12).dispose();
    const enc = seen.filter((c) => c.stack === 'encoder');
    const dec = seen.filter((c) => c.stack === 'decoder');
    expect(enc.length).toBe(12);
    expect(dec.map((c) => c.site).slice(0, 3)).toEqual(['attn', 'cross', 'mlp']);
    expect(dec.length).toBe(36);
    for (const c of seen) {
      expect(c.architecture).toBe('encoder-decoder');
      expect([c.encoderLayers, c.decoderLayers]).toEqual([6, 12]);
      expect(c.numLayers).toBe(c.stack === 'encoder' ? 6 : 12);
    }
    for (const c of dec)
      expect(deepNormConstants(c, { alpha: null, beta: null }).alpha).toBeCloseTo(Math.sqrt(6), 10);
    // Encoder of the enc-dec: α_e = 0.81·(N⁴M)^(1/16), β_e = 0.87·(N⁴M)^(-1/16) (paper Fig. 2b).
    const e = deepNormConstants(enc[0]!, { alpha: null, beta: null });
    expect(e.alpha).toBeCloseTo(0.81 * (6 ** 4 * 12) ** (1 / 16), 10);
    expect(e.beta).toBeCloseTo(0.87 * (6 ** 4 * 12) ** (-1 / 16), 10);
  });
});

describe('DeepNorm init on the encoder-decoder', () => {
  it('β_d on the cross-attention v and out, gain 1 on its q and k; β_e on the encoder', async () => {
    const N = 6;
    const M = 6;
    const m = encDec('deepnorm', N, M);
    const w = await m.params.read();
    const xavier = Math.sqrt(2 / (D + D)); // every matrix here is D×D (the k|v halves of cross.kv too)
    const bd = deepNormBeta('encoder-decoder', { encoderLayers: N, decoderLayers: M }, 'decoder');
    const be = deepNormBeta('encoder-decoder', { encoderLayers: N, decoderLayers: M }, 'encoder');
    expect(bd).toBeCloseTo(0.3433, 4);
    expect(be).toBeCloseTo(0.497, 3);
    const pool = (f: (l: number) => number[]) => Array.from({ length: M }, (_, l) => f(l)).flat();
    const crossV = pool((l) => columns(w.get(`decoder.blocks.${l}.cross.kv.weight`)!, D, 2 * D, D, 2 * D));
    const crossK = pool((l) => columns(w.get(`decoder.blocks.${l}.cross.kv.weight`)!, D, 2 * D, 0, D));
    const crossQ = pool((l) => [...w.get(`decoder.blocks.${l}.cross.q.weight`)!]);
    const crossOut = pool((l) => [...w.get(`decoder.blocks.${l}.cross.proj.weight`)!]);
    const encV = pool((l) => columns(w.get(`encoder.blocks.${l}.attn.qkv.weight`)!, D, 3 * D, 2 * D, 3 * D));
    const decV = pool((l) => columns(w.get(`decoder.blocks.${l}.attn.qkv.weight`)!, D, 3 * D, 2 * D, 3 * D));
    // 24,576 samples per group: relative std error ≈ 0.45 %; 3 % tolerance.
    const near = (a: number[], want: number, what: string) =>
      expect(Math.abs(std(a) / want - 1), `${what}: ${std(a)} vs ${want}`).toBeLessThan(0.03);
    near(crossV, bd * xavier, 'cross v');
    near(crossOut, bd * xavier, 'cross out');
    near(crossK, xavier, 'cross k');
    near(crossQ, xavier, 'cross q');
    near(decV, bd * xavier, 'decoder self v');
    near(encV, be * xavier, 'encoder v');
    for (const b of ['q.bias', 'kv.bias', 'proj.bias'])
      expect(std(w.get(`decoder.blocks.0.cross.${b}`)!)).toBe(0);
    // No final norm in either stack.
    expect(m.params.names().filter((n) => n.includes('final'))).toEqual([]);
    m.dispose();
  });
});

describe('SubLN on the encoder-decoder', () => {
  it('cross-attention: outer LN only, weights not up-scaled; γ_d on the decoder self-attention', async () => {
    const m = encDec('subln', 4, 6);
    const names = m.params.names();
    expect(names).toContain('decoder.blocks.0.cross.norm.weight');
    expect(names.some((n) => n.includes('cross.inner_norm'))).toBe(false);
    expect(names).toContain('decoder.blocks.0.attn.inner_norm.weight');
    expect(names).toContain('encoder.final.norm.weight');
    expect(names).toContain('decoder.final.norm.weight');
    const w = await m.params.read();
    const xavier = Math.sqrt(2 / (D + D));
    const gd = subLnGamma('encoder-decoder', { encoderLayers: 4, decoderLayers: 6 }, 'decoder');
    const pool = (f: (l: number) => number[]) => Array.from({ length: 6 }, (_, l) => f(l)).flat();
    const crossV = pool((l) => columns(w.get(`decoder.blocks.${l}.cross.kv.weight`)!, D, 2 * D, D, 2 * D));
    const selfV = pool((l) => columns(w.get(`decoder.blocks.${l}.attn.qkv.weight`)!, D, 3 * D, 2 * D, 3 * D));
    expect(Math.abs(std(crossV) / xavier - 1)).toBeLessThan(0.03);
    expect(Math.abs(std(selfV) / (gd * xavier) - 1)).toBeLessThan(0.03);
    m.dispose();
  });
});

/** The strategies whose papers have no final norm. */
const NO_FINAL = new Set(['post-ln', 'deepnorm', 'rezero', 'admin']);

describe('every built-in strategy on every architecture', () => {
  for (const s of builtinNorms) {
    it(`${s.name}: encoder-only and encoder-decoder build and give finite outputs`, () => {
      const e = encoder(s.name, 3);
      const ed = encDec(s.name, 2, 3, { dModel: 16, dFF: 32 });
      const out = tf.tidy(() => [
        e.forward(tf.tensor2d([[1, 2, 256, 256]], [1, 4], 'int32')).dataSync(),
        ed.forward(tf.tensor2d([[1, 2, 256, 256, 258, 5, 6]], [1, 7], 'int32')).dataSync(),
      ]);
      for (const o of out) expect(o.every(Number.isFinite)).toBe(true);
      // A final norm exactly where the strategy has one, in each stack.
      const hasFinal = !NO_FINAL.has(s.name);
      expect(ed.params.names().some((n) => n.startsWith('encoder.final.'))).toBe(hasFinal);
      expect(ed.params.names().some((n) => n.startsWith('decoder.final.'))).toBe(hasFinal);
      e.dispose();
      ed.dispose();
    });
  }
});
