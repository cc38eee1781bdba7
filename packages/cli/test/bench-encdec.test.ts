/** `strata bench --suite encdec-smoke`: the encoder-decoder rows of the 500L-500L suite, at 1L-1L. */
import { describe, expect, it } from 'vitest';
import { type BenchReport, type BenchRow, SUITES } from '../src/commands/bench.js';
import { jsonLines, strataRun } from './helpers.js';

describe('strata bench: encoder-decoder suites', () => {
  it('encdec1000 is DeepNet’s 500L-500L shape and encdec-smoke the same at 1L-1L', () => {
    const big = SUITES.encdec1000!;
    const smoke = SUITES['encdec-smoke']!;
    expect([big.family, big.nLayers, big.nDecoderLayers, big.dModel, big.dFF]).toEqual([
      'encdec',
      500,
      500,
      32,
      64,
    ]);
    expect(big.norm.name).toBe('deepnorm');
    const { name: _a, nLayers: _b, nDecoderLayers: _c, ...rest } = big;
    const { name: _d, nLayers: e, nDecoderLayers: f, ...restSmoke } = smoke;
    expect(restSmoke).toEqual(rest);
    expect([e, f]).toEqual([1, 1]);
  });

  it('measures s/step and peak memory of a recomputed encoder-decoder (tiny run)', async () => {
    const r = await strataRun([
      'bench',
      '--backends',
      'wasm',
      '--suite',
      'encdec-smoke',
      '--workers',
      '1',
      '--recompute',
      'on',
      '--steps',
      '1',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const rep = jsonLines(r.stdout)[0] as unknown as BenchReport;
    expect(rep.rows.map((x) => [x.config, x.recompute])).toEqual([['encdec-smoke', true]]);
    const row = rep.rows[0] as BenchRow;
    // d 32, FFN 64, vocabulary 276 (bytes + specials), learned positions (32 source + 32 target), biases,
    // DeepNorm's LayerNorm per site; encoder block: qkv, out, MLP, 2 LNs; decoder block: + cross q, kv, out, 3rd LN.
    const d = 32;
    const lin = (i: number, o: number) => i * o + o;
    const enc = lin(d, 3 * d) + lin(d, d) + lin(d, 64) + lin(64, d) + 2 * 2 * d;
    const dec = enc + lin(d, d) + lin(d, 2 * d) + lin(d, d) + 2 * d;
    expect(row.params).toBe(276 * d + 2 * 32 * d + enc + dec);
    expect(row.tokensPerSec * (row.msPerStep / 1000)).toBeCloseTo(8 * (32 + 32), 6);
    expect(row.msPerStep).toBeGreaterThan(0);
    expect(row.peakRssMB).toBeGreaterThan(0);
    expect(row.numTensorsFlat).toBe(true);
  });
});
