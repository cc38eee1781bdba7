import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { markStalled, type RunSummary, resolveTarget, variantsFromArgs } from '../src/commands/compare.js';
import { strata } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'strata-compare-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const run = (variant: string, seed: number, finalValLoss: number, initialValLoss = 3.45): RunSummary => ({
  variant,
  seed,
  status: 'ok',
  steps: 100,
  initialValLoss,
  finalValLoss,
  finalTrainLoss: finalValLoss,
  stepsToTarget: null,
  secondsToTarget: null,
  msPerStep: 10,
  runDir: '',
});

describe('strata compare', () => {
  it('builds variants from --norms, --models and --variant', () => {
    const v = variantsFromArgs({
      norms: 'post-ln,deepnorm',
      models: 'ngpt',
      variant: ['fast=--norm pre-ln --lr 3e-3 --layers 2'],
    });
    expect(v.map((x) => x.label)).toEqual(['post-ln', 'deepnorm', 'ngpt', 'fast']);
    expect(v[3]!.args).toEqual({ norm: 'pre-ln', lr: 0.003, layers: 2 });
    expect(() => variantsFromArgs({})).toThrow(/at least one variant/);
    expect(() => variantsFromArgs({ norms: 'a,a' })).toThrow(/used twice/);
    expect(() => variantsFromArgs({ variant: ['x=--lr fast'] })).toThrow(/--lr must be a number/);
  });

  it('marks runs stuck near chance as stalled, and resolves --target-from', () => {
    const runs = [run('post-ln', 1, 3.13), run('deepnorm', 1, 0.89), run('pre-ln', 1, 0.9)];
    markStalled(runs, Math.log(32));
    expect(runs.map((r) => r.status)).toEqual(['stalled', 'ok', 'ok']);
    expect(resolveTarget({ 'target-from': 'deepnorm' }, runs)).toBeCloseTo(0.89, 12);
    expect(resolveTarget({ 'target-loss': 1.5 }, runs)).toBe(1.5);
    expect(() => resolveTarget({ 'target-from': 'nope' }, runs)).toThrow(/no finished run/);
  });

  it('trains every variant × seed and writes a report with curves of all runs on one plot', () => {
    const out = join(tmp, 'cmp');
    const r = strata([
      'compare',
      '--norms',
      'post-ln,deepnorm',
      '--seeds',
      '1,2',
      '--data',
      'markov:16',
      '--model-opt',
      'vocabSize=16',
      '--layers',
      '2',
      '--d-model',
      '16',
      '--heads',
      '2',
      '--context',
      '8',
      '--batch-size',
      '8',
      '--steps',
      '12',
      '--eval-every',
      '6',
      '--eval-batches',
      '2',
      '--diagnostics',
      '3',
      '--target-from',
      'deepnorm',
      '--backend',
      'wasm',
      '--out',
      out,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const report = readFileSync(join(out, 'report.md'), 'utf8');
    expect(report).toMatch(/\| post-ln \| 1 \|/);
    expect(report).toMatch(/\| deepnorm \| 2 \|/);
    expect(report).toMatch(/Steps to the target validation loss/);
    for (const f of ['loss.svg', 'val.svg', 'delta-f.svg', 'grad-norms.svg', 'summary.json'])
      expect(existsSync(join(out, f)), f).toBe(true);
    const svg = readFileSync(join(out, 'loss.svg'), 'utf8');
    for (const label of ['post-ln s1', 'post-ln s2', 'deepnorm s1', 'deepnorm s2'])
      expect(svg).toContain(label);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { runs: RunSummary[] };
    expect(summary.runs).toHaveLength(4);
    expect(summary.runs.every((x) => Number.isFinite(x.finalValLoss) && x.deltaF1! > 0)).toBe(true);
  });
});
