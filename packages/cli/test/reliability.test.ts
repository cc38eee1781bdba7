// Issue 15 ("Reliability, round two"): each test reproduces one defect found by a fault tester.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { readMetrics } from '@strata/core';
import { afterAll, describe, expect, it } from 'vitest';
import { escapeControls } from '../src/commands/generate.js';
import { jsonLines, strata, strataAsync, TINY_MODEL } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'strata-rel-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const corpus = join(tmp, 'corpus.txt');
const TEXT = 'a stitch in time saves nine; the early bird catches the worm. '.repeat(300);
writeFileSync(corpus, TEXT);
const TINY = [...TINY_MODEL, '--lr', '3e-3', '--warmup', '5'];
let n = 0;
const fresh = (name: string) => join(tmp, `${name}${++n}`);
const state = (run: string) =>
  JSON.parse(readFileSync(join(run, 'checkpoint', 'state.json'), 'utf8')) as Record<string, unknown>;
const trainingRecord = (run: string) =>
  (
    JSON.parse(readFileSync(join(run, 'checkpoint', 'config.json'), 'utf8')) as {
      training: Record<string, unknown>;
    }
  ).training;
/** A finished tiny run of `steps` steps. */
function trained(steps = 6, extra: string[] = []): string {
  const run = fresh('run');
  const r = strata([
    'train',
    '--data',
    corpus,
    '--out',
    run,
    '--steps',
    String(steps),
    '--checkpoint-every',
    '3',
    ...TINY,
    ...extra,
  ]);
  expect(r.code, r.stderr).toBe(0);
  return run;
}
/** Starts `strata args`, calls `act` once the progress reaches `atStep`, and resolves with the exit code. */
function runUntil(args: string[], atStep: number, act: (child: ReturnType<typeof strataAsync>) => void) {
  const child = strataAsync(args);
  let out = '';
  let acted = false;
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise<{ code: number | null; stderr: string }>((resolve) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const steps = [...out.matchAll(/"step":(\d+),"total"/g)].map((m) => Number(m[1]));
      if (!acted && steps.length && steps[steps.length - 1]! >= atStep) {
        acted = true;
        act(child);
      }
    });
    child.on('exit', (code) => resolve({ code, stderr }));
  });
}

describe('1. one run folder, one process', () => {
  it('a second process on a running folder fails at once naming the holder; SIGTERM saves and exits 143', async () => {
    const run = fresh('locked');
    let second: ReturnType<typeof strata> | undefined;
    let pid = 0;
    const res = await runUntil(
      ['train', '--data', corpus, '--out', run, '--steps', '400', '--checkpoint-every', '0', ...TINY],
      3,
      (child) => {
        pid = child.pid!;
        second = strata(['train', '--resume', run]);
        child.kill('SIGTERM');
      },
    );
    expect(second!.code).toBe(1);
    expect(second!.stderr.trim()).toMatch(
      new RegExp(
        `^error \\[E_LOCKED\\]: --resume ${run} is in use by another strata process \\(pid ${pid} on this machine, "strata train --data .*", since .*\\); wait for it to finish or stop it$`,
      ),
    );
    expect(res.code).toBe(143);
    const step = state(run).step as number;
    expect(step).toBeGreaterThanOrEqual(3);
    // The lock went with the process, and the metrics end at the saved step (nothing lost).
    expect(existsSync(join(run, '.strata.lock'))).toBe(false);
    expect(readMetrics(join(run, 'metrics.jsonl')).at(-1)!.step).toBe(step);
  });

  it('a stale lock (crashed holder) is taken over; grow --out is locked too', () => {
    const run = trained();
    writeFileSync(
      join(run, '.strata.lock'),
      JSON.stringify({
        pid: 99999999,
        host: hostname(),
        startedAt: new Date().toISOString(),
        command: 'strata train',
        nonce: 'x',
      }),
    );
    const r = strata(['train', '--resume', run, '--steps', '8']);
    expect(r.code, r.stderr).toBe(0);
    const out = fresh('grown');
    mkdirSync(out);
    // The test runner is alive: its pid stands for a live strata process holding the folder.
    writeFileSync(
      join(out, '.strata.lock'),
      JSON.stringify({
        pid: process.pid,
        host: hostname(),
        startedAt: new Date().toISOString(),
        command: 'strata grow',
        nonce: 'y',
      }),
    );
    const g = strata(['grow', '--checkpoint', run, '--layers', '4', '--out', out]);
    expect(g.code).toBe(1);
    expect(g.stderr).toMatch(
      new RegExp(
        `^error \\[E_LOCKED\\]: --out ${out} is in use by another strata process \\(pid ${process.pid}`,
      ),
    );
  });
});

