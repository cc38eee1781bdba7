import * as tf from '@tensorflow/tfjs-core';
import { StrataError } from './errors.js';
import { createIncrementalDecoder } from './kernels/kv-cache.js';
import type { LanguageModel } from './model/family.js';
import { Rng } from './util/rng.js';

/** Sampling settings. */
export interface SampleOptions {
  /** Tokens to generate. */
  maxTokens: number;
  /** Softmax temperature; 0 means greedy (argmax). */
  temperature: number;
  /** Keep only the k most likely tokens (0: all). */
  topK: number;
  /** Seed of the sampling RNG; equal seeds give equal text. */
  seed: number;
  /** Called with each new token id as it is produced (for streaming output). */
  onToken?: (id: number) => void;
}

/** Default sampling settings. */
export const SAMPLE_DEFAULTS: SampleOptions = { maxTokens: 200, temperature: 0.8, topK: 40, seed: 1 };

/**
 * Autoregressive sampling. The context is the last `contextLength` tokens; each step runs the model on it and
 * samples from `softmax(logits/temperature)` restricted to the top-k tokens.
 * @returns the generated token ids (without the prompt)
 */
export async function generate(
  model: LanguageModel,
  prompt: readonly number[],
  options: Partial<SampleOptions> = {},
): Promise<number[]> {
  const o = { ...SAMPLE_DEFAULTS, ...options };
  if (!Number.isInteger(o.maxTokens) || o.maxTokens < 0)
    throw new StrataError(
      'E_USAGE',
      `maxTokens (--max-tokens) must be a non-negative integer, got ${o.maxTokens}`,
    );
  if (!(o.temperature >= 0) || !Number.isFinite(o.temperature))
    throw new StrataError('E_USAGE', `temperature (--temperature) must be >= 0, got ${o.temperature}`);
  if (!Number.isInteger(o.topK) || o.topK < 0)
    throw new StrataError('E_USAGE', `topK (--top-k) must be a non-negative integer, got ${o.topK}`);
  const V = model.config.vocabSize;
  for (const id of prompt) {
    if (!Number.isInteger(id) || id < 0 || id >= V)
      throw new StrataError('E_USAGE', `prompt token ${id} is outside the vocabulary [0, ${V})`);
  }
  const rng = new Rng(o.seed);
  const ctx = [...prompt];
  if (ctx.length === 0) ctx.push(10); // start from a newline byte when no prompt is given
  const out: number[] = [];
  // With a KV cache (GPT family) each step runs one token through the model; otherwise the whole window.
  const decoder = createIncrementalDecoder(model);
  try {
    for (let i = 0; i < o.maxTokens; i++) {
      let logits: Float32Array;
      if (decoder) logits = await decoder.next(ctx);
      else {
        const window = ctx.slice(-model.config.contextLength);
        const logitsT = tf.tidy(() => {
          const all = model.forward(tf.tensor2d(window, [1, window.length], 'int32'));
          return tf.reshape(tf.slice(all, [0, window.length - 1, 0], [1, 1, V]), [V]);
        });
        logits = (await logitsT.data()) as Float32Array;
        logitsT.dispose();
      }
      const id = sampleFromLogits(logits, o.temperature, o.topK, rng);
      ctx.push(id);
      out.push(id);
      o.onToken?.(id);
    }
  } finally {
    decoder?.dispose();
  }
  return out;
}

/** Samples one index from logits with temperature and top-k, using `rng`. Pure; exported for tests. */
export function sampleFromLogits(
  logits: ArrayLike<number>,
  temperature: number,
  topK: number,
  rng: Rng,
): number {
  const n = logits.length;
  if (temperature === 0) {
    let best = 0;
    for (let i = 1; i < n; i++) if (logits[i]! > logits[best]!) best = i;
    return best;
  }
  let idx = Array.from({ length: n }, (_, i) => i);
  if (topK > 0 && topK < n) {
    idx.sort((a, b) => logits[b]! - logits[a]! || a - b);
    idx = idx.slice(0, topK);
  }
  let max = Number.NEGATIVE_INFINITY;
  for (const i of idx) max = Math.max(max, logits[i]! / temperature);
  const weights = idx.map((i) => Math.exp(logits[i]! / temperature - max));
  const total = weights.reduce((a, b) => a + b, 0);
  let r = rng.next() * total;
  for (let j = 0; j < idx.length; j++) {
    r -= weights[j]!;
    if (r < 0) return idx[j]!;
  }
  return idx[idx.length - 1]!;
}
