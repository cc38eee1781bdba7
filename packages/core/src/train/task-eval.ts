/**
 * Task metrics of encoder-only and encoder-decoder models: masked-LM loss and accuracy on the masked
 * positions; sequence-to-sequence loss, token accuracy (teacher-forced) and exact match (greedy decoding).
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { greedyDecode } from '../decode.js';
import { StrataError } from '../errors.js';
import { EncoderDecoder } from '../model/encdec.js';
import type { LanguageModel } from '../model/family.js';
import { tokenLoss } from '../ops.js';
import type { Batch } from './trainer.js';

/** What {@link evaluateTask} reports. */
export interface TaskMetrics {
  /** Mean cross-entropy over the scored targets (those `>= 0`). */
  loss: number;
  /** Fraction of scored targets whose argmax prediction is right (masked positions; target tokens). */
  accuracy: number;
  /** Scored targets. */
  tokens: number;
  /** Encoder-decoder only: fraction of examples whose greedy decoding equals the target exactly. */
  exactMatch?: number;
  /** Encoder-decoder only: examples decoded for `exactMatch`. */
  examples?: number;
}

/**
 * Loss and argmax accuracy over the scored targets of `batches` (targets `-1` are skipped), and for an
 * encoder-decoder also the exact-match rate of greedy decoding against each row's target.
 */
export async function evaluateTask(
  model: LanguageModel,
  batches: readonly Batch[],
  batchSize: number,
): Promise<TaskMetrics> {
  if (batches.length === 0)
    throw new StrataError('E_DATA', 'no validation batches: the validation split is too small');
  let lossSum = 0;
  let correct = 0;
  let tokens = 0;
  let exact = 0;
  let examples = 0;
  for (const b of batches) {
    const L = b.x.length / batchSize;
    let counted = 0;
    for (const v of b.y) if (v >= 0) counted++;
    const [loss, pred] = tf.tidy(() => {
      const logits = model.forward(tf.tensor2d(b.x, [batchSize, L], 'int32'));
      const V = logits.shape[2];
      return [
        tokenLoss(logits, tf.tensor1d(b.y, 'int32'), counted < b.y.length),
        tf.argMax(tf.reshape(logits, [-1, V]), 1),
      ];
    });
    lossSum += (await loss.data())[0]! * counted;
    const p = await pred.data();
    loss.dispose();
    pred.dispose();
    for (let i = 0; i < b.y.length; i++) if (b.y[i]! >= 0 && p[i] === b.y[i]) correct++;
    tokens += counted;
    if (model instanceof EncoderDecoder) {
      const c = model.config;
      const T = b.y.length / batchSize;
      const sources: number[][] = [];
      const targets: number[][] = [];
      for (let r = 0; r < batchSize; r++) {
        const src = Array.from(b.x.subarray(r * L, r * L + c.sourceLength));
        while (src.length > 0 && src[src.length - 1] === c.padId) src.pop();
        sources.push(src);
        const tgt = Array.from(b.y.subarray(r * T, (r + 1) * T)).filter((v) => v >= 0);
        if (tgt[tgt.length - 1] === c.eosId) tgt.pop();
        targets.push(tgt);
      }
      const decoded = await greedyDecode(model, sources);
      decoded.forEach((d, r) => {
        const t = targets[r]!;
        if (d.length === t.length && d.every((v, i) => v === t[i])) exact++;
      });
      examples += batchSize;
    }
  }
  return {
    loss: lossSum / Math.max(1, tokens),
    accuracy: correct / Math.max(1, tokens),
    tokens,
    ...(examples > 0 ? { exactMatch: exact / examples, examples } : {}),
  };
}
