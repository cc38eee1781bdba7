import { configFields, withDefaults } from '../config-fields.js';
import { StrataError } from '../errors.js';

/** Everything that controls a training run (recorded in the checkpoint's `config.json` under `training`). */
export interface TrainConfig {
  /** Total optimizer steps. */
  steps: number;
  /**
   * Length of the learning-rate schedule in steps (`null`: `steps`). It differs from `steps` when a resumed
   * run's step budget was changed but its schedule kept (`strata train --resume R --steps N`, which keeps the schedule unless `--resume-schedule stretch`):
   * after `scheduleSteps` the learning rate stays at the schedule's final value.
   */
  scheduleSteps: number | null;
  /** Sequences per micro-batch (one forward/backward pass); a step uses `batchSize · gradAccum` sequences. */
  batchSize: number;
  /**
   * Gradient accumulation: micro-batches of `batchSize` sequences per optimizer step (default 1). The step
   * equals one step on a batch of `batchSize · gradAccum` sequences (the same data, the mean of the
   * micro-batch gradients); memory is that of one micro-batch.
   */
  gradAccum: number;
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
  /** Adam β₁ (default 0.9). */
  beta1: number;
  /** Adam β₂ (default 0.95). */
  beta2: number;
  /** Adam ε (default 1e-8). */
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
  /**
   * Loss-explosion rule: the run counts as diverged when the training loss exceeds
   * `explodeFactor · ln(vocabSize)` (that many times the loss of uniform guessing) on `explodePatience`
   * consecutive steps. `0` disables the rule (non-finite values are still caught by `onNonFinite`).
   */
  explodeFactor: number;
  /** Consecutive steps above the explosion threshold that make a divergence (see `explodeFactor`). */
  explodePatience: number;
  /** Record depth-stability diagnostics (per-layer gradient norms, norm-input norms, ‖ΔF‖) every N steps (0: off). */
  diagnosticsEvery: number;
  /**
   * First step of the current schedule phase (default 0): warmup and decay run from here to `steps`. Continued
   * training of a grown model starts a new phase at the growth step (re-warm + a fresh cosine).
   */
  phaseStart: number;
  /**
   * Lifetime of the per-entry learning-rate multipliers that growth writes (`lr_scale.*`): `warmup` (default:
   * they return linearly to 1 over the phase's warmup — the re-warm — after which every tensor trains at the
   * nominal rate, as in Staged Training and MSG), a number of steps, or `keep` (for ever).
   */
  lrScaleSteps: number | 'keep' | 'warmup';
}

/** Defaults of `strata train`: a byte-level GPT that trains well below ln 256 in a few minutes on 2 cores. */
export const TRAIN_DEFAULTS: TrainConfig = {
  steps: 400,
  scheduleSteps: null,
  batchSize: 16,
  gradAccum: 1,
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
  explodeFactor: 2,
  explodePatience: 10,
  diagnosticsEvery: 0,
  phaseStart: 0,
  lrScaleSteps: 'warmup',
};

/** Validates a (partial) training config, filling defaults; errors name the field. */
export function parseTrainConfig(raw: unknown, contextLength?: number): TrainConfig {
  const merged = withDefaults(
    'training config',
    raw ?? {},
    TRAIN_DEFAULTS as unknown as Record<string, unknown>,
  );
  const f = configFields('train', merged);
  const lr = f.num('lr', 0, 10, true);
  const steps = f.int('steps', 0);
  const c: TrainConfig = {
    steps,
    scheduleSteps: merged.scheduleSteps === null ? null : f.int('scheduleSteps', 1),
    batchSize: f.int('batchSize', 1),
    gradAccum: f.int('gradAccum', 1, 65536),
    seqLen: f.int('seqLen', 1),
    lr,
    minLr: f.num('minLr', 0, lr),
    warmupSteps: f.int('warmupSteps', 0),
    decay: f.oneOf('decay', ['cosine', 'constant'] as const),
    beta1: f.num('beta1', 0, 0.999999),
    beta2: f.num('beta2', 0, 0.999999),
    eps: f.num('eps', 0, 1, true),
    weightDecay: f.num('weightDecay', 0, 10),
    gradClip: f.num('gradClip', 0, 1e9),
    seed: f.int('seed', 0, 2 ** 32 - 1),
    evalEvery: f.int('evalEvery', 0),
    evalBatches: f.int('evalBatches', 1),
    checkpointEvery: f.int('checkpointEvery', 0),
    valFraction: f.num('valFraction', 0, 0.9, true),
    onNonFinite: f.oneOf('onNonFinite', ['stop', 'skip'] as const),
    explodeFactor: f.num('explodeFactor', 0, 1e6),
    explodePatience: f.int('explodePatience', 1),
    diagnosticsEvery: f.int('diagnosticsEvery', 0),
    phaseStart: f.int('phaseStart', 0),
    lrScaleSteps:
      merged.lrScaleSteps === 'keep' || merged.lrScaleSteps === 'warmup'
        ? merged.lrScaleSteps
        : lrScaleStepsInt(merged.lrScaleSteps),
  };
  if (c.phaseStart > c.steps && c.steps > 0) {
    throw new StrataError(
      'E_CONFIG',
      `train.phaseStart (${c.phaseStart}) must be <= train.steps (${c.steps})`,
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

function lrScaleStepsInt(v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw new StrataError(
      'E_CONFIG',
      `train.lrScaleSteps must be "warmup", "keep" or an integer >= 0, got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

/** The lifetime of growth's learning-rate multipliers in steps (or `keep`), resolving `warmup`. */
export function lrScaleLifetime(c: Pick<TrainConfig, 'lrScaleSteps' | 'warmupSteps'>): number | 'keep' {
  return c.lrScaleSteps === 'warmup' || c.lrScaleSteps === undefined ? c.warmupSteps : c.lrScaleSteps;
}
