/**
 * `strata compare --arch encoder-decoder` as experiments/encdec-depth.sh runs it, at toy size (needs
 * `npm run build`): Post-LN against DeepNorm on the Brown POS task with diagnostics — each run's metrics carry
 * the task's metrics (token accuracy, exact match) and the per-block diagnostics of both stacks, and the report
 * ranks both arms.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readMetrics } from '@strata/core';
import { afterAll, describe, expect, it } from 'vitest';
import { runDirOf } from '../src/commands/compare.js';
import { strataRun } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'strata-compare-encdec-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('strata compare --arch encoder-decoder (2 runs)', () => {
  it('records task metrics and diagnostics of both stacks for Post-LN and DeepNorm', async () => {
    const out = join(tmp, 'grid');
    const r = await strataRun([
      'compare',
      '--arch',
      'encoder-decoder',
      '--task',
      'pos',
      '--norms',
      'post-ln,deepnorm',
      '--lrs',
      '2e-3',
      '--seeds',
      '1',
      '--extend-grid',
      '0',
      '--encoder-layers',
      '2',
      '--decoder-layers',
      '3',
      '--d-model',
      '16',
      '--heads',
      '2',
      '--d-ff',
      '32',
      '--source-length',
      '24',
      '--target-length',
      '24',
      '--batch-size',
      '4',
      '--warmup',
      '0',
      '--beta2',
      '0.98',
      '--steps',
      '4',
      '--eval-every',
      '2',
      '--eval-batches',
      '1',
      '--diagnostics',
      '2',
      '--backend',
      'wasm',
      '--out',
      out,
    ]);
    expect(r.code, r.stderr).toBe(0);
    for (const arm of ['post-ln', 'deepnorm']) {
      const dir = runDirOf(out, arm, 2e-3, 1);
      const cfg = JSON.parse(readFileSync(join(dir, 'checkpoint', 'config.json'), 'utf8'));
      expect([cfg.family, cfg.model.nEncoderLayers, cfg.model.nDecoderLayers, cfg.model.norm.name]).toEqual([
        'encdec',
        2,
        3,
        arm,
      ]);
      const metrics = readMetrics(join(dir, 'metrics.jsonl'));
      const evals = metrics.filter((m) => typeof m.valLoss === 'number');
      expect(evals.map((m) => m.step)).toEqual([0, 2, 4]);
      for (const e of evals) {
        expect(e.valAccuracy as number).toBeGreaterThanOrEqual(0);
        expect(e.valAccuracy as number).toBeLessThanOrEqual(1);
        expect(typeof e.valExactMatch).toBe('number');
      }
      const diag = metrics.find((m) => m.step === 2 && m.diagnostics)?.diagnostics as
        | { layerGradNorms?: number[] }
        | undefined;
      // One gradient norm per block: 2 encoder + 3 decoder.
      expect(diag?.layerGradNorms).toHaveLength(5);
    }
    const report = readFileSync(join(out, 'report.md'), 'utf8');
    expect(report).toMatch(/\| post-ln \| 2\.00e-3/);
    expect(report).toMatch(/\| deepnorm \| 2\.00e-3/);
    expect(existsSync(join(out, 'compare.json'))).toBe(true);
  });
});
