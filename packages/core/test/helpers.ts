import * as tf from '@tensorflow/tfjs-core';
import { crossEntropy, type GPTConfig, getModelFamily, type LanguageModel } from '../src/index.js';

/** Builds a GPT from a partial config. */
export function tinyGPT(overrides: Record<string, unknown> = {}, seed = 1): LanguageModel {
  const fam = getModelFamily('gpt');
  const cfg = fam.parseConfig({
    vocabSize: 13,
    contextLength: 8,
    dModel: 8,
    nLayers: 2,
    nHeads: 2,
    ...overrides,
  }) as GPTConfig;
  return fam.create(cfg, { seed });
}

/** Mean cross-entropy of `model` on ids/targets (`[B, T]` row-major arrays). */
export function lossOf(model: LanguageModel, ids: number[][], targets: number[][]): tf.Scalar {
  return tf.tidy(() => {
    const B = ids.length;
    const T = ids[0]!.length;
    const logits = model.forward(tf.tensor2d(ids, [B, T], 'int32'));
    return crossEntropy(
      tf.reshape(logits, [B * T, model.config.vocabSize]) as tf.Tensor2D,
      tf.tensor1d(targets.flat(), 'int32'),
    );
  });
}

/** Logits as nested arrays. */
export function logitsOf(model: LanguageModel, ids: number[][]): number[][][] {
  return tf.tidy(() => model.forward(tf.tensor2d(ids, [ids.length, ids[0]!.length], 'int32')).arraySync());
}
