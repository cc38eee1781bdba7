import { writeFileSync } from 'node:fs';
import {
  BACKENDS,
  type BackendName,
  type Batch,
  type BatchSource,
  getModelFamily,
  initBackend,
  parseTrainConfig,
  Rng,
  StrataError,
  Trainer,
} from '@strata/core';
import * as tf from '@tensorflow/tfjs-core';
import type { ParsedArgs } from '../args.js';
import { formatCount } from '../progress.js';
import { registerBuiltins } from '../setup.js';

/** Random byte batches: the benchmark measures compute, not data loading. */
class RandomBatches implements BatchSource {
  constructor(private readonly vocab: number) {}
  trainBatch(step: number, batchSize: number, seqLen: number): Batch {
    const rng = Rng.derive(7, 'bench', step);
    const n = batchSize * seqLen;
    const x = new Int32Array(n);
    const y = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      x[i] = rng.int(this.vocab);
      y[i] = rng.int(this.vocab);
    }
    return { x, y };
  }
  valBatches(batchSize: number, seqLen: number, maxBatches: number): Batch[] {
    return Array.from({ length: maxBatches }, (_, i) => this.trainBatch(1e6 + i, batchSize, seqLen));
  }
}

/** One row of the benchmark table. */
export interface BenchRow {
  backend: BackendName;
  steps: number;
  msPerStep: number;
  tokensPerSec: number;
  gflopsPerSec: number;
  peakRssMB: number;
  peakTensorMB: number;
  numTensorsFlat: boolean;
  params: number;
}

/** `strata bench`: training throughput of the reference GPT per backend. */
export async function run(args: ParsedArgs): Promise<number> {
  registerBuiltins();
  const wanted = String(args.backends);
  const list: BackendName[] =
    wanted === 'available' ? [...BACKENDS] : (wanted.split(',').map((s) => s.trim()) as BackendName[]);
  for (const b of list) {
    if (!BACKENDS.includes(b))
      throw new StrataError('E_BACKEND', `--backends: unknown backend "${b}"; valid: ${BACKENDS.join(', ')}`);
  }
  const cfgRaw = {
    dModel: args['d-model'] as number,
    nLayers: args.layers as number,
    nHeads: args.heads as number,
    contextLength: args.context as number,
    norm: { name: String(args.norm), options: {} },
  };
  const batchSize = args['batch-size'] as number;
  const rows: BenchRow[] = [];
  const log = (s: string) => {
    if (!args.json) process.stderr.write(`${s}\n`);
  };
  log(
    `reference GPT: d_model ${cfgRaw.dModel}, ${cfgRaw.nLayers} layers, ${cfgRaw.nHeads} heads, context ${cfgRaw.contextLength}, batch ${batchSize}, byte vocab, AdamW`,
  );
  for (const name of list) {
    try {
      await initBackend(name);
    } catch (e) {
      if (wanted === 'available') {
        log(`${name}: skipped (${(e as Error).message.split(':').slice(-1)[0]!.trim()})`);
        continue;
      }
      throw e;
    }
    const fam = getModelFamily('gpt');
    const model = fam.create(fam.parseConfig(cfgRaw), { seed: 1 });
    const training = parseTrainConfig(
      {
        steps: 1000,
        batchSize,
        seqLen: cfgRaw.contextLength,
        lr: 1e-3,
        minLr: 1e-4,
        warmupSteps: 0,
        evalBatches: 1,
      },
      cfgRaw.contextLength,
    );
    const trainer = new Trainer(model, new RandomBatches(256), training);
    const steps = name === 'cpu' ? (args['cpu-steps'] as number) : (args.steps as number);
    let peakRss = process.memoryUsage().rss;
    let peakBytes = tf.memory().numBytes;
    const w = await trainer.step();
    const tensorsAfterWarmup = w.numTensors;
    let totalMs = 0;
    let flat = true;
    for (let i = 0; i < steps; i++) {
      const m = await trainer.step();
      totalMs += m.ms;
      if (m.numTensors !== tensorsAfterWarmup) flat = false;
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
      peakBytes = Math.max(peakBytes, tf.memory().numBytes);
      log(`${name}: step ${i + 1}/${steps} ${m.ms.toFixed(0)} ms`);
    }
    const ms = totalMs / Math.max(1, steps);
    const tokens = batchSize * cfgRaw.contextLength;
    const params = model.params.count();
    const nonEmbedding = params - 256 * cfgRaw.dModel;
    // Training FLOPs per token ≈ 6·N (weights) + 12·L·T·d (attention scores and values), Kaplan et al. 2020.
    const flopsPerToken = 6 * nonEmbedding + 12 * cfgRaw.nLayers * cfgRaw.contextLength * cfgRaw.dModel;
    rows.push({
      backend: name,
      steps,
      msPerStep: ms,
      tokensPerSec: (tokens * 1000) / ms,
      gflopsPerSec: (flopsPerToken * tokens) / (ms / 1000) / 1e9,
      peakRssMB: peakRss / 2 ** 20,
      peakTensorMB: peakBytes / 2 ** 20,
      numTensorsFlat: flat,
      params,
    });
    trainer.dispose();
    model.dispose();
  }
  if (args.out)
    writeFileSync(
      String(args.out),
      `${JSON.stringify({ config: { ...cfgRaw, batchSize }, rows }, null, 2)}\n`,
    );
  if (args.json) {
    process.stdout.write(`${JSON.stringify({ config: { ...cfgRaw, batchSize }, rows })}\n`);
    return 0;
  }
  const header = ['backend', 'ms/step', 'tokens/s', 'GFLOP/s', 'peak RSS MB', 'tensor MB', 'no leak'];
  const table = rows.map((r) => [
    r.backend,
    r.msPerStep.toFixed(0),
    formatCount(r.tokensPerSec),
    r.gflopsPerSec.toFixed(2),
    r.peakRssMB.toFixed(0),
    r.peakTensorMB.toFixed(1),
    r.numTensorsFlat ? 'yes' : 'NO',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i]!.length)));
  const fmtRow = (r: string[]) =>
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  process.stdout.write(`${[fmtRow(header), ...table.map(fmtRow)].join('\n')}\n`);
  return 0;
}
