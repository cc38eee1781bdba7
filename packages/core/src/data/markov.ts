/**
 * A synthetic order-1 Markov language: the standard cheap testbed for depth-stability experiments
 * (see the DeepNorm and depth guide). Each token has `successors` distinct random next tokens, chosen uniformly,
 * so the achievable loss is exactly ln(successors) and the unigram level is ≈ ln(vocab).
 *
 * @module
 */
import { StrataError } from '../errors.js';
import { Rng } from '../util/rng.js';
import type { TokenBatch } from './dataset.js';

/** Settings of a {@link MarkovDataset}. */
export interface MarkovOptions {
  /** Vocabulary size (default 32). */
  vocab?: number;
  /** Distinct successors per token (default 2). */
  successors?: number;
  /** Seed of the transition table and of the sampling (default 1). */
  seed?: number;
}

/** Synthetic order-1 Markov data with stateless batches (batch `s` depends only on the seed and `s`). */
export class MarkovDataset {
  /** Number of token ids (default 32). */
  readonly vocab: number;
  /** Distinct next tokens per token (default 2): the achievable loss is ln(successors). */
  readonly successors: number;
  /** Seed of the transition table (default 1). */
  readonly seed: number;
  private readonly next: number[][];

  constructor(options: MarkovOptions = {}) {
    this.vocab = options.vocab ?? 32;
    this.successors = options.successors ?? 2;
    this.seed = options.seed ?? 1;
    if (!Number.isInteger(this.vocab) || this.vocab < 2)
      throw new StrataError('E_CONFIG', `markov vocab must be an integer >= 2, got ${this.vocab}`);
    if (!Number.isInteger(this.successors) || this.successors < 1 || this.successors > this.vocab) {
      throw new StrataError(
        'E_CONFIG',
        `markov successors must be an integer in [1, vocab], got ${this.successors}`,
      );
    }
    const rng = Rng.derive(this.seed, 'markov-table');
    this.next = Array.from({ length: this.vocab }, () => {
      const picks = new Set<number>();
      while (picks.size < this.successors) picks.add(rng.int(this.vocab));
      return [...picks];
    });
  }

  /** The best achievable next-token loss: ln(successors) nats. */
  get entropyFloor(): number {
    return Math.log(this.successors);
  }

  private fill(rng: Rng, batchSize: number, seqLen: number): TokenBatch {
    const x = new Int32Array(batchSize * seqLen);
    const y = new Int32Array(batchSize * seqLen);
    for (let b = 0; b < batchSize; b++) {
      let tok = rng.int(this.vocab);
      for (let t = 0; t < seqLen; t++) {
        const nxt = this.next[tok]![rng.int(this.successors)]!;
        x[b * seqLen + t] = tok;
        y[b * seqLen + t] = nxt;
        tok = nxt;
      }
    }
    return { x, y, batchSize, seqLen };
  }

  /** Training batch number `step`. */
  trainBatch(step: number, batchSize: number, seqLen: number): TokenBatch {
    return this.fill(Rng.derive(this.seed, 'markov-train', step), batchSize, seqLen);
  }

  /** A fixed list of validation batches (a stream disjoint from training's). */
  valBatches(batchSize: number, seqLen: number, maxBatches: number): TokenBatch[] {
    const n = Number.isFinite(maxBatches) ? maxBatches : 8;
    return Array.from({ length: n }, (_, i) =>
      this.fill(Rng.derive(this.seed, 'markov-val', i), batchSize, seqLen),
    );
  }

  /** Identifies the language (for resume checks). */
  datasetFingerprint(): string {
    return `markov:${this.vocab}:${this.successors}:${this.seed}`;
  }
}
