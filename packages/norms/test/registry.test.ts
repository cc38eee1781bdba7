import { getNorm, listNorms, registerNorm, selectNorm, unregisterNorm } from '@strata/core';
import { describe, expect, it } from 'vitest';
import * as norms from '../src/index.js';

describe('registration', () => {
  it('importing the package registers nothing (sideEffects: false)', () => {
    expect(listNorms().map((s) => s.name)).toEqual(['pre-ln']);
  });

  it('registerBuiltinNorms is explicit and idempotent', () => {
    norms.registerBuiltinNorms();
    norms.registerBuiltinNorms();
    expect(listNorms().map((s) => s.name)).toEqual([
      'admin',
      'deepnorm',
      'layerscale',
      'mix-ln',
      'post-ln',
      'pre-ln',
      'rezero',
      'sandwich-ln',
      'subln',
    ]);
    expect(getNorm('deepnorm')).toBe(norms.deepNorm);
    expect(norms.builtinNorms.map((s) => s.name)).toHaveLength(9);
  });

  it('refuses a different strategy under a built-in name unless overriding', () => {
    const impostor = { ...norms.postLN, description: 'impostor' };
    expect(() => registerNorm(impostor)).toThrow(/already registered/);
    registerNorm(impostor, { override: true });
    expect(() => norms.registerBuiltinNorms()).toThrow(/already registered/);
    norms.registerBuiltinNorms({ override: true });
    expect(getNorm('post-ln')).toBe(norms.postLN);
  });

  it('selects strategies by name with validated options (as the CLI does with strings)', () => {
    const { selection } = selectNorm('deepnorm', { alpha: '2.5', init: 'torchscale', perLayerAlpha: 'true' });
    expect(selection).toEqual({
      name: 'deepnorm',
      version: '1.0.0',
      options: { alpha: 2.5, beta: null, constants: 'deepnet', init: 'torchscale', perLayerAlpha: true },
    });
    expect(() => selectNorm('deepnorm', { alpha: -1 })).toThrow(/alpha.*> 0/);
    expect(() => selectNorm('deepnorm', { init: 'xavier' })).toThrow(/"paper" or "torchscale"/);
    expect(() => selectNorm('deepnorm', { gamma: 1 })).toThrow(/unknown option "gamma"/);
    expect(selectNorm('mix-ln', { fraction: '0.5' }).selection.options).toEqual({
      fraction: 0.5,
      postLayers: null,
    });
    expect(() => selectNorm('mix-ln', { fraction: 2 })).toThrow(/<= 1/);
    expect(selectNorm('admin', { scale: 'O(1)' }).selection.options).toEqual({
      scale: 'O(1)',
      omega: null,
      learnable: true,
    });
    expect(selectNorm('layerscale', { init: 'auto' }).selection.options).toEqual({ init: null });
  });

  it('every built-in documents itself', () => {
    for (const s of norms.builtinNorms) {
      expect(s.description.length).toBeGreaterThan(10);
      expect(s.formula).toBeTruthy();
      expect(s.version).toMatch(/^\d+\.\d+\.\d+$/);
    }
    unregisterNorm('post-ln');
    expect(() => getNorm('post-ln')).toThrow(/registered: .*"deepnorm"/);
  });
});
