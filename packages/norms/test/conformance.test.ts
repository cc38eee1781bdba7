import { defineNorm, getNorm, initBackend, listNorms, opt } from '@strata/core';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  admin,
  builtinNorms,
  deepNorm,
  mixLN,
  NormConformanceError,
  postLN,
  registerBuiltinNorms,
  runNormConformance,
} from '../src/index.js';

beforeAll(async () => {
  await initBackend('wasm');
});

describe('conformance suite', () => {
  for (const s of builtinNorms) {
    it(`passes for ${s.name}`, async () => {
      const report = await runNormConformance(s);
      expect(report.strategy).toBe(s.name);
      expect(report.checks.length).toBeGreaterThan(10);
    });
  }

  it('passes for option variants (DeepNorm torchscale + per-layer α, Admin fixed ω, Mix-LN all Post-LN)', async () => {
    await runNormConformance(deepNorm, {
      options: { init: 'torchscale', perLayerAlpha: true },
      normKinds: ['layernorm'],
    });
    await runNormConformance(admin, { options: { learnable: false }, normKinds: ['rmsnorm'] });
    await runNormConformance(mixLN, { options: { fraction: 1 }, normKinds: ['layernorm'] });
  });

  it('restores the registry afterwards', async () => {
    // not registered before → not registered after
    expect(listNorms().some((s) => s.name === 'post-ln')).toBe(false);
    await runNormConformance(postLN, { normKinds: ['layernorm'], nLayers: 1 });
    expect(listNorms().some((s) => s.name === 'post-ln')).toBe(false);
    // registered before → the same object afterwards, even when a look-alike was tested
    registerBuiltinNorms();
    const lookAlike = defineNorm({ ...postLN, description: 'a different post-ln' });
    await runNormConformance(lookAlike, { normKinds: ['layernorm'], nLayers: 1 });
    expect(getNorm('post-ln')).toBe(postLN);
  });

  it('fails with a descriptive error for a leaking strategy', async () => {
    const leaky = defineNorm({
      name: 'test/leaky',
      version: '1.0.0',
      description: 'keeps a tensor per forward',
      options: {},
      createSite(_ctx, _opts, host) {
        const ln = host.norm('norm');
        return {
          forward: (x, g) => {
            tf.keep(tf.zeros([1]));
            return tf.add(x, g(ln(x) as tf.Tensor2D));
          },
        };
      },
    });
    await expect(runNormConformance(leaky, { normKinds: ['layernorm'] })).rejects.toThrow(/no tensor leak/);
  });

  it('fails for a strategy whose weight is unused, and for a wrong option schema', async () => {
    const unused = defineNorm({
      name: 'test/unused',
      version: '1.0.0',
      description: 'adds a weight it never uses',
      options: { k: opt.number({ default: 1, description: 'k' }) },
      createSite(_ctx, _opts, host) {
        host.addWeight('dead', [2], { kind: 'ones' });
        const ln = host.norm('norm');
        return { forward: (x, g) => tf.add(x, g(ln(x) as tf.Tensor2D)) };
      },
    });
    const err = await runNormConformance(unused, { normKinds: ['layernorm'] }).catch((e) => e);
    expect(err).toBeInstanceOf(NormConformanceError);
    expect((err as NormConformanceError).check).toBe('gradients present');
    expect(String(err)).toMatch(/blocks\.0\.attn\.dead/);
    await expect(runNormConformance(unused, { options: { k: 'x' } })).rejects.toThrow(/options parse/);
  });
});
