/**
 * Memory estimates for training a Transformer language model, computed from its configuration before
 * anything is allocated, so that a run that cannot fit is refused with a one-line message instead of
 * failing deep inside a backend ("memory access out of bounds") or swapping the machine to a halt.
 *
 * The estimate counts, per heap (the main thread's, or each data-parallel worker's), in float32 values:
 * - parameters, their gradients and AdamW's two moments: `4·P`;
 * - the activations the autodiff tape keeps for one step, per token:
 *   `L·(k_b·(d + d_ff) + k_a·H·T) + k_h·V`, or with per-block recomputation
 *   `k_b·(d + d_ff) + k_a·H·T + k_r·V + L·d` (one block's tape plus the residual stream);
 * - temporaries proportional to the parameters: `k_p·P`.
 *
 * The constants ({@link MEMORY_PROFILES}) are least-squares fits to `tf.profile` peak bytes of real training
 * steps (GPT, d ∈ {32, 64, 128}, L ∈ {2, 4}, T ∈ {16, 64, 128}, B ∈ {4, 8, 16}), one set for tfjs's generic
 * kernels (cpu backend) and one for the wasm backend with Strata's fused kernels, which keep about five times
 * less. They reproduce the fitted points within 20%; `packages/core/test/train-memory.test.ts` checks shapes
 * outside the fit against `tf.profile`.
 *
 * @module
 */

/** Fitted constants of one kernel set (see the module notes). */
export interface MemoryProfile {
  /** Floats per token, block and unit of `d + d_ff`. */
  block: number;
  /** Floats per token, block, head and position (attention scores). */
  attention: number;
  /** Floats per token and vocabulary entry (logits and their gradient), without recomputation. */
  head: number;
  /** The same with recomputation (the head runs under its own, smaller tape). */
  headRecompute: number;
  /** Temporary floats per parameter (gradient sums, optimizer scratch), without recomputation. */
  perParam: number;
  /** The same with recomputation. */
  perParamRecompute: number;
}

/** Constants for tfjs's generic kernels (`cpu`, and a conservative guess for `tensorflow`) and for `wasm`. */
export const MEMORY_PROFILES: Readonly<Record<'generic' | 'fused', MemoryProfile>> = {
  generic: { block: 44, attention: 12, head: 18, headRecompute: 1, perParam: 2.7, perParamRecompute: 0.8 },
  fused: { block: 8, attention: 0.5, head: 6.6, headRecompute: 1.4, perParam: 1.5, perParamRecompute: 0.3 },
};

/** The model dimensions an estimate needs (a GPT or nGPT config has them all; missing ones take defaults). */
export interface MemoryModelShape {
  /** Vocabulary size V. */
  vocabSize: number;
  /** Context length (learned position embeddings have this many rows). */
  contextLength: number;
  /** Residual width d. */
  dModel: number;
  /** Number of blocks L. */
  nLayers: number;
  /** Attention heads H (default 1). */
  nHeads?: number;
  /** MLP width (default `4·dModel`). */
  dFF?: number | null;
  /** Gated MLP (`swiglu`) has three matrices instead of two. */
  activation?: string;
  /** Learned position embeddings add `contextLength·dModel` parameters. */
  positions?: string;
  /** An untied output head adds `vocabSize·dModel` parameters (default tied). */
  tiedEmbeddings?: boolean;
}

/** What one training step is run with. */
export interface MemoryRunShape {
  /** Sequences per step (per micro-batch). */
  batchSize: number;
  /** Tokens per sequence T. */
  seqLen: number;
  /** Per-block activation recomputation. */
  recompute?: boolean;
  /** Data-parallel ranks sharing the batch (each has its own heap). */
  workers?: number;
  /** Which kernels run the step (default `generic`; the wasm backend uses `fused`). */
  profile?: keyof typeof MEMORY_PROFILES;
}

/** A training-memory estimate, in bytes (per heap). */
export interface MemoryEstimate {
  /** Estimated parameter count. */
  parameters: number;
  /** Parameters, gradients and the two AdamW moments (`16·P` bytes). */
  stateBytes: number;
  /** Activations kept for the backward pass of one step on this heap's share of the batch. */
  activationBytes: number;
  /** `stateBytes + activationBytes`: the peak of one heap. */
  totalBytes: number;
  /** Sequences this heap processes per step (`ceil(batchSize / workers)`). */
  rows: number;
}

/** Parameter count of a decoder-only Transformer with these dimensions (biases and norms included). */
export function estimateParameters(m: MemoryModelShape): number {
  const d = m.dModel;
  const dff = m.dFF ?? 4 * d;
  const mlpMatrices = m.activation === 'swiglu' ? 3 : 2;
  const perBlock = 4 * d * d + 4 * d + mlpMatrices * d * dff + dff + d + 4 * d;
  return (
    m.vocabSize * d +
    (m.positions === 'learned' || m.positions === undefined ? m.contextLength * d : 0) +
    m.nLayers * perBlock +
    2 * d +
    (m.tiedEmbeddings === false ? m.vocabSize * d : 0)
  );
}

/** Estimates the peak memory of one training step (see the module notes for the formula). */
export function estimateTrainingMemory(model: MemoryModelShape, run: MemoryRunShape): MemoryEstimate {
  const parameters = estimateParameters(model);
  const d = model.dModel;
  const dff = model.dFF ?? 4 * d;
  const H = model.nHeads ?? 1;
  const T = run.seqLen;
  const rows = Math.ceil(run.batchSize / Math.max(1, run.workers ?? 1));
  const k = MEMORY_PROFILES[run.profile ?? 'generic'];
  const block = k.block * (d + dff) + k.attention * H * T;
  const V = model.vocabSize;
  const perToken = run.recompute
    ? block + k.headRecompute * V + model.nLayers * d
    : model.nLayers * block + k.head * V;
  const perParam = run.recompute ? k.perParamRecompute : k.perParam;
  const activationBytes = 4 * (perToken * rows * T + perParam * parameters);
  const stateBytes = 16 * parameters;
  return { parameters, stateBytes, activationBytes, totalBytes: stateBytes + activationBytes, rows };
}

/** Formats a byte count as `512 MB`, `3.2 GB`, `1.7 TB` (powers of 1000). */
export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let x = bytes;
  let i = 0;
  while (x >= 1000 && i < units.length - 1) {
    x /= 1000;
    i++;
  }
  return `${x >= 100 || i === 0 ? Math.round(x) : x.toFixed(1)} ${units[i]}`;
}
