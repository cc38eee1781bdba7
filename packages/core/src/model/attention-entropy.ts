/**
 * Attention entropy of GAU layers: the diagnostic behind `softmax_plus` (Su Jianlin,
 * https://kexue.fm/archives/8823). The entropy of a softmax attention row grows like `ln n` with the number
 * `n` of keys the query sees; scaling the scores by `ln n / ln base` is meant to keep it roughly constant, so
 * a model trained at one length attends as sharply at longer ones. {@link GPT.attentionEntropy} gives, for
 * every GAU layer and query, `H = −Σ_j A_j ln A_j` in nats; {@link AttentionEntropyStats} averages it over
 * batches in buckets of `n` (powers of two) next to `ln n`, the entropy of uniform attention.
 *
 * Only layers that materialize the attention weights can be observed: GAU layers do, the standard block's
 * attention runs as a fused kernel that never forms them.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';

/**
 * Observation hook for attention weights (pass it as `observeAttention` in the forward options): called once
 * per forward pass by every layer that materializes its attention weights (GAU layers) with the layer's index
 * and the weights `[B, Tq, Tk]` after normalization and before dropout. The tensor belongs to the forward
 * pass's `tf.tidy` scope: `tf.keep` whatever is derived from it to outlive the pass. Unused, it costs nothing.
 */
export type AttentionObserver = (layer: number, weights: tf.Tensor3D) => void;

/** Per-row entropy and sum of attention weights (see {@link attentionRowEntropy}). */
export interface RowEntropy {
  /** Entropy in nats of each row `[B, Tq]` (NaN for a row of zeros). */
  entropy: tf.Tensor2D;
  /** Sum of each row `[B, Tq]`. */
  mass: tf.Tensor2D;
}

/**
 * Entropy in nats of each attention row of `weights` `[B, Tq, Tk]`: `H = −Σ_j p_j ln p_j` with `p` the row
 * divided by its sum (softmax rows already sum to 1; FLASH's `relu2` rows need not, and a row of zeros has
 * no distribution: its entropy is NaN). Keys with zero weight (masked, padding) contribute 0. Also returns
 * each row's sum (`mass`).
 */
export function attentionRowEntropy(weights: tf.Tensor3D): RowEntropy {
  return tf.tidy(() => {
    const mass = tf.sum(weights, -1, true);
    const p = tf.div(weights, mass);
    const plogp = tf.where(tf.greater(p, 0), tf.mul(p, tf.log(p)), tf.zerosLike(p));
    const entropy = tf.where(
      tf.greater(tf.squeeze(mass, [2]), 0),
      tf.neg(tf.sum(plogp, -1)),
      tf.fill(mass.shape.slice(0, 2), Number.NaN),
    ) as tf.Tensor2D;
    return { entropy, mass: tf.squeeze(mass, [2]) as tf.Tensor2D };
  });
}

/** Attention entropies of every GAU layer on one batch of sequences (see {@link GPT.attentionEntropy}). */
export interface AttentionEntropy {
  /** Number of GAU layers. */
  readonly layers: number;
  /** Sequences in the batch (B). */
  readonly batch: number;
  /** Positions per sequence (T). */
  readonly length: number;
  /** Per layer: the entropy in nats of each query's attention row, `[B·T]` row-major (NaN for an all-zero `relu2` row). */
  readonly entropy: Float32Array[];
  /** Per layer: the sum of each query's attention row `[B·T]` (1 up to rounding for softmax, softmax_plus). */
  readonly mass: Float32Array[];
  /**
   * Keys each query may attend to, `[B·T]`: `t + 1` at position t of a causal model; the number of real
   * tokens in the sequence in an encoder; 0 for a padding query (left out of every statistic).
   */
  readonly keys: Int32Array;
}

/** One bucket of queries grouped by the number of keys they see (see {@link AttentionEntropyStats}). */
export interface EntropyBucket {
  /** Smallest n in the bucket (a power of two). */
  readonly nMin: number;
  /** Largest n in the bucket (`2·nMin − 1`, or the largest n seen). */
  readonly nMax: number;
  /** Query rows counted (each in every layer). */
  readonly rows: number;
  /** Mean of `ln n` over the rows: the mean entropy uniform attention would have. */
  readonly meanLogN: number;
  /** Mean entropy over the layers' bucket means, in nats. */
  readonly meanEntropy: number;
  /** Per layer: mean entropy of the bucket's rows (NaN when every row of the layer was all zero). */
  readonly layers: number[];
  /** Per layer: rows left out because they were all zero (`relu2` only; 0 otherwise). */
  readonly emptyRows: number[];
}

