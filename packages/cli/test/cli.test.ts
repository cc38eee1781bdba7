import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readMetrics } from '@strata/core';
import { afterAll, describe, expect, it } from 'vitest';
import { jsonLines, strata, strataAsync, TINY_MODEL } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'strata-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const trace = fileURLToPath(new URL('./fixtures/trace-tfjs.mjs', import.meta.url));

/** A tiny but real run: small model, few steps, user-provided text. */
const TINY = [...TINY_MODEL, '--lr', '3e-3', '--warmup', '5'];
const corpusFile = join(tmp, 'corpus.txt');
writeFileSync(corpusFile, 'the quick brown fox jumps over the lazy dog. '.repeat(400));

describe('strata CLI', () => {
  it('--help on every command is served without loading tfjs', () => {
    for (const cmd of [[], ['train'], ['eval'], ['generate'], ['info'], ['norms'], ['bench']]) {
      const r = strata([...cmd, '--help'], { nodeArgs: ['--import', trace] });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/Usage: strata/);
      expect(r.stderr).not.toMatch(/TRACE-LOADED/);
    }
    const sanity = strata(['norms'], { nodeArgs: ['--import', trace] });
    expect(sanity.stderr).toMatch(/TRACE-LOADED/); // the tracer does see tfjs when a command loads it
  });

  it('trains, then evaluates, samples and describes the checkpoint', () => {
    const out = join(tmp, 'run1');
    const r = strata([
      'train',
      '--data',
      corpusFile,
      '--out',
      out,
      '--steps',
      '30',
      '--eval-every',
      '15',
      ...TINY,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const lines = jsonLines(r.stdout);
    const progress = lines.filter((l) => l.event === 'progress');
    expect(progress).toHaveLength(30);
    expect(progress[0]).toMatchObject({ step: 1, total: 30 });
    expect(typeof progress[0]!.etaSeconds).toBe('number');
    const metrics = readMetrics(join(out, 'metrics.jsonl'));
    expect(metrics.filter((m) => typeof m.loss === 'number')).toHaveLength(30);
    expect(metrics.every((m) => m.backend === 'wasm')).toBe(true);
    const val = metrics.filter((m) => typeof m.valLoss === 'number').map((m) => m.valLoss as number);
    expect(val[0]).toBeGreaterThan(5);
    expect(val[val.length - 1]).toBeLessThan(3.5);
    expect(readFileSync(join(out, 'loss.svg'), 'utf8')).toMatch(/<svg/);

    const ev = strata(['eval', '--checkpoint', out, '--json', '--batch-size', '4']);
    expect(ev.code, ev.stderr).toBe(0);
    const e = jsonLines(ev.stdout)[0]!;
    expect(e.loss as number).toBeCloseTo(val[val.length - 1]!, 1);
    expect(e.perplexity as number).toBeCloseTo(Math.exp(e.loss as number), 6);

    const g1 = strata([
      'generate',
      '--checkpoint',
      out,
      '--prompt',
      'the quick',
      '--max-tokens',
      '40',
      '--seed',
      '3',
      '--json',
    ]);
    const g2 = strata([
      'generate',
      '--checkpoint',
      out,
      '--prompt',
      'the quick',
      '--max-tokens',
      '40',
      '--seed',
      '3',
      '--json',
    ]);
    expect(g1.code, g1.stderr).toBe(0);
    const c1 = jsonLines(g1.stdout)[0]!;
    expect(c1.tokens).toBe(40);
    expect(jsonLines(g2.stdout)[0]!.completion).toBe(c1.completion);
    const greedy = strata([
      'generate',
      '--checkpoint',
      out,
      '--prompt',
      'the quick brown',
      '--max-tokens',
      '10',
      '--temperature',
      '0',
    ]);
    expect(greedy.stdout.startsWith('the quick brown')).toBe(true);

    const info = strata(['info', '--checkpoint', out]);
    expect(info.code, info.stderr).toBe(0);
    expect(info.stdout).toMatch(/GPT: 2 layers, d_model 32, 2 heads/);
    expect(info.stdout).toMatch(/tok_emb\s+8,192/);
    expect(info.stdout).toMatch(/training\s+step 30\/30/);
    expect(info.stdout).toMatch(/backend\s+wasm/);
  });

  it('an interrupted run (SIGINT) saves a checkpoint and --resume matches an uninterrupted run', async () => {
    const common = [
      '--data',
      corpusFile,
      '--steps',
      '150',
      '--eval-every',
      '50',
      '--checkpoint-every',
      '0',
      '--dropout',
      '0.1',
      ...TINY,
    ];
    const full = join(tmp, 'full');
    expect(strata(['train', '--out', full, ...common]).code).toBe(0);

    const part = join(tmp, 'part');
    const child = strataAsync(['train', '--out', part, ...common]);
    let stdout = '';
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (/"step":5,/.test(stdout) && !child.killed) child.kill('SIGINT');
      });
      child.on('exit', (code) => {
        expect(code).toBe(130);
        resolve();
      });
    });
    const saved = JSON.parse(readFileSync(join(part, 'checkpoint', 'state.json'), 'utf8')) as {
      step: number;
    };
    expect(saved.step).toBeGreaterThanOrEqual(5);
    expect(saved.step).toBeLessThan(150);
    const resumed = strata(['train', '--resume', part]);
    expect(resumed.code, resumed.stderr).toBe(0);
    const a = readMetrics(join(full, 'metrics.jsonl')).filter((m) => typeof m.loss === 'number');
    const b = readMetrics(join(part, 'metrics.jsonl')).filter((m) => typeof m.loss === 'number');
    expect(b.map((m) => m.step)).toEqual(a.map((m) => m.step));
    expect(b.map((m) => m.loss)).toEqual(a.map((m) => m.loss));
  });

  it('fails with one clear line and a non-zero exit on bad input', () => {
    const empty = join(tmp, 'empty.txt');
    writeFileSync(empty, '');
    const notCkpt = join(tmp, 'not-a-checkpoint');
    mkdirSync(notCkpt, { recursive: true });
    const corrupt = join(tmp, 'corrupt');
    mkdirSync(corrupt, { recursive: true });
    writeFileSync(
      join(corrupt, 'config.json'),
      '{"format":"strata-checkpoint","formatVersion":1,"family":"gpt"',
    );
    writeFileSync(join(corrupt, 'model.safetensors'), 'garbage');
    const cases: [string[], RegExp][] = [
      [['train', '--data', join(tmp, 'missing.txt'), ...TINY], /missing\.txt/],
      [['train', '--data', empty, ...TINY], /empty/],
      [
        ['train', '--d-model', '30', '--heads', '4', '--backend', 'wasm'],
        /dModel \(30\) must be divisible by model\.nHeads \(4\)/,
      ],
      [['train', '--backend', 'tpu'], /--backend must be one of/],
      [['train', '--backend', 'tensorflow', '--data', corpusFile], /@tensorflow\/tfjs-node.*npm install/],
      [
        ['train', '--norm', 'nope', ...TINY],
        /unknown norm strategy "nope"; registered: .*"deepnorm".*"pre-ln"/,
      ],
      [['train', '--steps', 'ten'], /--steps must be an integer/],
      [['train', '--bogus'], /Unknown option '--bogus'/],
      [['eval', '--checkpoint', join(tmp, 'nowhere')], /no such directory/],
      [['eval', '--checkpoint', notCkpt], /neither a checkpoint directory/],
      [['eval', '--checkpoint', corrupt], /config\.json/],
      [['frobnicate'], /unknown command "frobnicate"/],
    ];
    for (const [args, re] of cases) {
      const r = strata(args);
      expect(r.code, `${args.join(' ')}\n${r.stderr}`).not.toBe(0);
      expect(r.stderr, args.join(' ')).toMatch(re);
      expect(r.stderr, args.join(' ')).not.toMatch(/\n\s+at /); // no stack trace
      expect(
        r.stderr
          .trim()
          .split('\n')
          .filter((l) => l.startsWith('error')).length,
      ).toBe(1);
    }
  });

  it('refuses to overwrite an existing run directory without --force', () => {
    const out = join(tmp, 'exists');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'keep.txt'), 'x');
    const r = strata(['train', '--out', out, '--data', corpusFile, ...TINY]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/already exists.*--force/);
    expect(existsSync(join(out, 'keep.txt'))).toBe(true);
  });

  it('--workers 2 (both cores) and --recompute give the same training curve as one worker', () => {
    const args = ['--data', corpusFile, '--steps', '6', '--eval-every', '3', '--norm', 'deepnorm', ...TINY];
    const one = join(tmp, 'w1');
    const two = join(tmp, 'w2');
    expect(strata(['train', '--out', one, ...args]).code).toBe(0);
    const r = strata(['train', '--out', two, '--workers', '2', '--recompute', ...args]);
    expect(r.code, r.stderr).toBe(0);
    const a = readMetrics(join(one, 'metrics.jsonl')).filter((m) => typeof m.loss === 'number');
    const b = readMetrics(join(two, 'metrics.jsonl')).filter((m) => typeof m.loss === 'number');
    expect(b).toHaveLength(6);
    // Averaging two half-batch gradients equals the full-batch gradient up to float32 rounding.
    for (let i = 0; i < 6; i++)
      expect(Math.abs((b[i]!.loss as number) - (a[i]!.loss as number))).toBeLessThan(1e-3);
  });

  it('--plugin failures name the real cause: a missing file, an unresolvable package, its own imports', () => {
    const dir = join(tmp, 'plugins');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'needs-dep.mjs'), "import 'no-such-package-xyz';\nexport const x = 1;\n");
    writeFileSync(join(dir, 'syntax.mjs'), 'export const = ;\n');
    writeFileSync(join(dir, 'package.json'), '{"name":"plugin-tests","private":true,"type":"module"}\n');
    const cases: [string, RegExp][] = [
      ['./missing.mjs', /--plugin \.\/missing\.mjs: no such file .*missing\.mjs$/m],
      [
        'acme-no-such-plugin',
        /--plugin acme-no-such-plugin: cannot resolve the package from .*Cannot find module 'acme-no-such-plugin'/,
      ],
      [
        './needs-dep.mjs',
        /--plugin \.\/needs-dep\.mjs: loading .*needs-dep\.mjs failed: Cannot find package 'no-such-package-xyz'/,
      ],
      ['./syntax.mjs', /--plugin \.\/syntax\.mjs: loading .*syntax\.mjs failed: .*(Unexpected|SyntaxError)/],
    ];
    for (const [spec, re] of cases) {
      const r = strata(['norms', '--plugin', spec], { cwd: dir });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr, spec).toMatch(re);
      expect(r.stderr, spec).not.toMatch(/file not found/);
    }
  });

  it('an unknown plugin strategy: the CLI says --plugin, the library says registerNorm', async () => {
    const r = strata(['train', '--norm', 'acme/missing', ...TINY]);
    expect(r.stderr).toMatch(
      /unknown norm strategy "acme\/missing".*\(load the plugin that defines it with --plugin <module>\)$/m,
    );
    const { getNorm } = await import('@strata/core');
    expect(() => getNorm('acme/missing')).toThrow(
      /\(register the plugin that defines it first: registerNorm\(strategy\)\)$/,
    );
    expect(() => getNorm('acme/missing')).not.toThrow(/--plugin/);
  });

  it('train prints a short sample of the model when it ends (and a JSON event with --json)', () => {
    const out = join(tmp, 'sample');
    const args = ['train', '--data', corpusFile, '--out', out, '--steps', '4', '--eval-every', '2', ...TINY];
    const r = strata([...args.filter((a) => a !== '--json')]);
    expect(r.code, r.stderr).toBe(0);
    // stdout is not a terminal here, so it carries JSON lines only (the sample among them).
    expect(jsonLines(r.stdout).find((l) => l.event === 'sample')?.text).toMatch(/^The .{20,}$/s);
    const j = strata([...args, '--force', '--json']);
    const sample = jsonLines(j.stdout).find((l) => l.event === 'sample');
    expect(sample).toMatchObject({ prompt: 'The ' });
    expect((sample!.text as string).length).toBeGreaterThan(40);
  });
});
