/** `strata bench --suite reference,ngpt`: nGPT rows at the reference size and their step-time ratio to GPT. */
import { describe, expect, it } from 'vitest';
import { type BenchReport, type BenchRow, formatReport } from '../src/commands/bench.js';
import { jsonLines, strata } from './helpers.js';

const row = (config: string, workers: number, ms: number, cpu: number, minCpu?: number): BenchRow => ({
  config,
  backend: 'wasm',
  workers,
  kernels: 'strata',
  recompute: false,
  steps: 3,
  msPerStep: ms,
  minMsPerStep: ms,
  cpuMsPerStep: cpu,
  ...(minCpu !== undefined ? { minCpuMsPerStep: minCpu } : {}),
  tokensPerSec: 1,
  gflopsPerSec: 1,
  peakRssMB: 1,
  peakTensorMB: 1,
  numTensorsFlat: true,
  params: 1,
});

describe('strata bench with nGPT', () => {
  it('prints nGPT / GPT step-time ratios per worker count', () => {
    const report: BenchReport = {
      machine: { cpus: 2, cpu: 'x', node: 'v20', tfjs: '4', wasmKernels: 'simd128', loadavg: [0, 0] },
      configs: [],
      rows: [
        row('reference', 1, 100, 90, 80),
        row('ngpt', 1, 150, 117, 96),
        row('reference', 2, 60, 100),
        row('ngpt', 2, 75, 130),
      ],
      pytorch: { status: 'not requested', rows: [] },
      generation: [],
    };
    const text = formatReport(report);
    expect(text).toMatch(/nGPT vs reference GPT/);
    expect(text).toMatch(/min CPU ms\/step ratio/);
    // the smallest CPU time per step, the least load-sensitive ratio; '-' for rows from before it was recorded
    expect(text).toMatch(/ngpt\s+wasm\s+1\s+1\.50×\s+1\.30×\s+1\.20×/);
    expect(text).toMatch(/ngpt\s+wasm\s+2\s+1\.25×\s+1\.30×\s+-/);
  });

  it('measures nGPT at the reference size (tiny run)', () => {
    const r = strata([
      'bench',
      '--backends',
      'wasm',
      '--suite',
      'reference,ngpt',
      '--d-model',
      '32',
      '--layers',
      '1',
      '--heads',
      '2',
      '--context',
      '16',
      '--batch-size',
      '2',
      '--steps',
      '1',
      '--workers',
      '1',
      '--generate',
      '0',
      '--tokenizers',
      'none',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const rep = jsonLines(r.stdout)[0] as unknown as BenchReport;
    expect(rep.rows.map((x) => x.config)).toEqual(['reference', 'ngpt']);
    const [gpt, ngpt] = rep.rows as [BenchRow, BenchRow];
    // nGPT at d 32, 1 layer: untied 256×32 embeddings, SwiGLU 2·32·128 + 128·32, qkv and W_o, scales
    expect(ngpt.params).toBe(
      2 * 256 * 32 + 3 * 32 * 32 + 32 * 32 + 3 * 32 * 128 + 2 * 32 + 2 * 128 + 32 + 256,
    );
    expect(gpt.params).not.toBe(ngpt.params);
    expect(ngpt.numTensorsFlat).toBe(true);
    expect(ngpt.minCpuMsPerStep).toBeGreaterThan(0);
    expect(ngpt.minCpuMsPerStep).toBeLessThanOrEqual(ngpt.cpuMsPerStep);
  });
});
