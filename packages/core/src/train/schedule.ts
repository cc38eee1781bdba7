import { StrataError } from '../errors.js';

/** Learning-rate schedule: linear warmup, then cosine decay to `minLr` at `totalSteps`. */
export interface ScheduleConfig {
  /** Peak learning rate. */
  lr: number;
  /** Final learning rate (default lr/10). */
  minLr: number;
  /** Linear warmup steps from 0 to `lr`. */
  warmupSteps: number;
  /** Total steps; cosine reaches `minLr` here and stays. */
  totalSteps: number;
  /** `cosine` (default) or `constant` (after warmup). */
  decay: 'cosine' | 'constant';
  /**
   * First step of the current phase (default 0). A phase re-warms from `phaseStart` and decays over the steps
   * left (`totalSteps − phaseStart`): what continued training after growth does (Staged Training's restart
   * warmup, MSG's rewound schedule).
   */
  phaseStart?: number;
}

/**
 * Learning rate for update number `step` (0-based), counted from the phase start `p = phaseStart ?? 0`:
 * warmup `lr·(step−p+1)/warmup`, then `minLr + ½(lr − minLr)(1 + cos(π·progress))` over the
 * `totalSteps − p − warmup` steps left.
 */
export function learningRateAt(step: number, s: ScheduleConfig): number {
  const p = s.phaseStart ?? 0;
  const t = Math.max(0, step - p);
  if (t < s.warmupSteps) return (s.lr * (t + 1)) / s.warmupSteps;
  if (s.decay === 'constant') return s.lr;
  const span = Math.max(1, s.totalSteps - p - s.warmupSteps);
  const progress = Math.min(1, (t - s.warmupSteps) / span);
  return s.minLr + 0.5 * (s.lr - s.minLr) * (1 + Math.cos(Math.PI * progress));
}

/** Validates a schedule, naming the offending field. */
export function validateSchedule(s: ScheduleConfig): void {
  if (!(s.lr > 0) || !Number.isFinite(s.lr))
    throw new StrataError('E_CONFIG', `train.lr must be > 0, got ${s.lr}`);
  if (!(s.minLr >= 0 && s.minLr <= s.lr))
    throw new StrataError('E_CONFIG', `train.minLr must be in [0, lr], got ${s.minLr}`);
  if (!Number.isInteger(s.warmupSteps) || s.warmupSteps < 0) {
    throw new StrataError(
      'E_CONFIG',
      `train.warmupSteps must be a non-negative integer, got ${s.warmupSteps}`,
    );
  }
}

/**
 * How long the per-entry learning-rate multipliers written by growth (`lr_scale.*`, growth guide "Optimizer
 * state") act after the phase start: `keep` (for ever), or a number of steps over which they return linearly
 * to 1 (0: dropped at once).
 */
export type LrScaleLifetime = number | 'keep';

/**
 * Weight of growth's per-entry multipliers at update `step` (0-based): 1 at the first update of the phase
 * (the multipliers as written, so the first step after growth is the small model's step), falling linearly to
 * 0 after `lifetime` updates; the multiplier applied is `1 + (s − 1)·weight`. Always 1 for `keep`.
 */
export function lrScaleWeightAt(step: number, phaseStart: number, lifetime: LrScaleLifetime): number {
  if (lifetime === 'keep') return 1;
  if (lifetime <= 0) return 0;
  return Math.min(1, Math.max(0, 1 - (step - phaseStart) / lifetime));
}
