/**
 * `strata grow --verify` on encoder-only and encoder-decoder checkpoints (needs `npm run build`): the grown
 * checkpoint, loaded back, gives the small checkpoint's logits on inputs with padding (checked here, apart from
 * the command's own report), and a growth without an exact rule is refused by name with nothing written.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, loadCheckpoint } from '@strata/core';
import { registerBuiltinNorms } from '@strata/norms';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { strataRun } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'strata-grow-enc-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const corpus = join(tmp, 'corpus.txt');
writeFileSync(corpus, 'the quick brown fox jumps over the lazy dog. '.repeat(200));
const TINY = ['--d-model', '16', '--heads', '2', '--batch-size', '4', '--eval-batches', '1', '--steps', '3'];
const COMMON = [...TINY, '--data', corpus, '--backend', 'wasm', '--eval-every', '3'];

beforeAll(async () => {
  await initBackend('cpu');
  registerBuiltinNorms();
});

async function logitsOf(dir: string, rows: number[][]): Promise<Float32Array> {
  const { model } = await loadCheckpoint(join(dir, 'checkpoint'));
  const y = model.forward(tf.tensor2d(rows.flat(), [rows.length, rows[0]!.length], 'int32'));
  const d = (await y.data()) as Float32Array;
  y.dispose();
  model.dispose();
  return d;
}

function relDiff(a: Float32Array, b: Float32Array): number {
  expect(b.length).toBe(a.length);
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(a[i]!));
  }
  return d / m;
}

const text = (s: string) => [...Buffer.from(s)];

/** Trains a 1L-1L encoder-decoder (span corruption) with `norm` into `out`; returns `out`. */
async function trainEncDec(norm: string, out: string): Promise<string> {
  const shape = ['--layers', '1', '--source-length', '12', '--target-length', '8', '--norm', norm];
  const t = await strataRun(['train', '--arch', 'encoder-decoder', ...shape, ...COMMON, '--out', out]);
  expect(t.code, t.stderr).toBe(0);
  return out;
}

describe('strata grow on encoder checkpoints', () => {
  it('grows an encoder-only (MLM) checkpoint ×2 in width and depth with --verify', async () => {
    const small = join(tmp, 'enc');
    const t = await strataRun([
      'train',
      '--arch',
      'encoder-only',
      '--layers',
      '2',
      '--context',
      '16',
      ...COMMON,
      '--out',
      small,
    ]);
    expect(t.code, t.stderr).toBe(0);
    const big = join(tmp, 'enc-big');
    const g = await strataRun([
      'grow',
      '--checkpoint',
      small,
      '--out',
      big,
      '--width',
      '2',
      '--depth',
      '2',
      '--verify',
    ]);
    expect(g.code, g.stderr + g.stdout).toBe(0);
    expect(g.stdout).toMatch(/grew encoder\/pre-ln: d_model 16→32.*layers 2→4/);
    expect(g.stdout).toMatch(/random tokens with padded rows \(encoder probe\)/);
    const report = JSON.parse(readFileSync(join(big, 'growth.json'), 'utf8')).report;
    expect(report.exactness).toBe('exact');
    // Independently: text with <pad> (256) tails, through both checkpoints.
    const rows = [text('the lazy dog jum'), [...text('over the fox'), 256, 256, 256, 256]];
    expect(relDiff(await logitsOf(small, rows), await logitsOf(big, rows))).toBeLessThan(1e-5);
  });

  it('grows the decoder of an encoder-decoder (span corruption) and refuses DeepNorm depth by name', async () => {
    const small = await trainEncDec('post-ln', join(tmp, 'ed'));
    const big = join(tmp, 'ed-big');
    const g = await strataRun([
      'grow',
      '--checkpoint',
      small,
      '--out',
      big,
      '--layers',
      '3',
      '--stack',
      'decoder',
      '--ffn',
      '2',
      '--verify',
    ]);
    expect(g.code, g.stderr + g.stdout).toBe(0);
    expect(g.stdout).toMatch(/decoder layers 1→3/);
    const { model } = await loadCheckpoint(join(big, 'checkpoint'));
    expect([model.config.nEncoderLayers, model.config.nDecoderLayers]).toEqual([1, 3]);
    model.dispose();
    // Source with <pad> tail, then <bos> and a decoder prefix.
    const rows = [[...text('a brown fox'), 256, 258, ...text('fox dog')]];
    expect(relDiff(await logitsOf(small, rows), await logitsOf(big, rows))).toBeLessThan(1e-4);

    const dn = await trainEncDec('deepnorm', join(tmp, 'ed-deepnorm'));
    const out = join(tmp, 'ed-deepnorm-big');
    const r = await strataRun(['grow', '--checkpoint', dn, '--out', out, '--depth', '2', '--verify']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(
      /depth growth cannot be exact: DeepNorm in an encoder-decoder .*perLayerAlpha=true/,
    );
    expect(existsSync(join(out, 'checkpoint'))).toBe(false);
  });
});