/** Least-squares slope of entropy on `ln n` (see {@link EntropyReport.slope}). */
export interface EntropySlope {
  /** Mean of the layers' slopes. */
  readonly mean: number;
  /** Per layer (NaN when all rows had one value of n). */
  readonly layers: number[];
}

/** What {@link AttentionEntropyStats.report} returns. */
export interface EntropyReport {
  /** Number of GAU layers. */
  readonly layers: number;
  /** Query rows counted (padding excluded). */
  readonly rows: number;
  /** Buckets n ∈ [1], [2, 3], [4, 7], …, in order, empty ones left out. */
  readonly buckets: EntropyBucket[];
  /**
   * Least-squares slope of `H` against `ln n` over all counted rows, per layer and its mean over the layers:
   * about 1 when the entropy grows like `ln n` (uniform-like attention), about 0 when it stays flat.
   */
  readonly slope: EntropySlope;
}

/** Running sums of entropies in buckets of n (n ∈ [2^k, 2^(k+1))) and the sums for the slope of H on ln n. */
export class AttentionEntropyStats {
  private nLayers = -1;
  private maxN = 0;
  /** Per bucket k: rows, Σ ln n, and per layer Σ H and the counted rows. */
  private readonly buckets = new Map<
    number,
    { rows: number; logN: number; h: number[]; counted: number[] }
  >();
  /** Per layer: count, Σx, Σy, Σx², Σxy for the slope (x = ln n, y = H). */
  private fit: number[][] = [];

  /** Adds one batch's entropies. */
  add(r: AttentionEntropy): void {
    if (this.nLayers < 0) {
      this.nLayers = r.layers;
      this.fit = Array.from({ length: r.layers }, () => [0, 0, 0, 0, 0]);
    } else if (r.layers !== this.nLayers)
      throw new Error(`AttentionEntropyStats: ${r.layers} layers after ${this.nLayers}`);
    for (let i = 0; i < r.keys.length; i++) {
      const n = r.keys[i]!;
      if (n <= 0) continue;
      this.maxN = Math.max(this.maxN, n);
      const k = 31 - Math.clz32(n);
      let b = this.buckets.get(k);
      if (!b) {
        b = { rows: 0, logN: 0, h: new Array(r.layers).fill(0), counted: new Array(r.layers).fill(0) };
        this.buckets.set(k, b);
      }
      const x = Math.log(n);
      b.rows++;
      b.logN += x;
      for (let l = 0; l < r.layers; l++) {
        const y = r.entropy[l]![i]!;
        if (Number.isNaN(y)) continue;
        b.h[l]! += y;
        b.counted[l]!++;
        const f = this.fit[l]!;
        f[0]!++;
        f[1]! += x;
        f[2]! += y;
        f[3]! += x * x;
        f[4]! += x * y;
      }
    }
  }

  /** The bucket means and slopes of everything added so far. */
  report(): EntropyReport {
    const layers = Math.max(this.nLayers, 0);
    const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;
    const buckets = [...this.buckets.entries()]
      .sort(([a], [b]) => a - b)
      .map(([k, b]): EntropyBucket => {
        const per = b.h.map((h, l) => (b.counted[l]! > 0 ? h / b.counted[l]! : Number.NaN));
        return {
          nMin: 2 ** k,
          nMax: Math.min(2 ** (k + 1) - 1, this.maxN),
          rows: b.rows,
          meanLogN: b.logN / b.rows,
          meanEntropy: mean(per),
          layers: per,
          emptyRows: b.counted.map((c) => b.rows - c),
        };
      });
    const slopes = this.fit.map(([n, sx, sy, sxx, sxy]) => {
      const den = n! * sxx! - sx! * sx!;
      return den > 0 ? (n! * sxy! - sx! * sy!) / den : Number.NaN;
    });
    return {
      layers,
      rows: buckets.reduce((a, b) => a + b.rows, 0),
      buckets,
      slope: { mean: layers > 0 ? mean(slopes) : Number.NaN, layers: slopes },
    };
  }
}
