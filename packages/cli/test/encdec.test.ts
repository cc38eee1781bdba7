import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readMetrics } from '@strata/core';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, jsonLines } from './helpers.js';

/**
 * Runs `strata args...` without blocking the test worker (a long spawnSync starves vitest's RPC on a
 * loaded machine).
 */
function strata(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, CI: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const tmp = mkdtempSync(join(tmpdir(), 'strata-encdec-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const pairs = join(tmp, 'pairs.tsv');
const words = [
  'the cat',
  'a dog',
  'my hat',
  'his red car',
  'blue sky',
  'an old man',
  'big tree',
  'one two three',
];
writeFileSync(pairs, `${words.map((w) => `${w}\t${w.split(' ').reverse().join(' ')}`).join('\n')}\n`);
const corpus = join(tmp, 'corpus.txt');
writeFileSync(corpus, 'the quick brown fox jumps over the lazy dog. '.repeat(200));

const TINY = ['--d-model', '32', '--layers', '2', '--heads', '2', '--batch-size', '4', '--eval-batches', '2'];
const WASM = ['--backend', 'wasm'];

describe('strata CLI: encoder-decoder and encoder-only', () => {
  it('trains an encoder-decoder on a pairs file; eval, generate --beam and info work on it', async () => {
    const out = join(tmp, 'pairs-run');
    const r = await strata([
      'train',
      '--arch',
      'encoder-decoder',
      '--data',
      pairs,
      '--context',
      '16',
      '--steps',
      '12',
      '--eval-every',
      '6',
      '--out',
      out,
      ...TINY,
      ...WASM,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const evals = readMetrics(join(out, 'metrics.jsonl')).filter((m) => typeof m.valLoss === 'number');
    expect(evals.map((m) => m.step)).toEqual([0, 6, 12]);
    for (const m of evals) {
      expect(typeof m.valAccuracy).toBe('number');
      expect(typeof m.valExactMatch).toBe('number');
    }
    const ev = jsonLines((await strata(['eval', '--checkpoint', out, '--json', ...WASM])).stdout)[0]!;
    expect(ev.task).toBe('pairs');
    expect(ev.examples).toBeGreaterThan(0);
    expect(ev.accuracy as number).toBeGreaterThanOrEqual(0);
    expect(ev.loss).toBeCloseTo(evals[2]!.valLoss as number, 4);
    const g1 = jsonLines(
      (await strata(['generate', '--checkpoint', out, '--prompt', 'the cat', '--json', ...WASM])).stdout,
    )[0]!;
    const g3 = jsonLines(
      (
        await strata([
          'generate',
          '--checkpoint',
          out,
          '--prompt',
          'the cat',
          '--beam',
          '3',
          '--json',
          ...WASM,
        ])
      ).stdout,
    )[0]!;
    expect(g1.beam).toBe(1);
    expect(g3.beam).toBe(3);
    expect(typeof g3.output).toBe('string');
    // Beam search never scores below greedy on the same model.
    if (g1.finished && g3.finished)
      expect(g3.logProb as number).toBeGreaterThanOrEqual((g1.logProb as number) - 1e-4);
    const info = await strata(['info', '--checkpoint', out, ...WASM]);
    expect(info.stdout).toMatch(/encoder: 2 layers \(bidirectional self-attention \+ MLP\)/);
    expect(info.stdout).toMatch(/decoder: 2 layers \(causal self-attention \+ cross-attention \+ MLP\)/);
    expect(info.stdout).toMatch(/decoder\.blocks\.\*\.cross/);
    expect(info.stdout).toMatch(/task pairs/);
    const long = await strata(['generate', '--checkpoint', out, '--prompt', 'x'.repeat(40), ...WASM]);
    expect(long.code).not.toBe(0);
    expect(long.stderr).toMatch(/--prompt has 40 tokens, more than the model's sourceLength 16/);
  });

  it('resuming an encoder-decoder run equals an uninterrupted one (span corruption, DeepNorm)', async () => {
    const common = [
      '--arch',
      'encoder-decoder',
      '--norm',
      'deepnorm',
      '--data',
      corpus,
      '--context',
      '24',
      '--schedule',
      'constant',
      '--warmup',
      '0',
      '--checkpoint-every',
      '0',
      ...TINY,
      ...WASM,
    ];
    const full = join(tmp, 'span-full');
    expect((await strata(['train', ...common, '--steps', '6', '--out', full])).code).toBe(0);
    const part = join(tmp, 'span-part');
    expect((await strata(['train', ...common, '--steps', '3', '--out', part])).code).toBe(0);
    const resumed = await strata(['train', '--resume', part, '--steps', '6', ...WASM]);
    expect(resumed.code, resumed.stderr).toBe(0);
    const loss = (dir: string) =>
      readMetrics(join(dir, 'metrics.jsonl')).filter((m) => typeof m.loss === 'number');
    expect(loss(part).map((m) => m.loss)).toEqual(loss(full).map((m) => m.loss));
    expect(loss(part)).toHaveLength(6);
  });

  it('trains an encoder-only model with masked-LM; eval reports masked accuracy; generate fills <mask>', async () => {
    const out = join(tmp, 'mlm-run');
    const r = await strata([
      'train',
      '--arch',
      'encoder-only',
      '--data',
      corpus,
      '--context',
      '32',
      '--steps',
      '8',
      '--out',
      out,
      ...TINY,
      ...WASM,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const ev = jsonLines((await strata(['eval', '--checkpoint', out, '--json', ...WASM])).stdout)[0]!;
    expect(ev.task).toBe('mlm');
    expect(ev.exactMatch).toBeUndefined();
    expect(ev.tokens as number).toBeLessThan(8 * 32 * 2 * 0.3);
    const g = jsonLines(
      (await strata(['generate', '--checkpoint', out, '--prompt', 'the qu<mask>ck', '--json', ...WASM]))
        .stdout,
    )[0]!;
    expect(g.masks).toBe(1);
    expect((g.output as string).length).toBeGreaterThanOrEqual(8);
    const noMask = await strata(['generate', '--checkpoint', out, '--prompt', 'the', ...WASM]);
    expect(noMask.stderr).toMatch(/put at least one <mask> in --prompt/);
    const beam = await strata([
      'generate',
      '--checkpoint',
      out,
      '--prompt',
      'a<mask>',
      '--beam',
      '2',
      ...WASM,
    ]);
    expect(beam.stderr).toMatch(/--beam applies to encoder-decoder checkpoints/);
  });

  it('bad inputs fail with one clear line', async () => {
    const bad = join(tmp, 'bad.tsv');
    writeFileSync(bad, 'a\tb\nno tab here\n');
    const badJson = join(tmp, 'bad.jsonl');
    writeFileSync(badJson, '{"source": "a", "target": "b"}\n{"source": 3}\n');
    const long = join(tmp, 'long.tsv');
    writeFileSync(long, `short\tok\n${'y'.repeat(30)}\tok\n`);
    const cases: [string[], RegExp][] = [
      [
        ['train', '--arch', 'transformer'],
        /--arch must be one of decoder-only, encoder-only, encoder-decoder/,
      ],
      [
        ['train', '--arch', 'encoder-decoder', '--data', bad, ...WASM],
        /bad\.tsv:2: expected 2 tab-separated columns/,
      ],
      [
        ['train', '--arch', 'encoder-decoder', '--data', badJson, ...WASM],
        /bad\.jsonl:2: expected an object with string fields "source" and "target"/,
      ],
      [
        ['train', '--arch', 'encoder-decoder', '--data', long, '--context', '16', ...WASM],
        /pair 2: the source has 30 tokens, more than the model's sourceLength 16/,
      ],
      [['train', '--arch', 'encoder-only', '--task', 'span'], /--task span needs --arch encoder-decoder/],
      [['train', '--task', 'mlm'], /--task applies to --arch encoder-only and encoder-decoder/],
      [
        ['train', '--arch', 'encoder-decoder', '--task', 'pairs'],
        /--task pairs needs --data FILE\.tsv or FILE\.jsonl/,
      ],
      [['train', '--arch', 'encoder-only', '--model', 'ngpt'], /--model ngpt is a decoder-only family/],
      [['train', '--encoder-layers', '3'], /--encoder-layers applies to --arch encoder-decoder only/],
    ];
    for (const [args, re] of cases) {
      const r = await strata([...args, '--out', join(tmp, 'never')]);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr.trim().split('\n').pop(), args.join(' ')).toMatch(re);
    }
  });
});
