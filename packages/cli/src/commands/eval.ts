import {
  type Batch,
  ByteTokenizer,
  evaluateLoss,
  loadCheckpoint,
  loadTextSource,
  parseTrainConfig,
  StrataError,
} from '@strata/core';
import type { ParsedArgs } from '../args.js';
import { type DataSpec, datasetFor, resolveCheckpointDir } from '../run-training.js';
import { setupRuntime } from '../setup.js';

/** `strata eval`: loss and perplexity of a checkpoint on held-out or given data. */
export async function run(args: ParsedArgs): Promise<number> {
  const backend = await setupRuntime(args);
  const { checkpointDir } = await resolveCheckpointDir(String(args.checkpoint ?? ''));
  const { model, config } = await loadCheckpoint(checkpointDir);
  try {
    const batchSize = args['batch-size'] as number;
    const maxBatches = args.batches as number;
    const seqLen = model.config.contextLength;
    const tokenizer = new ByteTokenizer();
    let batches: Batch[];
    let what: string;
    if (args.data) {
      const source = await loadTextSource(String(args.data));
      batches = sequentialBatches(tokenizer.encode(source.text), batchSize, seqLen, maxBatches);
      what = String(args.data);
    } else {
      const { data: spec = { kind: 'brown' }, ...saved } = (config.training ?? {}) as { data?: DataSpec };
      const training = parseTrainConfig(saved);
      const ds = await datasetFor(spec, training);
      batches = ds.valBatches(batchSize, seqLen, maxBatches);
      what = 'held-out validation split';
    }
    if (batches.length === 0)
      throw new StrataError('E_DATA', `not enough text to form one batch of ${batchSize}×${seqLen} tokens`);
    const res = await evaluateLoss(model, batches, batchSize);
    const out = {
      checkpoint: checkpointDir,
      data: what,
      loss: res.loss,
      perplexity: res.perplexity,
      bitsPerByte: res.loss / Math.LN2,
      tokens: res.tokens,
      backend: backend.name,
    };
    if (args.json) process.stdout.write(`${JSON.stringify(out)}\n`);
    else {
      process.stdout.write(
        `data:        ${what} (${res.tokens} tokens)\nloss:        ${res.loss.toFixed(4)} nats/token\nperplexity:  ${res.perplexity.toFixed(3)}\nbits/byte:   ${(res.loss / Math.LN2).toFixed(4)}\nbackend:     ${backend.name}\n`,
      );
    }
    return 0;
  } finally {
    model.dispose();
  }
}

/** Non-overlapping windows over all of `tokens`, grouped into full batches (`y` is `x` shifted by one). */
export function sequentialBatches(
  tokens: ArrayLike<number>,
  batchSize: number,
  seqLen: number,
  maxBatches: number,
): Batch[] {
  const out: Batch[] = [];
  let pos = 0;
  while (out.length < maxBatches) {
    if (pos + batchSize * seqLen + 1 > tokens.length) break;
    const x = new Int32Array(batchSize * seqLen);
    const y = new Int32Array(batchSize * seqLen);
    for (let b = 0; b < batchSize; b++) {
      for (let t = 0; t < seqLen; t++) {
        x[b * seqLen + t] = tokens[pos + t]!;
        y[b * seqLen + t] = tokens[pos + t + 1]!;
      }
      pos += seqLen;
    }
    out.push({ x, y });
  }
  return out;
}
