/**
 * The playground's model and training settings, shared by the page and by the test that repeats its training
 * in Node on the cpu backend (the reference the browser backends are compared with).
 */
import {
  getModelFamily,
  type ModelConfigBase,
  type ModelFamily,
  parseTrainConfig,
  type TrainConfig,
} from '@strata/core';

/** What the form sets. */
export interface PlaygroundSettings {
  /** Residual-normalization strategy of each model (a GPT), or `ngpt` for the normalized Transformer. */
  strategies: string[];
  nLayers: number;
  dModel: number;
  nHeads: number;
  contextLength: number;
  batchSize: number;
  steps: number;
  lr: number;
}

/** The pseudo-strategy that stands for `@strata/ngpt`'s model (it has no residual norms to choose). */
export const NGPT = 'ngpt';

/** The model family of a strategy: `gpt`, or `ngpt` for {@link NGPT} (registered by `registerNGPT`). */
export function familyOf(strategy: string): ModelFamily {
  return getModelFamily(strategy === NGPT ? 'ngpt' : 'gpt');
}

/** The config of one strategy's model (byte-level: vocabulary 256). */
export function modelConfig(s: PlaygroundSettings, strategy: string): ModelConfigBase {
  const dims = {
    vocabSize: 256,
    contextLength: s.contextLength,
    dModel: s.dModel,
    nLayers: s.nLayers,
    nHeads: s.nHeads,
  };
  return familyOf(strategy).parseConfig(strategy === NGPT ? dims : { ...dims, norm: strategy });
}

/**
 * The training config of one strategy's model: the form's steps, batch and learning rate over the family's own
 * recipe (nGPT: no warmup, no weight decay, cosine to 0), and the same data, evaluation and diagnostics for all.
 */
export function trainConfig(s: PlaygroundSettings, strategy: string): TrainConfig {
  return parseTrainConfig(
    {
      warmupSteps: Math.min(20, Math.floor(s.steps / 10)),
      ...(familyOf(strategy).trainingDefaults ?? {}),
      steps: s.steps,
      batchSize: s.batchSize,
      seqLen: s.contextLength,
      lr: s.lr,
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