describe('2. runs work from any directory', () => {
  it('records the data path absolute and relative; eval and --resume work from another cwd and after a move', () => {
    const home = fresh('home');
    mkdirSync(home);
    writeFileSync(join(home, 'text.txt'), TEXT);
    const r = strata(['train', '--data', 'text.txt', '--out', 'run', '--steps', '4', ...TINY], { cwd: home });
    expect(r.code, r.stderr).toBe(0);
    expect(trainingRecord(join(home, 'run')).data).toEqual({
      kind: 'files',
      path: join(home, 'text.txt'),
      relativePath: join('..', '..', 'text.txt'),
    });
    const elsewhere = strata(['eval', '--checkpoint', join(home, 'run'), '--batch-size', '4'], { cwd: tmp });
    expect(elsewhere.code, elsewhere.stderr).toBe(0);
    // Run and data move together: the relative path finds the data.
    const moved = fresh('moved');
    renameSync(home, moved);
    const resumed = strata(['train', '--resume', join(moved, 'run'), '--steps', '6'], { cwd: tmp });
    expect(resumed.code, resumed.stderr).toBe(0);
    // The data moves alone: a clear error, then --data points the run at it (same fingerprint).
    const elsewhereData = join(tmp, 'text-moved.txt');
    renameSync(join(moved, 'text.txt'), elsewhereData);
    const lost = strata(['train', '--resume', join(moved, 'run'), '--steps', '8']);
    expect(lost.code).toBe(1);
    expect(lost.stderr).toMatch(
      /^error \[E_DATA\]: the training data of .* is gone: tried .*text\.txt.*; pass --data PATH to point the run at the moved data/,
    );
    const wrong = join(tmp, 'other.txt');
    writeFileSync(wrong, TEXT.toUpperCase());
    const mismatch = strata(['train', '--resume', join(moved, 'run'), '--steps', '8', '--data', wrong]);
    expect(mismatch.code).toBe(1);
    expect(mismatch.stderr).toMatch(
      /cannot resume: .*other\.txt is not the data this run was trained on \(fingerprint sha256:/,
    );
    const pointed = strata([
      'train',
      '--resume',
      join(moved, 'run'),
      '--steps',
      '8',
      '--data',
      elsewhereData,
    ]);
    expect(pointed.code, pointed.stderr).toBe(0);
    expect(trainingRecord(join(moved, 'run')).data).toMatchObject({ path: elsewhereData });
  });

  it('finds the data of a record from an older Strata (path as typed, relative to where training ran)', () => {
    const home = fresh('legacy');
    mkdirSync(home);
    writeFileSync(join(home, 'text.txt'), TEXT);
    expect(
      strata(['train', '--data', 'text.txt', '--out', 'run', '--steps', '2', ...TINY], { cwd: home }).code,
    ).toBe(0);
    const file = join(home, 'run', 'checkpoint', 'config.json');
    const config = JSON.parse(readFileSync(file, 'utf8')) as { training: Record<string, unknown> };
    config.training.data = { kind: 'files', path: 'text.txt' };
    writeFileSync(file, JSON.stringify(config));
    const r = strata(['eval', '--checkpoint', join(home, 'run'), '--batch-size', '4'], { cwd: tmp });
    expect(r.code, r.stderr).toBe(0);
  });
});

describe('3. pipes and hang-ups', () => {
  it('a closed stdout pipe (| head) saves a checkpoint, writes the plot and exits 141', async () => {
    const run = fresh('pipe');
    const res = await runUntil(
      ['train', '--data', corpus, '--out', run, '--steps', '400', '--checkpoint-every', '0', ...TINY],
      4,
      (child) => child.stdout.destroy(),
    );
    expect(res.code, res.stderr).toBe(141);
    expect(res.stderr).not.toMatch(/EPIPE|at .*\.js/);
    expect(state(run).step).toBe(readMetrics(join(run, 'metrics.jsonl')).at(-1)!.step);
    expect(readFileSync(join(run, 'loss.svg'), 'utf8')).toMatch(/<svg/);
  });

  it('SIGHUP (a dropped SSH session) saves a checkpoint and exits 129', async () => {
    const run = fresh('hup');
    const res = await runUntil(
      ['train', '--data', corpus, '--out', run, '--steps', '400', '--checkpoint-every', '0', ...TINY],
      3,
      (child) => child.kill('SIGHUP'),
    );
    expect(res.code).toBe(129);
    expect(state(run).step).toBeGreaterThanOrEqual(3);
  });
});

describe('4. --resume honours or refuses every flag', () => {
  it('honours cadence, policies and clipping (recorded for the next resume), refuses the rest', () => {
    const run = trained(4);
    const refused = strata([
      'train',
      '--resume',
      run,
      '--dropout',
      '0.1',
      '--untied',
      '--model',
      'gpt',
      '--warmup',
      '3',
    ]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /^error \[E_CONFIG\]: --resume continues the saved configuration; drop --model, --untied, --dropout, --warmup \(use a new --out/,
    );
    const r = strata([
      'train',
      '--resume',
      run,
      '--steps',
      '8',
      '--on-nonfinite',
      'skip',
      '--checkpoint-every',
      '2',
      '--grad-clip',
      '0.5',
      '--eval-every',
      '2',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/resume: checkpointEvery 3 → 2/);
    expect(r.stderr).toMatch(/resume: onNonFinite stop → skip/);
    expect(trainingRecord(run)).toMatchObject({
      steps: 8,
      onNonFinite: 'skip',
      checkpointEvery: 2,
      gradClip: 0.5,
      evalEvery: 2,
    });
    const val = readMetrics(join(run, 'metrics.jsonl'))
      .filter((m) => typeof m.valLoss === 'number')
      .map((m) => m.step);
    expect(val).toEqual([0, 4, 6, 8]);
  });

  it('extending --steps keeps the schedule by default and says so; --resume-schedule stretch re-fits it', () => {
    const args = ['--lr', '1e-2', '--min-lr', '1e-3', '--warmup', '2', '--schedule', 'cosine'];
    const keep = trained(6, args);
    const r = strata(['train', '--resume', keep, '--steps', '12']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      /resume: steps 6 → 12; learning-rate schedule kept \(cosine over 6 steps, then constant at 1\.00e-3\): lr 1\.00e-3 at step 7 — pass --resume-schedule stretch to stretch it \(stretched: 6\.89e-3\)/,
    );
    const lrs = readMetrics(join(keep, 'metrics.jsonl')).filter(
      (m) => (m.step as number) > 6 && typeof m.lr === 'number',
    );
    expect(lrs.map((m) => m.lr)).toEqual([1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3]);
    const stretch = trained(6, args);
    const s = strata(['train', '--resume', stretch, '--steps', '12', '--resume-schedule', 'stretch']);
    expect(s.code, s.stderr).toBe(0);
    const first = readMetrics(join(stretch, 'metrics.jsonl')).find((m) => m.step === 7)!;
    // Cosine over 12 steps with 2 of warmup, at update 6: 1e-3 + ½·9e-3·(1 + cos(π·4/10)).
    expect(first.lr).toBeCloseTo(1e-3 + 0.5 * 9e-3 * (1 + Math.cos((Math.PI * 4) / 10)), 9);
  });
});

describe('5. the crash-between-renames repair runs from the CLI', () => {
  it('info, eval and --resume restore a checkpoint left as .checkpoint.old-<dead pid>-x', () => {
    const run = trained(4);
    renameSync(join(run, 'checkpoint'), join(run, '.checkpoint.old-999999-x'));
    const info = strata(['info', '--checkpoint', run]);
    expect(info.code, info.stderr).toBe(0);
    renameSync(join(run, 'checkpoint'), join(run, '.checkpoint.old-999999-x'));
    const r = strata(['train', '--resume', run, '--steps', '6']);
    expect(r.code, r.stderr).toBe(0);
  });
});

describe('6, 7. resource limits and unwritable outputs are one-line errors', () => {
  it('refuses a batch that cannot fit the wasm heap, with the estimate and what to change', () => {
    const r = strata(['train', '--data', corpus, '--out', fresh('big'), ...TINY, '--batch-size', '50000']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(
      /^error \[E_MEMORY\]: training would need about [\d.]+ GB \([\d,]+ parameters: .*activations [\d.]+ GB for 50000×16 tokens\) but the wasm backend's heap holds 4\.3 GB; use --batch-size \d+ or less/,
    );
  });

  it('an --out under a file is E_IO in one line (train and grow)', () => {
    const file = join(tmp, 'plain-file');
    writeFileSync(file, 'x');
    const t = strata(['train', '--data', corpus, '--out', join(file, 'run'), ...TINY]);
    expect(t.code).toBe(1);
    expect(t.stderr.trim()).toBe(
      `error [E_IO]: cannot create --out ${join(file, 'run')}: it or a parent of it is a file, not a folder`,
    );
    const g = strata(['grow', '--checkpoint', trained(2), '--layers', '4', '--out', join(file, 'g')]);
    expect(g.code).toBe(1);
    expect(g.stderr.trim()).toMatch(
      /^error \[E_IO\]: cannot create --out .*: it or a parent of it is a file, not a folder$/,
    );
  });
});

describe('8, 11. resume needs a valid, complete run record', () => {
  it('refuses a state.json without step, and one with a non-numeric optimizerStep', () => {
    const run = trained(2);
    const file = join(run, 'checkpoint', 'state.json');
    const good = state(run);
    const { step: _, ...noStep } = good;
    writeFileSync(file, JSON.stringify(noStep));
    const a = strata(['train', '--resume', run, '--steps', '4']);
    expect(a.code).toBe(1);
    expect(a.stderr).toMatch(/does not record state\.json "step"/);
    writeFileSync(file, JSON.stringify({ ...good, optimizerStep: 'x' }));
    const b = strata(['train', '--resume', run, '--steps', '4']);
    expect(b.code).toBe(1);
    expect(b.stderr.trim()).toMatch(
      /^error \[E_CHECKPOINT\]: .*state\.json: "optimizerStep" must be an integer >= 0, got "x"$/,
    );
  });

  it('refuses to resume a checkpoint saved from code without a training record', () => {
    const run = trained(2);
    const file = join(run, 'checkpoint', 'config.json');
    const { training: _, ...config } = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    writeFileSync(file, JSON.stringify(config));
    const r = strata(['train', '--resume', run, '--steps', '4']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^error \[E_CHECKPOINT\]: --resume .*: the checkpoint does not record steps, batchSize, seqLen, lr, minLr, warmupSteps, decay, seed, valFraction, data, which resuming needs/,
    );
  });
});

describe('9. loss explosion', () => {
  /** A run at learning rate 10 without clipping: the loss leaves ln 256 for the hundreds within a few steps. */
  const exploding = (run: string, checkpointEvery: number, warmup: number) =>
    strata(
      ['train', '--data', corpus, '--out', run, '--steps', '60', ...TINY_MODEL]
        .concat(['--checkpoint-every', String(checkpointEvery), '--warmup', String(warmup)])
        .concat(['--lr', '10', '--grad-clip', '0']),
    );

  it('--lr 10 --grad-clip 0 diverges (exit 3) and keeps the last checkpoint whose loss was sane', () => {
    const run = fresh('explode');
    const r = exploding(run, 2, 40);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(
      /error \[E_DIVERGED\]: training diverged at step \d+: the loss exploded \(.*above 11\.09 = 2 × ln 256.*; the last good checkpoint \(step (\d+)\) is /,
    );
    const kept = state(run).step as number;
    const limit = 2 * Math.log(256);
    const losses = readMetrics(join(run, 'metrics.jsonl')).filter((m) => typeof m.loss === 'number');
    expect(losses.find((m) => m.step === kept)!.loss as number).toBeLessThan(limit);
    expect(losses.some((m) => (m.loss as number) > limit && (m.step as number) > kept)).toBe(true);
    expect(readMetrics(join(run, 'metrics.jsonl')).some((m) => m.event === 'checkpoint-skipped')).toBe(true);
  });

  it('a run that diverges before its first checkpoint prints no checkpoint path', () => {
    const r = exploding(fresh('early'), 50, 0);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/; no checkpoint was written\ncheckpoint: none written\n/);
  });
});

describe('10. smaller defects', () => {
  it('generate: a negative --max-tokens is a usage error (exit 2); control bytes are escaped for terminals', () => {
    const r = strata(['generate', '--checkpoint', tmp, '--max-tokens=-1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('error: --max-tokens must be at least 0, got -1\n');
    expect(escapeControls('ok\n\tgo\x1b[2J\x07\x9b\r')).toBe('ok\n\tgo\\x1b[2J\\x07\\x9b\\x0d');
  });

  it('an unknown tokenizer kind in config.json is an error, not silently bytes', () => {
    const run = trained(2);
    const file = join(run, 'checkpoint', 'config.json');
    const config = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    writeFileSync(file, JSON.stringify({ ...config, tokenizer: { kind: 'bpe' } }));
    const r = strata(['generate', '--checkpoint', run, '--max-tokens', '3']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/config\.json: unknown tokenizer kind "bpe"; valid kinds: "byte"/);
  });

  it('eval notes that the data changed since training', () => {
    const data = join(tmp, 'changing.txt');
    writeFileSync(data, TEXT);
    const run = fresh('changing');
    expect(strata(['train', '--data', data, '--out', run, '--steps', '2', ...TINY]).code).toBe(0);
    writeFileSync(data, `${TEXT}and then some more text. `);
    const r = strata(['eval', '--checkpoint', run, '--batch-size', '4']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      /^note: the data at .*changing\.txt changed since training \(fingerprint sha256:\w+, trained on sha256:\w+\)/,
    );
  });

  it('a data error is the first line; stdout holds only JSON lines when it is not a terminal', () => {
    const bad = strata(['train', '--data', join(tmp, 'missing.txt'), '--out', fresh('bad'), ...TINY]);
    expect(bad.stderr).toMatch(/^error \[E_DATA\]: data path does not exist/);
    const run = fresh('streams');
    const r = strata(['train', '--data', corpus, '--out', run, '--steps', '3', ...TINY]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(jsonLines(r.stdout)).toHaveLength(lines.length);
    expect(r.stderr).toContain(`checkpoint: ${join(run, 'checkpoint')}`);
  });
});
