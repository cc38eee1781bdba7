import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeSafetensors, encodeSafetensors, Rng, readMetrics } from '@strata/core';
import { afterAll, describe, expect, it } from 'vitest';
import { strata, strataAsync, TINY_MODEL } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'strata-faults-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const corpus = join(tmp, 'corpus.txt');
writeFileSync(corpus, 'a stitch in time saves nine; the early bird catches the worm. '.repeat(300));
const RUN = [
  '--data',
  corpus,
  '--steps',
  '60',
  '--eval-every',
  '20',
  '--checkpoint-every',
  '4',
  '--dropout',
  '0.1',
  ...TINY_MODEL,
];

/** Starts a run and SIGKILLs it once it has logged `atStep` (or when it exits by itself). */
async function killAt(args: string[], atStep: number): Promise<'killed' | 'finished'> {
  const child = strataAsync(args);
  let out = '';
  return new Promise((resolve) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = [...out.matchAll(/"step":(\d+),"total"/g)].map((x) => Number(x[1]));
      if (m.length && m[m.length - 1]! >= atStep && !child.killed) child.kill('SIGKILL');
    });
    child.on('exit', (_code, signal) => resolve(signal === 'SIGKILL' ? 'killed' : 'finished'));
  });
}

describe('fault tolerance', () => {
  it('SIGKILL at random moments never leaves an unloadable checkpoint, and resuming reproduces the uninterrupted run', async () => {
    const full = join(tmp, 'full');
    expect(strata(['train', '--out', full, ...RUN]).code).toBe(0);
    const run = join(tmp, 'killed');
    const rng = new Rng(2024);
    let outcome = await killAt(['train', '--out', run, ...RUN], 3 + rng.int(10));
    let kills = outcome === 'killed' ? 1 : 0;
    for (let attempt = 0; attempt < 8 && outcome === 'killed'; attempt++) {
      if (!existsSync(join(run, 'checkpoint', 'state.json'))) {
        // killed before the first checkpoint: nothing to resume, start over
        outcome = await killAt(['train', '--out', run, '--force', ...RUN], 8 + rng.int(20));
      } else {
        // the last complete checkpoint must always load
        const info = strata(['info', '--checkpoint', run]);
        expect(info.code, info.stderr).toBe(0);
        const step = (
          JSON.parse(readFileSync(join(run, 'checkpoint', 'state.json'), 'utf8')) as { step: number }
        ).step;
        outcome = await killAt(['train', '--resume', run], step + 2 + rng.int(15));
      }
      if (outcome === 'killed') kills++;
    }
    expect(kills).toBeGreaterThanOrEqual(2);
    if (outcome === 'killed') expect(strata(['train', '--resume', run]).code).toBe(0);
    const a = readMetrics(join(full, 'metrics.jsonl')).filter((m) => typeof m.loss === 'number');
    const b = readMetrics(join(run, 'metrics.jsonl')).filter((m) => typeof m.loss === 'number');
    expect(b.map((m) => m.step)).toEqual(a.map((m) => m.step));
    expect(b.map((m) => m.loss)).toEqual(a.map((m) => m.loss));
    const va = readMetrics(join(full, 'metrics.jsonl')).filter((m) => typeof m.valLoss === 'number');
    const vb = readMetrics(join(run, 'metrics.jsonl')).filter((m) => typeof m.valLoss === 'number');
    expect(vb.map((m) => m.valLoss)).toEqual(va.map((m) => m.valLoss));
  });

  it('a diverging run stops with the step and the last good checkpoint, and never overwrites it', () => {
    const run = join(tmp, 'diverge');
    const args = RUN.map((a, i) => (RUN[i - 1] === '--steps' ? '8' : a));
    expect(strata(['train', '--out', run, ...args]).code).toBe(0);
    // Poison the saved weights (as a blown-up step would): every later loss is NaN.
    const file = join(run, 'checkpoint', 'model.safetensors');
    const { tensors, metadata } = decodeSafetensors(readFileSync(file), file);
    const emb = tensors.get('tok_emb.weight')!;
    (emb.data as Float32Array)[0] = Number.NaN;
    writeFileSync(file, encodeSafetensors(tensors, metadata));
    const before = readFileSync(file);
    const r = strata(['train', '--resume', run, '--steps', '12']);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(
      /training diverged at step 9: loss is NaN; the update was not applied; the last good checkpoint \(step 8\) is /,
    );
    expect(readFileSync(file).equals(before)).toBe(true);
    const last = readMetrics(join(run, 'metrics.jsonl')).at(-1)!;
    expect(last).toMatchObject({ step: 9, diverged: true });
  });
});
