import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  AdamW,
  CHECKPOINT_FORMAT,
  CHECKPOINT_FORMAT_VERSION,
  crossEntropy,
  getModelFamily,
  getNorm,
  initBackend,
  type TensorData,
  writeCheckpoint,
} from '@strata/core';
import { runNormConformance } from '@strata/norms';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BRANCH_SCALE, register, scaledPre } from '../src/index.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = join(here, '..', '..', '..');
let dir = '';

beforeAll(async () => {
  await initBackend('wasm');
  dir = await mkdtemp(join(tmpdir(), 'strata-norm-plugin-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('acme/scaled-pre', () => {
  it('passes the @strata/norms conformance suite', async () => {
    const report = await runNormConformance(scaledPre);
    expect(report.strategy).toBe('acme/scaled-pre');
    expect(report.strategyParams.layernorm).toContain(`blocks.0.attn.${BRANCH_SCALE}`);
    await runNormConformance(scaledPre, {
      options: { norm: 'rmsnorm', maxScale: 0.3 },
      normKinds: ['layernorm'],
    });
  });

  it('registers by name and is typed through its own declaration merging', () => {
    register();
    register(); // idempotent
    const s = getNorm('acme/scaled-pre');
    expect(s).toBe(scaledPre);
    const opts: { init: number | null; maxScale: number | null; norm: 'model' | 'rmsnorm' | 'layernorm' } =
      s.parseOptions({});
    expect(opts).toEqual({ init: null, maxScale: null, norm: 'model' });
  });

  it('trains, saves a checkpoint, and loads it in a fresh process with identical logits', async () => {
    register();
    const fam = getModelFamily('gpt');
    const cfg = fam.parseConfig({
      vocabSize: 16,
      contextLength: 8,
      dModel: 16,
      nHeads: 2,
      nLayers: 2,
      normKind: 'rmsnorm',
      norm: { name: 'acme/scaled-pre', options: { maxScale: 2 } },
    });
    const m = fam.create(cfg, { seed: 3 });
    // branch scales start at 1/√(2N) = 0.5
    expect(m.params.get(`blocks.1.mlp.${BRANCH_SCALE}`).dataSync()[0]).toBeCloseTo(0.5, 7);
    // a learnable pattern: next token = (token + 1) mod 16
    const seq = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
    const x = tf.tensor2d([seq.slice(0, 8), seq.slice(5, 13), seq.slice(8, 16)], [3, 8], 'int32');
    const y = tf.tensor1d([...seq.slice(1, 9), ...seq.slice(6, 14), ...seq.slice(9, 16), 0], 'int32');
    const vars = m.params.variables();
    const names = new Map(vars.map(([n, v]) => [v.name, n]));
    const opt = new AdamW(m.params, { weightDecay: 0 });
    const losses: number[] = [];
    for (let step = 0; step < 25; step++) {
      const { value, grads } = tf.variableGrads(
        () => crossEntropy(tf.reshape(m.forward(x), [24, 16]) as tf.Tensor2D, y),
        vars.map(([, v]) => v),
      );
      losses.push(value.dataSync()[0]!);
      opt.apply(new Map(Object.entries(grads).map(([k, g]) => [names.get(k)!, g])), 3e-2);
      m.afterStep();
      tf.dispose([value, ...Object.values(grads)]);
    }
    expect(losses.at(-1)!).toBeLessThan(losses[0]! * 0.5);
    const logits = Array.from(m.forward(x).dataSync());

    const weights = new Map<string, TensorData>();
    for (const [name, data] of await m.params.read())
      weights.set(name, { shape: [...m.params.spec(name).shape], data });
    const ckpt = join(dir, 'ckpt');
    await writeCheckpoint(ckpt, {
      config: {
        format: CHECKPOINT_FORMAT,
        formatVersion: CHECKPOINT_FORMAT_VERSION,
        family: 'gpt',
        familyVersion: fam.version,
        model: { ...cfg },
        tokenizer: { kind: 'test', vocabSize: 16 },
      },
      weights,
    });
    tf.dispose([x, y]);
    m.dispose();

    const run = promisify(execFile);
    const tsx = join(root, 'node_modules', '.bin', 'tsx');
    const script = join(here, 'fixtures', 'load-checkpoint.ts');
    const tsconfig = join(here, '..', 'tsconfig.json');
    const ok = await run(tsx, ['--tsconfig', tsconfig, script, ckpt, 'register'], { cwd: root });
    const loaded = JSON.parse(ok.stdout) as {
      logits: number[];
      norm: { name: string; version: string; options: unknown };
    };
    expect(loaded.norm).toEqual({
      name: 'acme/scaled-pre',
      version: '1.0.0',
      options: { init: null, maxScale: 2, norm: 'model' },
    });
    expect(loaded.logits).toHaveLength(logits.length);
    for (let i = 0; i < logits.length; i++) expect(loaded.logits[i]).toBe(logits[i]);

    // Without the plugin the checkpoint is refused with a message that lists what is registered.
    const missing = await run(tsx, ['--tsconfig', tsconfig, script, ckpt, 'no-register'], {
      cwd: root,
    }).catch((e) => e);
    expect(missing.code).toBe(3);
    expect(missing.stdout).toMatch(/unknown norm strategy "acme\/scaled-pre"; registered: .*"pre-ln"/);
    // From code the advice is about code (registerNorm), not the CLI's --plugin flag.
    expect(missing.stdout).toMatch(/register the plugin that defines it first: registerNorm\(strategy\)/);
    expect(missing.stdout).not.toMatch(/--plugin/);
  });
});
