import { appendFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MetricsWriter, readMetrics } from '../src/io/index.js';

let root: string;
let counter = 0;
const fresh = () => join(root, `m${++counter}`, 'metrics.jsonl');

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'strata-metrics-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function writeRun(path: string, steps: number[], options?: { resumeFromStep?: number }): Promise<void> {
  const w = await MetricsWriter.open(path, options);
  for (const step of steps) w.write({ step, loss: 10 - step });
  w.close();
}

describe('MetricsWriter', () => {
  it('writes one JSON object per line, readable as it goes', async () => {
    const path = fresh();
    const w = await MetricsWriter.open(path);
    w.write({ step: 1, loss: 2.5, backend: 'cpu' });
    expect(readMetrics(path)).toEqual([{ step: 1, loss: 2.5, backend: 'cpu' }]); // flushed on each write
    w.write({ step: 2, loss: 2.25, note: 'a\nb' });
    w.close();
    w.close();
    expect(await readFile(path, 'utf8')).toBe(
      '{"step":1,"loss":2.5,"backend":"cpu"}\n{"step":2,"loss":2.25,"note":"a\\nb"}\n',
    );
    expect(() => w.write({ step: 3 })).toThrow(/closed/);
  });

  it('keeps non-finite numbers', async () => {
    const path = fresh();
    await writeRun(path, []);
    const w = await MetricsWriter.open(path);
    w.write({ step: 1, loss: Number.NaN, grad: { norm: Infinity, min: -Infinity } });
    w.close();
    expect(await readFile(path, 'utf8')).toBe(
      '{"step":1,"loss":"NaN","grad":{"norm":"Infinity","min":"-Infinity"}}\n',
    );
    expect(readMetrics(path)).toEqual([
      { step: 1, loss: Number.NaN, grad: { norm: Infinity, min: -Infinity } },
    ]);
  });

  it('starts afresh without resumeFromStep', async () => {
    const path = fresh();
    await writeRun(path, [1, 2, 3]);
    await writeRun(path, [1]);
    expect(readMetrics(path)).toEqual([{ step: 1, loss: 9 }]);
  });

  it('on resume keeps only the steps up to the checkpoint, so the curve has no duplicates', async () => {
    const path = fresh();
    const w = await MetricsWriter.open(path);
    w.write({ event: 'start', backend: 'cpu' });
    for (const step of [10, 20, 30, 40]) w.write({ step, loss: step });
    w.close();
    await appendFile(path, '{"step":50,"lo'); // killed mid-write
    await writeRun(path, [30, 40, 50], { resumeFromStep: 20 });
    expect(readMetrics(path)).toEqual([
      { event: 'start', backend: 'cpu' },
      { step: 10, loss: 10 },
      { step: 20, loss: 20 },
      { step: 30, loss: -20 },
      { step: 40, loss: -30 },
      { step: 50, loss: -40 },
    ]);
    expect(await readdir(join(path, '..'))).toEqual(['metrics.jsonl']); // atomic rewrite left no temporary
  });

  it('resumes into a file that does not exist yet', async () => {
    const path = fresh();
    await writeRun(path, [5], { resumeFromStep: 4 });
    expect(readMetrics(path)).toEqual([{ step: 5, loss: 5 }]);
  });

  it('refuses to resume over a file with a corrupt middle line', async () => {
    const path = fresh();
    await writeRun(path, []);
    await writeFile(path, '{"step":1}\nnot json\n{"step":2}\n');
    await expect(MetricsWriter.open(path, { resumeFromStep: 1 })).rejects.toMatchObject({ code: 'E_IO' });
    expect(await readFile(path, 'utf8')).toBe('{"step":1}\nnot json\n{"step":2}\n');
  });
});

describe('readMetrics', () => {
  it('skips a truncated last line but reports corrupt middle lines with their number', async () => {
    const path = fresh();
    await writeRun(path, [1, 2]);
    await appendFile(path, '{"step":3,"loss":7.');
    expect(readMetrics(path).map((r) => r.step)).toEqual([1, 2]);

    await writeFile(path, '{"step":1}\n\n{"step":2,\n{"step":3}\n');
    expect(() => readMetrics(path)).toThrow(
      expect.objectContaining({
        code: 'E_IO',
        message: expect.stringContaining(`${path}:3: corrupt metrics line`),
      }),
    );
    await writeFile(path, '{"step":1}\n[1]\n');
    expect(() => readMetrics(path)).toThrow(/:2: corrupt metrics line \(not a JSON object\)/);
    await writeFile(path, '{"step":1}\r\n{"step":2}\r\n');
    expect(readMetrics(path)).toEqual([{ step: 1 }, { step: 2 }]);
    await writeFile(path, '');
    expect(readMetrics(path)).toEqual([]);
  });

  it('reports a missing file as E_IO', () => {
    const path = join(root, 'missing.jsonl');
    expect(() => readMetrics(path)).toThrow(
      expect.objectContaining({
        code: 'E_IO',
        message: `cannot read ${path}: no such file or directory (ENOENT)`,
      }),
    );
  });
});
