import { formatChoices, StrataError } from '../errors.js';

/** Everything that controls a training run (recorded in the checkpoint's `config.json` under `training`). */
export interface TrainConfig {
  /** Total optimizer steps. */
  steps: number;
  /** Sequences per step. */
  batchSize: number;
  /** Tokens per sequence (≤ the model's contextLength; default: contextLength). */
  seqLen: number;
  /** Peak learning rate. */
  lr: number;
  /** Final learning rate of the cosine schedule. */
  minLr: number;
  /** Linear warmup steps. */
  warmupSteps: number;
  /** Decay after warmup. */
  decay: 'cosine' | 'constant';
  beta1: number;
  beta2: number;
  eps: number;
  /** Decoupled weight decay (matrices only by default). */
  weightDecay: number;
  /** Global-norm gradient clipping threshold (0 disables). */
  gradClip: number;
  /** Seed for init, data order, split and dropout. */
  seed: number;
  /** Evaluate on the validation split every N steps (0: only at the end). */
  evalEvery: number;
  /** Validation batches per evaluation. */
  evalBatches: number;
  /** Write a checkpoint every N steps (0: only at the end and on interrupt). */
  checkpointEvery: number;
  /** Fraction of the data held out for validation. */
  valFraction: number;
  /** What to do when the loss or a gradient is not finite: stop with an error, or skip the update. */
  onNonFinite: 'stop' | 'skip';
  /** Record depth-stability diagnostics (per-layer gradient norms, norm-input norms, ‖ΔF‖) every N steps (0: off). */
  diagnosticsEvery: number;
}

/** Defaults of `strata train`: a byte-level GPT that trains well below ln 256 in a few minutes on 2 cores. */
export const TRAIN_DEFAULTS: TrainConfig = {
  steps: 400,
  batchSize: 16,
  seqLen: 128,
  lr: 3e-3,
  minLr: 3e-4,
  warmupSteps: 20,
  decay: 'cosine',
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0.1,
  gradClip: 1,
  seed: 1,
  evalEvery: 100,
  evalBatches: 8,
  checkpointEvery: 100,
  valFraction: 0.1,
  onNonFinite: 'stop',
  diagnosticsEvery: 0,
};

const KEYS = Object.keys(TRAIN_DEFAULTS) as (keyof TrainConfig)[];

/** Validates a (partial) training config, filling defaults; errors name the field. */
export function parseTrainConfig(raw: unknown, contextLength?: number): TrainConfig {
  if (raw == null) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw))
    throw new StrataError('E_CONFIG', 'training config must be an object');
  const given = raw as Record<string, unknown>;
  for (const k of Object.keys(given)) {
    if (!KEYS.includes(k as keyof TrainConfig)) {
      throw new StrataError(
        'E_CONFIG',
        `unknown training config key "${k}"; valid keys: ${formatChoices(KEYS)}`,
      );
    }
  }
  const c = { ...TRAIN_DEFAULTS, ...(given as Partial<TrainConfig>) };
  const intField = (k: keyof TrainConfig, min: number) => {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
      throw new StrataError('E_CONFIG', `train.${k} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    }
  };
  const numField = (k: keyof TrainConfig, lo: number, hi: number, loOpen = false) => {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi || (loOpen && v === lo)) {
      throw new StrataError(
        'E_CONFIG',
        `train.${k} must be in ${loOpen ? '(' : '['}${lo}, ${hi}], got ${JSON.stringify(v)}`,
      );
    }
  };
  intField('steps', 0);
  intField('batchSize', 1);
  intField('seqLen', 1);
  intField('warmupSteps', 0);
  intField('seed', 0);
  intField('evalEvery', 0);
  intField('evalBatches', 1);
  intField('checkpointEvery', 0);
  intField('diagnosticsEvery', 0);
  numField('lr', 0, 10, true);
  numField('minLr', 0, c.lr);
  numField('beta1', 0, 0.999999);
  numField('beta2', 0, 0.999999);
  numField('eps', 0, 1, true);
  numField('weightDecay', 0, 10);
  numField('gradClip', 0, 1e9);
  numField('valFraction', 0, 0.9, true);
  if (!['cosine', 'constant'].includes(c.decay)) {
    throw new StrataError(
      'E_CONFIG',
      `train.decay must be "cosine" or "constant", got ${JSON.stringify(c.decay)}`,
    );
  }
  if (!['stop', 'skip'].includes(c.onNonFinite)) {
    throw new StrataError(
      'E_CONFIG',
      `train.onNonFinite must be "stop" or "skip", got ${JSON.stringify(c.onNonFinite)}`,
    );
  }
  if (contextLength !== undefined && c.seqLen > contextLength) {
    throw new StrataError(
      'E_CONFIG',
      `train.seqLen (${c.seqLen}) must be <= model.contextLength (${contextLength})`,
    );
  }
  return c;
}
