import { getModelFamily, initBackend, isStrataError, listModelFamilies } from '@strata/core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  NGPT,
  NGPT_DEFAULTS,
  NGPT_TRAINING_DEFAULTS,
  ngptFamily,
  parseNGPTConfig,
  registerNGPT,
} from '../src/index.js';

beforeAll(async () => {
  await initBackend('wasm');
});

function errorOf(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}

describe('parseNGPTConfig', () => {
  it('fills the reference defaults, deriving the d-dependent ones', () => {
    const c = parseNGPTConfig({});
    expect(c).toMatchObject({
      vocabSize: 256,
      contextLength: 128,
      dModel: 128,
      nLayers: 4,
      nHeads: 4,
      dFF: 512,
      ropeBase: 10000,
      alphaInit: 0.05,
      alphaAbs: true,
      sQKInit: 1,
      sUVInit: 1,
      sUVScale: 1,
      sZInit: 1,
      normEps: 1e-12,
    });
    const s = 1 / Math.sqrt(128);
    expect(c.alphaScale).toBeCloseTo(s, 15);
    expect(c.sQKScale).toBeCloseTo(s, 15);
    expect(c.sZScale).toBeCloseTo(s, 15);
    expect(c.nuGain).toBeCloseTo(Math.sqrt(128), 12);
    expect(c.attnScale).toBeCloseTo(Math.sqrt(32), 12);
    expect(Object.keys(c).sort()).toEqual(Object.keys(NGPT_DEFAULTS).sort());
  });

  it('is idempotent and JSON round-trips', () => {
    const c = parseNGPTConfig({ dModel: 64, nHeads: 2, alphaAbs: false });
    expect(parseNGPTConfig(c)).toEqual(c);
    expect(parseNGPTConfig(JSON.parse(JSON.stringify(c)))).toEqual(c);
  });

  it('rejects bad fields with errors naming them', () => {
    const cases: [unknown, RegExp][] = [
      [{ dModel: 30, nHeads: 4 }, /model\.dModel \(30\) must be divisible by model\.nHeads \(4\)/],
      [{ dModel: 12, nHeads: 4 }, /even head dimension.*= 3/],
      [{ vocabSize: 1 }, /model\.vocabSize/],
      [{ nLayers: 1.5 }, /model\.nLayers/],
      [{ dFF: 0 }, /model\.dFF/],
      [{ alphaScale: 0 }, /model\.alphaScale/],
      [{ sZScale: -1 }, /model\.sZScale/],
      [{ alphaAbs: 'yes' }, /model\.alphaAbs must be true or false/],
      [{ ropeBase: 'x' }, /model\.ropeBase/],
      [{ normEps: 1 }, /model\.normEps/],
      [{ alphaInit: Number.NaN }, /model\.alphaInit/],
      [{ tiedEmbeddings: true }, /unknown nGPT model config key "tiedEmbeddings"; valid keys: .*"alphaAbs"/],
      [[], /must be an object/],
    ];
    for (const [raw, re] of cases) {
      const e = errorOf(() => parseNGPTConfig(raw));
      expect(isStrataError(e)).toBe(true);
      expect(e.message).toMatch(re);
    }
  });
});

describe('ngptFamily / registerNGPT', () => {
  it('registers explicitly and idempotently', () => {
    expect(listModelFamilies()).not.toContain('ngpt');
    registerNGPT();
    registerNGPT();
    expect(getModelFamily('ngpt')).toBe(ngptFamily);
    expect(listModelFamilies()).toContain('ngpt');
  });

  it('creates a model through the family', () => {
    const cfg = ngptFamily.parseConfig({ vocabSize: 16, dModel: 8, nHeads: 2, nLayers: 1, contextLength: 4 });
    const m = ngptFamily.create(cfg, { seed: 1 });
    expect(m).toBeInstanceOf(NGPT);
    expect(m.family).toBe('ngpt');
    expect(m.config.vocabSize).toBe(16);
    expect(ngptFamily.name).toBe('ngpt');
    expect(typeof ngptFamily.version).toBe('string');
    m.dispose();
  });

  it('training defaults follow the nGPT recipe', () => {
    expect(NGPT_TRAINING_DEFAULTS).toMatchObject({
      weightDecay: 0,
      warmupSteps: 0,
      beta1: 0.9,
      beta2: 0.95,
      minLr: 0,
      gradClip: 1,
      decay: 'cosine',
    });
  });
});
