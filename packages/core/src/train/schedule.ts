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
}

/**
 * Learning rate for update number `step` (0-based):
 * warmup `lr·(step+1)/warmup`, then `minLr + ½(lr − minLr)(1 + cos(π·progress))`.
 */
export function learningRateAt(step: number, s: ScheduleConfig): number {
  if (step < s.warmupSteps) return (s.lr * (step + 1)) / s.warmupSteps;
  if (s.decay === 'constant') return s.lr;
  const span = Math.max(1, s.totalSteps - s.warmupSteps);
  const progress = Math.min(1, (step - s.warmupSteps) / span);
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
