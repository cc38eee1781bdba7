import { describe, expect, it } from 'vitest';
import {
  adminOmega,
  adminResidualCount,
  deepNormAdamConstants,
  deepNormAlpha,
  deepNormBeta,
  deepNormConstants,
  layerScaleInit,
  mixLnPostLayers,
  subLnGamma,
} from '../src/index.js';

/** A decoder-only site context of an 8-layer model. */
const ctx = {
  architecture: 'decoder-only',
  stack: 'decoder',
  numLayers: 8,
  encoderLayers: 0,
  decoderLayers: 8,
} as const;

describe('DeepNorm α and β (SPEC §4, deepnorm.md §1.2)', () => {
  it('encoder-only / decoder-only fixtures', () => {
    for (const arch of ['decoder-only', 'encoder-only'] as const) {
      const L = (n: number) => (arch === 'decoder-only' ? { decoderLayers: n } : { encoderLayers: n });
      expect(deepNormAlpha(arch, L(8))).toBeCloseTo(2, 12);
      expect(deepNormBeta(arch, L(8))).toBeCloseTo(0.35355, 5);
      expect(deepNormAlpha(arch, L(2))).toBeCloseTo(Math.SQRT2, 12);
      expect(deepNormBeta(arch, L(2))).toBeCloseTo(0.5, 12);
    }
  });

  it('table of deepnorm.md §1.2 (N = 4 … 500)', () => {
    const table: [number, number, number][] = [
      [4, 1.6818, 0.4204],
      [6, 1.8612, 0.3799],
      [12, 2.2134, 0.3195],
      [24, 2.6321, 0.2686],
      [100, 3.7606, 0.188],
      [500, 5.6234, 0.1257],
    ];
    for (const [n, a, b] of table) {
      expect(deepNormAlpha('decoder-only', { decoderLayers: n })).toBeCloseTo(a, 4);
      expect(deepNormBeta('decoder-only', { decoderLayers: n })).toBeCloseTo(b, 4);
    }
  });

  it('encoder-decoder fixtures, both stacks', () => {
    const table: [number, number, number, number, number][] = [
      // N=M, α_e, β_e (paper), α_d, β_d
      [6, 1.4179, 0.497, 2.0598, 0.3433],
      [12, 1.7609, 0.4002, 2.4495, 0.2887],
      [18, 1.9987, 0.3526, 2.7108, 0.2608],
      [100, 3.4157, 0.2063, 4.1618, 0.1699],
      [500, 5.6482, 0.1248, 6.2233, 0.1136],
    ];
    for (const [n, ae, be, ad, bd] of table) {
      const layers = { encoderLayers: n, decoderLayers: n };
      expect(deepNormAlpha('encoder-decoder', layers, 'encoder')).toBeCloseTo(ae, 4);
      expect(deepNormBeta('encoder-decoder', layers, 'encoder')).toBeCloseTo(be, 4);
      expect(deepNormAlpha('encoder-decoder', layers, 'decoder')).toBeCloseTo(ad, 4);
      expect(deepNormBeta('encoder-decoder', layers, 'decoder')).toBeCloseTo(bd, 4);
    }
    // decoder of an encoder-decoder with M = 12 → α_d = √6; default stack is the decoder
    expect(deepNormAlpha('encoder-decoder', { encoderLayers: 3, decoderLayers: 12 })).toBeCloseTo(
      Math.sqrt(6),
      12,
    );
    // N ≠ M: α_e = 0.81·(N⁴M)^(1/16)
    expect(deepNormAlpha('encoder-decoder', { encoderLayers: 12, decoderLayers: 3 }, 'encoder')).toBeCloseTo(
      0.81 * (12 ** 4 * 3) ** (1 / 16),
      12,
    );
  });

  it('rejects impossible inputs', () => {
    expect(() => deepNormAlpha('decoder-only', { decoderLayers: 0 })).toThrow(/decoderLayers/);
    expect(() => deepNormAlpha('decoder-only', { decoderLayers: 4 }, 'encoder')).toThrow(/no encoder/);
    expect(() => deepNormBeta('encoder-only', { encoderLayers: 2.5 })).toThrow(/integer/);
    expect(() => deepNormBeta('encoder-decoder', { encoderLayers: 2 })).toThrow(/decoderLayers/);
  });

  it('deepNormConstants uses the created depth unless α/β are pinned', () => {
    expect(deepNormConstants(ctx, { alpha: null, beta: null })).toEqual({ alpha: 2, beta: 64 ** -0.25 });
    expect(deepNormConstants(ctx, { alpha: 1.5, beta: 0.25 })).toEqual({ alpha: 1.5, beta: 0.25 });
    // a context that only gives numLayers falls back to it
    expect(deepNormConstants({ ...ctx, decoderLayers: 0 }, { alpha: null, beta: null }).alpha).toBeCloseTo(
      2,
      12,
    );
  });
});

