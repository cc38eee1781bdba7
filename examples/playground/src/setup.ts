/**
 * The playground's model and training settings, shared by the page and by the test that repeats its training
 * in Node on the cpu backend (the reference the browser backends are compared with).
 */
import { type GPTConfig, getModelFamily, parseTrainConfig, type TrainConfig } from '@strata/core';

/** What the form sets. */
export interface PlaygroundSettings {
  /** Residual-normalization strategy of each model. */
  strategies: string[];
  nLayers: number;
  dModel: number;
  nHeads: number;
  contextLength: number;
  batchSize: number;
  steps: number;
  lr: number;
}

/** The GPT config of one strategy's model (byte-level: vocabulary 256). */
export function modelConfig(s: PlaygroundSettings, strategy: string): GPTConfig {
  return getModelFamily('gpt').parseConfig({
    vocabSize: 256,
    contextLength: s.contextLength,
    dModel: s.dModel,
    nLayers: s.nLayers,
    nHeads: s.nHeads,
    norm: strategy,
  }) as GPTConfig;
}

/** The training config every model of a comparison shares. */
export function trainConfig(s: PlaygroundSettings): TrainConfig {
  return parseTrainConfig(
    {
      steps: s.steps,
      batchSize: s.batchSize,
      seqLen: s.contextLength,
      lr: s.lr,
      warmupSteps: Math.min(20, Math.floor(s.steps / 10)),
      // Strata's AdamW adds eps itself (1e-8 unless set), in float32 on every backend. tfjs's own Adam takes its
      // default from the backend: 1e-4 on webgl, which reports float precision 16. Keep it explicit.
      eps: 1e-8,
      evalEvery: Math.max(10, Math.floor(s.steps / 10)),
      evalBatches: 2,
      diagnosticsEvery: 10,
      seed: 1,
    },
    s.contextLength,
  );
}

/** Model seed, dataset seed and validation fraction: one text, one split, one initialization per strategy. */
export const SEEDS = { model: 1, data: 1, valFraction: 0.05 } as const;

/** One model's progress, as the page exposes it. */
export interface RunSummary {
  /** Its residual-normalization strategy. */
  strategy: string;
  /** Completed steps. */
  steps: number;
  /** `[step, training loss]`. */
  losses: [number, number][];
  /** `[step, validation loss]`. */
  valLosses: [number, number][];
  /** Per-block gradient norms at the last step that recorded diagnostics. */
  gradNorms: number[];
  /** Mean wall seconds of the steps after the first. */
  secondsPerStep: number;
  /** The prompt and what the model sampled after it (empty until training ends). */
  sample: string;
}

/** What the page exposes as `window.playground` (the browser test and the scripts read it). */
export interface PlaygroundState {
  state: 'loading' | 'idle' | 'training' | 'sampling' | 'done' | 'error';
  /** The active backend and its device. */
  backend?: { name: string; device: string };
  /** Characters of training text. */
  corpusBytes: number;
  runs: RunSummary[];
  error?: string;
  /** How many times the charts were redrawn. */
  redraws: number;
}
