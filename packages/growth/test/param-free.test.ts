/** Growth of models with parameter-free norms (normAffine: false) and the refusal of GAU layers. */
import { initBackend } from '@strata/core';
import { registerBuiltinNorms } from '@strata/norms';
import { beforeAll, describe, expect, it } from 'vitest';
import { growModel } from '../src/index.js';
import { tinyGPT } from './helpers.js';

beforeAll(async () => {
  await initBackend('cpu');
  registerBuiltinNorms();
});

const free = (norm: string, tied: boolean) =>
  tinyGPT({ norm, normKind: 'rmsnorm', tied, extra: { normAffine: false, normEps: 1e-6 } });

describe('parameter-free norms', () => {
  for (const norm of ['pre-ln', 'post-ln'])
    it(`${norm}: width ×2 by the tile map with an untied head is exact (no gain needed)`, async () => {
      const small = await free(norm, false);
      const r = await growModel(small, { width: 2, map: 'tile' });
      expect(r.report.exactness).not.toBe('approx');
      expect(r.report.relDeltaLogits).toBeLessThan(1e-5);
      r.model.dispose();
      small.dispose();
    });

  it('refuses the isometric map, a tied head and a non-integer factor, naming the reason', async () => {
    const untied = await free('pre-ln', false);
    await expect(growModel(untied, { width: 2, map: 'isometric' })).rejects.toThrow(/no gain to divide/);
    await expect(growModel(untied, { width: 1.5 })).rejects.toThrow(/exact only by the tile map/);
    // With allowApprox the isometric map runs and is measurably not exact (the control the refusal guards).
    const approx = await growModel(untied, { width: 2, map: 'isometric', allowApprox: true });
    expect(approx.report.relDeltaLogits).toBeGreaterThan(1e-2);
    approx.model.dispose();
    untied.dispose();
    const tied = await free('pre-ln', true);
    await expect(growModel(tied, { width: 2 })).rejects.toThrow(/tied head/);
    tied.dispose();
  });

  for (const norm of ['pre-ln', 'post-ln'])
    it(`${norm}: depth growth is exact (zero-output blocks; Post-LN has no affine to move)`, async () => {
      const small = await free(norm, true);
      const r = await growModel(small, { depth: 2 });
      expect(r.report.relDeltaLogits).toBeLessThan(1e-5);
      r.model.dispose();
      small.dispose();
    });

  it('refuses GAU layers with a clear message', async () => {
    const gau = await tinyGPT({ norm: 'pre-ln', positions: 'rope', extra: { block: 'gau', gauKeyDim: 4 } });
    await expect(growModel(gau, { width: 2 })).rejects.toThrow(/GAU layers .* not supported/);
    gau.dispose();
  });
});