describe('DeepNorm Adam constants (Su Jianlin; GLM-130B)', () => {
  it('α = (2N)^½, β = (2N)^-½: N=8 → 4, 0.25; N=2 → 2, 0.5; N=24 → √48', () => {
    expect(deepNormAdamConstants('decoder-only', { decoderLayers: 8 })).toEqual({ alpha: 4, beta: 0.25 });
    expect(deepNormAdamConstants('encoder-only', { encoderLayers: 2 })).toEqual({ alpha: 2, beta: 0.5 });
    const c = deepNormAdamConstants('decoder-only', { decoderLayers: 24 });
    expect(c.alpha).toBeCloseTo(6.9282, 4);
    expect(c.beta).toBeCloseTo(0.14434, 5);
    expect(() => deepNormAdamConstants('encoder-decoder', { encoderLayers: 2, decoderLayers: 2 })).toThrow(
      /constants=deepnet/,
    );
  });
  it('deepNormConstants follows the constants option, and pinned α/β still win', () => {
    expect(deepNormConstants(ctx, { alpha: null, beta: null, constants: 'adam' })).toEqual({
      alpha: 4,
      beta: 0.25,
    });
    expect(deepNormConstants(ctx, { alpha: 3, beta: null, constants: 'adam' })).toEqual({
      alpha: 3,
      beta: 0.25,
    });
  });
});

describe('other constants', () => {
  it('SubLN γ = √ln(2N) (deepnorm.md §1.2 table) and the encoder-decoder forms', () => {
    expect(subLnGamma('decoder-only', { decoderLayers: 2 })).toBeCloseTo(1.1774, 4);
    expect(subLnGamma('decoder-only', { decoderLayers: 8 })).toBeCloseTo(1.6651, 4);
    expect(subLnGamma('encoder-only', { encoderLayers: 48 })).toBeCloseTo(2.1364, 4);
    expect(subLnGamma('encoder-decoder', { encoderLayers: 6, decoderLayers: 6 }, 'encoder')).toBeCloseTo(
      Math.sqrt((Math.log(18) * Math.log(12)) / 3),
      12,
    );
    expect(subLnGamma('encoder-decoder', { encoderLayers: 6, decoderLayers: 6 }, 'decoder')).toBeCloseTo(
      Math.sqrt(Math.log(18)),
      12,
    );
  });

  it('LayerScale ε by depth (CaiT)', () => {
    expect(layerScaleInit(12)).toBe(0.1);
    expect(layerScaleInit(18)).toBe(0.1);
    expect(layerScaleInit(24)).toBe(1e-5);
    expect(layerScaleInit(36)).toBe(1e-6);
  });

  it('Admin ω (admin-torch calculate_init) and the residual count', () => {
    expect(adminOmega(12)).toBeCloseTo(Math.sqrt(13 / Math.log(13) - 1), 12);
    expect(adminOmega(12, 'O(1)')).toBeCloseTo(Math.sqrt(12), 12);
    expect(adminOmega(12, 'O(n)')).toBe(1);
    const ctx = {
      architecture: 'decoder-only',
      stack: 'decoder',
      numLayers: 6,
      encoderLayers: 0,
      decoderLayers: 6,
    } as const;
    expect(adminResidualCount(ctx)).toBe(12);
    expect(
      adminResidualCount({ ...ctx, architecture: 'encoder-decoder', encoderLayers: 4, decoderLayers: 2 }),
    ).toBe(14);
    expect(
      adminResidualCount({
        ...ctx,
        architecture: 'encoder-decoder',
        stack: 'encoder',
        encoderLayers: 4,
        decoderLayers: 2,
      }),
    ).toBe(8);
  });

  it('Mix-LN Post-LN layer count', () => {
    expect(mixLnPostLayers(12, { fraction: 0.25, postLayers: null })).toBe(3);
    expect(mixLnPostLayers(24, { fraction: 0.25, postLayers: null })).toBe(6);
    expect(mixLnPostLayers(4, { fraction: 0.25, postLayers: 2 })).toBe(2);
    expect(mixLnPostLayers(4, { fraction: 0.25, postLayers: 9 })).toBe(4);
  });
});
