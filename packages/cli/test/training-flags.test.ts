/**
 * Training settings from the command line: a family's schedule holds under `--lr`, every optimizer setting a
 * config file accepts is a flag, `--grad-accum`, and what a run records about its schedule and (nGPT) its
 * scaling values — in the metrics, in `scales.svg` and in `strata info`.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { learningRateAt, readMetrics } from '@strata/core';
import { NGPT_TRAINING_DEFAULTS } from '@strata/ngpt';
import { afterAll, describe, expect, it } from 'vitest';
import type { ParsedArgs } from '../src/args.js';
import { trainConfigFromArgs } from '../src/run-training.js';
import { jsonLines, strata, TINY_MODEL } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'strata-flags-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const corpusFile = join(tmp, 'corpus.txt');
writeFileSync(corpusFile, 'the quick brown fox jumps over the lazy dog. '.repeat(400));

describe('training flags', () => {
  it('nGPT keeps decaying to 0 under --lr; GPT decays to lr/10; a floor the user sets always wins', () => {
    const ngpt = (args: ParsedArgs) => trainConfigFromArgs(args, NGPT_TRAINING_DEFAULTS, 64);
    expect(ngpt({}).minLr).toBe(0);
    expect(ngpt({ lr: 1e-2 })).toMatchObject({ lr: 1e-2, minLr: 0, warmupSteps: 0, weightDecay: 0 });
    expect(ngpt({ lr: 1e-2, 'min-lr': 1e-4 }).minLr).toBe(1e-4);
    const gpt = (args: ParsedArgs) => trainConfigFromArgs(args, {}, 64);
    expect(gpt({}).minLr).toBeCloseTo(2e-4, 15);
    expect(gpt({ lr: 1e-2 }).minLr).toBeCloseTo(1e-3, 15);
    expect(gpt({ lr: 1e-2, 'min-lr': 0 }).minLr).toBe(0);
    // a family whose floor is not 0 keeps its ratio
    expect(trainConfigFromArgs({ lr: 2e-3 }, { lr: 1e-3, minLr: 5e-4 }, 64).minLr).toBeCloseTo(1e-3, 15);
    // a config file's floor counts as the user's
    const file = join(tmp, 'floor.json');
    writeFileSync(file, JSON.stringify({ training: { minLr: 3e-5 } }));
    expect(ngpt({ lr: 1e-2, config: file }).minLr).toBe(3e-5);
  });

  it('every optimizer setting of a config file is a flag', () => {
    const c = trainConfigFromArgs(
      {
        beta1: 0.8,
        beta2: 0.99,
        eps: 1e-6,
        'weight-decay': 0.05,
        'grad-clip': 0.5,
        'grad-accum': 4,
        'min-lr': 1e-5,
        warmup: 3,
        schedule: 'constant',
      },
      {},
      64,
    );
    expect(c).toMatchObject({
      beta1: 0.8,
      beta2: 0.99,
      eps: 1e-6,
      weightDecay: 0.05,
      gradClip: 0.5,
      gradAccum: 4,
      minLr: 1e-5,
      warmupSteps: 3,
      decay: 'constant',
    });
    expect(() => trainConfigFromArgs({ beta1: 1 }, {}, 64)).toThrow(/train\.beta1/);
    expect(() => trainConfigFromArgs({ 'grad-accum': 0 }, {}, 64)).toThrow(/train\.gradAccum/);
  });

  it('strata train --model ngpt --lr X --grad-accum 2: schedule, scaling values, scales.svg and info', () => {
    const out = join(tmp, 'ngpt');
    const lr = 5e-3;
    const r = strata([
      'train',
      '--model',
      'ngpt',
      '--data',
      corpusFile,
      '--out',
      out,
      '--steps',
      '4',
      '--lr',
      String(lr),
      '--grad-accum',
      '2',
      '--beta1',
      '0.85',
      '--eval-every',
      '2',
      '--json',
      ...TINY_MODEL,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(
      jsonLines(r.stdout).some((l) => String(l.message).startsWith('schedule: lr 0.005 → 0 (cosine')),
    ).toBe(true);
    const metrics = readMetrics(join(out, 'metrics.jsonl'));
    const schedule = metrics.find((m) => m.event === 'schedule')!;
    expect(schedule).toMatchObject({
      lr,
      minLr: 0,
      warmupSteps: 0,
      weightDecay: 0,
      beta1: 0.85,
      gradAccum: 2,
    });
    const steps = metrics.filter((m) => typeof m.loss === 'number');
    expect(steps).toHaveLength(4);
    const sched = { lr, minLr: 0, warmupSteps: 0, totalSteps: 4, decay: 'cosine' as const };
    steps.forEach((m, i) => {
      expect(m.lr as number).toBeCloseTo(learningRateAt(i, sched), 12);
      const sc = m.scales as Record<string, { mean: number; min: number; max: number; count: number }>;
      expect(Object.keys(sc)).toEqual(['alpha_A', 'alpha_M', 's_qk', 's_u', 's_nu', 's_z']);
      for (const v of Object.values(sc)) expect(v.min <= v.mean && v.mean <= v.max).toBe(true);
      expect(sc.s_z!.count).toBe(256);
    });
    // the scales moved away from their init (α 0.05) during training
    const a = (steps[3]!.scales as Record<string, { min: number; max: number }>).alpha_A!;
    expect(a.max - a.min).toBeGreaterThan(1e-4);
    const svg = readFileSync(join(out, 'scales.svg'), 'utf8');
    expect(svg).toMatch(/<svg/);
    for (const k of ['alpha_A', 'alpha_M', 's_qk', 's_u', 's_nu', 's_z']) expect(svg).toContain(k);
    // its data beside it: one row per kind and step (mean, min as lo, max as hi)
    const csv = readFileSync(join(out, 'scales.csv'), 'utf8').trim().split('\n');
    expect(csv).toHaveLength(1 + 6 * 4);
    expect(csv[0]).toBe('variant,x,mean,lo,hi,n');

    const info = strata(['info', '--checkpoint', out, '--backend', 'wasm']);
    expect(info.code, info.stderr).toBe(0);
    expect(info.stdout).toMatch(
      /schedule {4}lr 0\.005 → 0 \(cosine over 4 steps, warmup 0\); AdamW β₁ 0\.85/,
    );
    expect(info.stdout).toMatch(/4 × 2 micro-batches × 16 tokens per step/);
    expect(info.stdout).toMatch(/alpha_A\s+mean\s+[0-9.]+\s+min\s+[0-9.]+\s+max/);
    const infoJson = jsonLines(
      strata(['info', '--checkpoint', out, '--backend', 'wasm', '--json']).stdout,
    )[0]!;
    expect(infoJson.schedule).toMatchObject({ minLr: 0, gradAccum: 2 });
    expect((infoJson.scales as Record<string, unknown>).s_qk).toMatchObject({ count: 64 });
  });

  it('a GPT run has no scaling values and no scales.svg', () => {
    const out = join(tmp, 'gpt');
    const r = strata(['train', '--data', corpusFile, '--out', out, '--steps', '2', '--json', ...TINY_MODEL]);
    expect(r.code, r.stderr).toBe(0);
    expect(readMetrics(join(out, 'metrics.jsonl')).some((m) => m.scales !== undefined)).toBe(false);
    expect(() => readFileSync(join(out, 'scales.svg'))).toThrow();
    const info = strata(['info', '--checkpoint', out, '--backend', 'wasm']);
    // strata train's default learning rate (3e-3), cosine to a tenth
    expect(info.stdout).toMatch(/schedule {4}lr 0\.003 → 0\.0003 \(cosine over 2 steps, warmup 2\)/);
    expect(info.stdout).not.toMatch(/scaling values/);
  });
});
