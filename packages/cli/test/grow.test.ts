/**
 * `strata grow`, run through its command function (the CLI's `specs.ts`/`main.ts` entries are added
 * separately): grow a trained checkpoint, check the written checkpoint reproduces the small model, resume
 * training from it, and fail `--verify` when the tolerance is exceeded.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCheckpoint, readCheckpoint, readMetrics } from '@strata/core';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseCommandArgs } from '../src/args.js';
import { run as grow, growSpec } from '../src/commands/grow.js';
import { run as info } from '../src/commands/info.js';
import { run as train } from '../src/commands/train.js';
import { infoSpec, trainSpec } from '../src/specs.js';

const tmp = mkdtempSync(join(tmpdir(), 'strata-grow-'));
const corpus = join(tmp, 'corpus.txt');
const small = join(tmp, 'small');
writeFileSync(corpus, 'the quick brown fox jumps over the lazy dog. '.repeat(300));
const BACKEND = ['--backend', 'wasm'];

const quiet = () => {
  const out: string[] = [];
  const a = vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
    out.push(String(s));
    return true;
  });
  const b = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  return {
    text: () => out.join(''),
    restore: () => {
      a.mockRestore();
      b.mockRestore();
    },
  };
};

async function runCmd(fn: typeof grow, spec: typeof growSpec, argv: string[]) {
  const q = quiet();
  try {
    const code = await fn(parseCommandArgs(spec, argv));
    return { code, out: q.text() };
  } finally {
    q.restore();
  }
}

async function logitsOf(dir: string, ids: number[][]): Promise<Float32Array> {
  const { model } = await loadCheckpoint(dir);
  const y = model.forward(tf.tensor2d(ids.flat(), [ids.length, ids[0]!.length], 'int32'));
  const d = (await y.data()) as Float32Array;
  y.dispose();
  model.dispose();
  return d;
}

beforeAll(async () => {
  const r = await runCmd(train, trainSpec, [
    '--data',
    corpus,
    '--out',
    small,
    '--steps',
    '4',
    '--lr', // the learning-rate checks below are written for 2e-3 (strata train's default is 3e-3)
    '2e-3',
    '--d-model',
    '16',
    '--layers',
    '2',
    '--heads',
    '2',
    '--context',
    '16',
    '--batch-size',
    '2',
    '--eval-every',
    '4',
    '--eval-batches',
    '1',
    '--json',
    ...BACKEND,
  ]);
  expect(r.code).toBe(0);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('strata grow', () => {
  it('writes a grown checkpoint with the same function, grown Adam state and run state', async () => {
    const big = join(tmp, 'big');
    const r = await runCmd(grow, growSpec, [
      '--checkpoint',
      small,
      '--out',
      big,
      '--width',
      '2',
      '--depth',
      '2',
      '--noise',
      '0.01',
      '--verify',
      ...BACKEND,
    ]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/max \|Δlogits\|/);
    expect(r.out).toMatch(/probe loss/);
    expect(r.out).toMatch(/strata train --resume/);
    const data = await readCheckpoint(join(big, 'checkpoint'));
    expect(data.config.model).toMatchObject({ dModel: 32, nHeads: 4, nLayers: 4, dFF: 128 });
    expect(data.state).toMatchObject({ step: 4 });
    expect([...data.optimizer!.keys()].some((k) => k.startsWith('lr_scale.'))).toBe(true);
    expect(data.optimizer!.has('m.blocks.3.mlp.proj.weight')).toBe(true);
    const report = JSON.parse(readFileSync(join(big, 'growth.json'), 'utf8'));
    expect(report.report.transforms.map((t: { name: string }) => t.name)).toEqual([
      'ffn',
      'width',
      'depth',
      'noise',
    ]);
    const ids = [
      [104, 101, 32, 113, 117, 105, 99, 107],
      [116, 104, 101, 32, 108, 97, 122, 121],
    ];
    const a = await logitsOf(join(small, 'checkpoint'), ids);
    const b = await logitsOf(join(big, 'checkpoint'), ids);
    let d = 0;
    for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
    expect(d).toBeLessThan(1e-4);
    // the small run's metrics continue in the grown run directory
    expect(readMetrics(join(big, 'metrics.jsonl')).some((m) => m.event === 'growth')).toBe(true);

    // `strata train --resume BIG --steps 6` continues from step 4
    const t = await runCmd(train, trainSpec, ['--resume', big, '--steps', '6', '--json', ...BACKEND]);
    expect(t.code).toBe(0);
    const after = await readCheckpoint(join(big, 'checkpoint'), { optimizer: false });
    expect(after.state).toMatchObject({ step: 6 });
    const metrics = readMetrics(join(big, 'metrics.jsonl'));
    const losses = metrics.filter((m) => typeof m.loss === 'number');
    expect(losses.map((m) => m.step)).toEqual([1, 2, 3, 4, 5, 6]);
    // a new schedule phase at the growth step: recorded in the metrics, re-warm over the small run's warmup
    // (4 steps: the CLI caps --warmup at --steps), so lr 2e-3·1/4 and ·2/4 instead of the old schedule's end
    expect(metrics.filter((m) => m.event === 'phase')).toEqual([
      expect.objectContaining({
        step: 4,
        phaseStart: 4,
        reason: 'growth',
        warmupSteps: 4,
        lrScaleSteps: 4,
        steps: 6,
      }),
    ]);
    expect(losses[4]!.lr).toBeCloseTo(5e-4, 12);
    expect(losses[5]!.lr).toBeCloseTo(1e-3, 12);
    // the multipliers live for the re-warm: still there at step 6 (weights 1, ¾ so far), shown by `strata info`
    const i1 = await runCmd(info, infoSpec, ['--checkpoint', big, '--json', ...BACKEND]);
    const p1 = JSON.parse(i1.out.trim()).phase;
    expect(p1).toMatchObject({ phaseStart: 4, lrScale: { lifetime: 4 } });
    expect(p1.lrScale.min).toBeLessThan(1);
    const text = (await runCmd(info, infoSpec, ['--checkpoint', big, ...BACKEND])).out;
    expect(text).toMatch(/lr scale +growth multipliers on \d+ tensors, .*return linearly to 1 over 4 steps/);
    // the next resume continues the phase (no second boundary) and drops the multipliers after step 8
    const t2 = await runCmd(train, trainSpec, ['--resume', big, '--steps', '10', '--json', ...BACKEND]);
    expect(t2.code).toBe(0);
    const m2 = readMetrics(join(big, 'metrics.jsonl'));
    expect(m2.filter((m) => m.event === 'phase')).toHaveLength(1);
    expect(m2.find((m) => m.step === 8 && typeof m.lr === 'number')!.lr).toBeCloseTo(2e-3, 12);
    const done = await readCheckpoint(join(big, 'checkpoint'));
    expect([...done.optimizer!.keys()].some((k) => k.startsWith('lr_scale.'))).toBe(false);
    const i2 = JSON.parse(
      (await runCmd(info, infoSpec, ['--checkpoint', big, '--json', ...BACKEND])).out.trim(),
    );
    expect(i2.phase.lrScale).toBeUndefined();
  });

  it('--rewarm, --phase and --lr-scale: validated, and --lr-scale keep keeps the multipliers', async () => {
    const out = join(tmp, 'keep');
    await runCmd(grow, growSpec, ['--checkpoint', small, '--out', out, '--width', '2', '--json', ...BACKEND]);
    await expect(
      runCmd(train, trainSpec, [
        '--resume',
        out,
        '--steps',
        '6',
        '--phase',
        'continue',
        '--rewarm',
        '2',
        ...BACKEND,
      ]),
    ).rejects.toThrow(/--rewarm/);
    await expect(
      runCmd(train, trainSpec, ['--resume', out, '--steps', '6', '--lr-scale', 'soon', ...BACKEND]),
    ).rejects.toThrow(/--lr-scale/);
    await expect(
      runCmd(train, trainSpec, ['--rewarm', '2', '--out', join(tmp, 'x'), ...BACKEND]),
    ).rejects.toThrow(/--resume/);
    const t = await runCmd(train, trainSpec, [
      '--resume',
      out,
      '--steps',
      '8',
      '--rewarm',
      '0',
      '--lr-scale',
      'keep',
      '--json',
      ...BACKEND,
    ]);
    expect(t.code).toBe(0);
    const m = readMetrics(join(out, 'metrics.jsonl')).filter((r) => typeof r.loss === 'number');
    // no re-warm: a fresh cosine from the peak at step 4 (index 4) over the 4 steps left
    expect(m.find((r) => r.step === 5)!.lr).toBeCloseTo(2e-3, 12);
    expect(m.find((r) => r.step === 6)!.lr).toBeCloseTo(
      2e-4 + 0.5 * 1.8e-3 * (1 + Math.cos(Math.PI / 4)),
      12,
    );
    const ck = await readCheckpoint(join(out, 'checkpoint'));
    expect([...ck.optimizer!.keys()].some((k) => k.startsWith('lr_scale.'))).toBe(true);
  });

  it('--resume --phase new --lr: the new phase re-warms to its own peak, the floor keeps the saved ratio', async () => {
    const out = join(tmp, 'newlr');
    await runCmd(grow, growSpec, ['--checkpoint', small, '--out', out, '--width', '2', '--json', ...BACKEND]);
    await expect(
      runCmd(train, trainSpec, [
        '--resume',
        out,
        '--steps',
        '6',
        '--phase',
        'continue',
        '--lr',
        '1e-3',
        ...BACKEND,
      ]),
    ).rejects.toThrow(/--lr sets the schedule of a new phase/);
    const t = await runCmd(train, trainSpec, [
      '--resume',
      out,
      '--steps',
      '8',
      '--rewarm',
      '0',
      '--lr',
      '5e-4',
      '--json',
      ...BACKEND,
    ]);
    expect(t.code).toBe(0);
    const metrics = readMetrics(join(out, 'metrics.jsonl'));
    expect(metrics.find((r) => r.event === 'phase')).toMatchObject({ phaseStart: 4, lr: 5e-4 });
    const m = metrics.filter((r) => typeof r.loss === 'number');
    // saved schedule 2e-3 → 2e-4: the new phase goes 5e-4 → 5e-5 by a fresh cosine over the 4 steps left
    expect(m.find((r) => r.step === 5)!.lr).toBeCloseTo(5e-4, 12);
    expect(m.find((r) => r.step === 6)!.lr).toBeCloseTo(
      5e-5 + 0.5 * 4.5e-4 * (1 + Math.cos(Math.PI / 4)),
      12,
    );
  });

  it('--verify fails and writes nothing when the difference exceeds --tolerance', async () => {
    const out = join(tmp, 'strict');
    await expect(
      runCmd(grow, growSpec, [
        '--checkpoint',
        small,
        '--out',
        out,
        '--width',
        '2',
        '--verify',
        '--tolerance',
        '0',
        ...BACKEND,
      ]),
    ).rejects.toThrow(/exceeds the tolerance/);
    expect(existsSync(join(out, 'checkpoint'))).toBe(false);
  });

  it('refuses a transform that cannot be exact, and an existing --out without --force', async () => {
    await expect(
      runCmd(grow, growSpec, [
        '--checkpoint',
        small,
        '--out',
        join(tmp, 'bad'),
        '--width',
        '1.3',
        ...BACKEND,
      ]),
    ).rejects.toThrow(/whole number/);
    const out = join(tmp, 'big2');
    expect(
      (
        await runCmd(grow, growSpec, [
          '--checkpoint',
          small,
          '--out',
          out,
          '--depth',
          '2',
          '--json',
          ...BACKEND,
        ])
      ).code,
    ).toBe(0);
    await expect(
      runCmd(grow, growSpec, ['--checkpoint', small, '--out', out, '--depth', '2', ...BACKEND]),
    ).rejects.toThrow(/--force/);
    const again = await runCmd(grow, growSpec, [
      '--checkpoint',
      small,
      '--out',
      out,
      '--layers',
      '3',
      '--force',
      '--json',
      ...BACKEND,
    ]);
    expect(again.code).toBe(0);
    const line = JSON.parse(again.out.trim().split('\n').at(-1)!);
    expect(line).toMatchObject({ event: 'grow', ok: true });
    expect(line.report.to.nLayers).toBe(3);
  });

  it('--non-integer chooses the residual construction of a non-integer width (heads 2 → 3)', async () => {
    const args = (out: string, extra: string[]) => [
      '--checkpoint',
      small,
      '--out',
      join(tmp, out),
      '--heads',
      '3',
      '--verify',
      '--json',
      ...extra,
      ...BACKEND,
    ];
    // LayerNorm + Pre-LN: zero-padding is not exact (the LN mean moves), average coordinates are
    await expect(runCmd(grow, growSpec, args('pad', ['--non-integer', 'zero-pad']))).rejects.toThrow(
      /zero-padding/,
    );
    const r = await runCmd(grow, growSpec, args('avg', ['--non-integer', 'average']));
    expect(r.code).toBe(0);
    const line = JSON.parse(r.out.trim().split('\n').at(-1)!);
    expect(line.report.to).toMatchObject({ dModel: 24, nHeads: 3 });
    expect(line.report.transforms.at(-1).description).toMatch(/average coordinates/);
  });
});
