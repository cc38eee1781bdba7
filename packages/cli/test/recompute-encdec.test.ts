/**
 * `strata train --arch encoder-decoder --recompute` (needs `npm run build`): per-block recomputation through
 * both stacks gives the training curve of the plain backward pass (DeepNorm, dropout on, span corruption).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readMetrics } from '@strata/core';
import { afterAll, describe, expect, it } from 'vitest';
import { strataRun } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'strata-recompute-encdec-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('strata train --arch encoder-decoder --recompute', () => {
  it('gives the same losses as without recomputation', async () => {
    const corpus = join(tmp, 'corpus.txt');
    writeFileSync(corpus, 'the quick brown fox jumps over the lazy dog. '.repeat(200));
    const args = [
      'train',
      '--arch',
      'encoder-decoder',
      '--data',
      corpus,
      '--encoder-layers',
      '3',
      '--decoder-layers',
      '2',
      '--d-model',
      '16',
      '--heads',
      '2',
      '--source-length',
      '12',
      '--target-length',
      '8',
      '--batch-size',
      '4',
      '--dropout',
      '0.1',
      '--norm',
      'deepnorm',
      '--steps',
      '4',
      '--eval-every',
      '4',
      '--eval-batches',
      '1',
      '--backend',
      'wasm',
    ];
    const plain = join(tmp, 'plain');
    const rec = join(tmp, 'recompute');
    const a = await strataRun([...args, '--out', plain]);
    expect(a.code, a.stderr).toBe(0);
    const b = await strataRun([...args, '--recompute', '--out', rec]);
    expect(b.code, b.stderr).toBe(0);
    const la = readMetrics(join(plain, 'metrics.jsonl')).filter((m) => typeof m.loss === 'number');
    const lb = readMetrics(join(rec, 'metrics.jsonl')).filter((m) => typeof m.loss === 'number');
    expect(lb).toHaveLength(4);
    for (let i = 0; i < 4; i++)
      expect(Math.abs((lb[i]!.loss as number) - (la[i]!.loss as number))).toBeLessThan(1e-4);
  });
});
