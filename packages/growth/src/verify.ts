import { crossEntropy, type LanguageModel, Rng } from '@strata/core';
import * as tf from '@tensorflow/tfjs-core';

/** A probe batch: token ids `[batch][seq]`. */
export type ProbeIds = readonly (readonly number[])[];

/** What {@link verifyGrowth} measures on a probe batch. */
export interface GrowthCheck {
  /** max |logits_big − logits_small| over every position and vocabulary entry. */
  readonly maxAbsDeltaLogits: number;
  /** max |logits_small| (the scale the difference is judged against). */
  readonly maxAbsLogit: number;
  /** `maxAbsDeltaLogits / maxAbsLogit`. */
  readonly relDeltaLogits: number;
  /** Mean next-token cross-entropy of the small model on the probe (targets: the ids shifted by one). */
  readonly lossSmall: number;
  /** The same for the grown model. */
  readonly lossBig: number;
}

/**
 * A reproducible random probe batch: `batch` sequences of `seq` ids below `vocabSize` (Growth guide, "Verifying a transform": use more
 * than one position — RoPE at position 0 is the identity and hides RoPE bugs).
 */
export function makeProbe(vocabSize: number, seq: number, batch = 2, seed = 1): number[][] {
  const rng = Rng.derive(seed, 'growth-probe');
  return Array.from({ length: batch }, () => Array.from({ length: seq }, () => rng.int(vocabSize)));
}

/** Logits and probe loss of one model (internal: lets growModel run each model once). */
export interface ProbeRun {
  /** The logits `[batch, seq, vocab]`, row-major. */
  readonly data: Float32Array;
  /** Mean next-token cross-entropy over the probe (nats). */
  readonly loss: number;
}

/** Runs a model on a probe batch: its logits and its next-token loss. */
export async function probeRun(model: LanguageModel, ids: ProbeIds): Promise<ProbeRun> {
  const B = ids.length;
  const T = ids[0]?.length ?? 0;
  if (B === 0 || T < 2) throw new Error('a probe batch needs at least one sequence of 2 or more tokens');
  const x = tf.tensor2d(ids.flat(), [B, T], 'int32');
  const logits = model.forward(x);
  const V = logits.shape[2];
  // An encoder-decoder's logits cover the decoder part of each packed row only: its last `L` ids.
  const L = logits.shape[1];
  const loss = tf.tidy(() => {
    const inp = tf.reshape(tf.slice(logits, [0, 0, 0], [B, L - 1, V]), [B * (L - 1), V]) as tf.Tensor2D;
    const tgt = tf.tensor1d(
      ids.flatMap((r) => r.slice(T - L + 1)),
      'int32',
    );
    return crossEntropy(inp, tgt);
  });
  const [data, l] = await Promise.all([logits.data(), loss.data()]);
  tf.dispose([x, logits, loss]);
  return { data: data as Float32Array, loss: l[0]! };
}

/**
 * Measures how far a grown model's function is from the small one's: max |Δlogits| on the probe batch (and
 * the cross-entropy of each on the probe's next tokens). The models must share the vocabulary; the probe's
 * length must fit both context lengths. Runs on the current tfjs backend (use `cpu` or `wasm`: WebGL may
 * compute in float16, Growth guide, "Verifying a transform").
 */
export async function verifyGrowth(
  small: LanguageModel,
  big: LanguageModel,
  probeIds: ProbeIds,
): Promise<GrowthCheck> {
  return compareRuns(await probeRun(small, probeIds), await probeRun(big, probeIds));
}

/** Compares two {@link probeRun} results. */
export function compareRuns(a: ProbeRun, b: ProbeRun): GrowthCheck {
  if (a.data.length !== b.data.length) {
    throw new Error(`the models' logits differ in shape (${a.data.length} vs ${b.data.length} values)`);
  }
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.data.length; i++) {
    d = Math.max(d, Math.abs(a.data[i]! - b.data[i]!));
    m = Math.max(m, Math.abs(a.data[i]!));
  }
  return {
    maxAbsDeltaLogits: d,
    maxAbsLogit: m,
    relDeltaLogits: m > 0 ? d / m : d,
    lossSmall: a.loss,
    lossBig: b.loss,
  };
}
