/**
 * Schedule phases of `strata train --resume`: a grown checkpoint starts a new phase (re-warm + a fresh cosine
 * over the new budget, as Staged Training and MSG do), and the lifetime of growth's per-entry learning-rate
 * multipliers (`lr_scale.*`) is chosen here.
 *
 * @module
 */
import { lrScaleLifetime, StrataError, type TrainConfig } from '@strata/core';
import { type ParsedArgs, UsageError } from './args.js';

/** The step `strata grow` recorded in a run state (`state.growth.step`), if any. */
export function growthStep(state: Readonly<Record<string, unknown>> | undefined): number | undefined {
  const g = state?.growth as { step?: unknown } | undefined;
  return typeof g?.step === 'number' ? g.step : undefined;
}

/** Parses `--lr-scale`: `warmup`, `keep` or a number of steps. */
export function parseLrScale(v: unknown): TrainConfig['lrScaleSteps'] {
  const s = String(v);
  if (s === 'warmup' || s === 'keep') return s;
  const n = Number(s);
  if (s.trim() === '' || !Number.isInteger(n) || n < 0)
    throw new UsageError(`--lr-scale must be warmup, keep or a number of steps >= 0, got "${s}"`);
  return n;
}

/** What a resume changes in the saved training config, and the phase record for the metrics. */
export interface ResumePhase {
  /** Fields over the saved training config. */
  readonly training: Partial<TrainConfig>;
  /** The metrics record of a new phase (undefined: the saved schedule continues). */
  readonly event?: Record<string, unknown>;
}

/**
 * Decides the schedule of a resumed run from `--phase`, `--rewarm`, `--lr`, `--min-lr` and `--lr-scale`.
 * `--phase` defaults to `new` for the first resume of a grown checkpoint (its phase starts at the growth step)
 * and to `continue` otherwise. A new phase may set its own peak rate (`--lr`); its floor is `--min-lr`, or the
 * saved floor scaled with the peak (the saved lr/minLr ratio is kept).
 */
export function resumePhase(
  args: ParsedArgs,
  state: Readonly<Record<string, unknown>> & { step: number },
  saved: Readonly<Record<string, unknown>>,
): ResumePhase {
  const grownAt = growthStep(state);
  const savedStart = typeof saved.phaseStart === 'number' ? saved.phaseStart : 0;
  const pending = grownAt !== undefined && savedStart < grownAt;
  const phase = (args.phase as 'new' | 'continue' | undefined) ?? (pending ? 'new' : 'continue');
  const training: Partial<TrainConfig> = {};
  if (args['lr-scale'] !== undefined) training.lrScaleSteps = parseLrScale(args['lr-scale']);
  if (phase === 'continue') {
    for (const k of ['rewarm', 'lr', 'min-lr'])
      if (args[k] !== undefined)
        throw new UsageError(
          `--${k} sets the schedule of a new phase: give it with --phase new (a continued schedule keeps its rates)`,
        );
    return { training };
  }
  training.phaseStart = state.step;
  if (args.rewarm !== undefined) training.warmupSteps = Number(args.rewarm);
  if (args.lr !== undefined) {
    const lr = Number(args.lr);
    if (!(lr > 0 && Number.isFinite(lr)))
      throw new UsageError(`--lr must be a positive number, got ${String(args.lr)}`);
    training.lr = lr;
    const savedLr = saved.lr as number;
    const savedMin = saved.minLr as number;
    training.minLr = args['min-lr'] !== undefined ? Number(args['min-lr']) : (savedMin / savedLr) * lr;
  } else if (args['min-lr'] !== undefined) training.minLr = Number(args['min-lr']);
  const warmupSteps = training.warmupSteps ?? (saved.warmupSteps as number | undefined) ?? 0;
  const lrScaleSteps =
    training.lrScaleSteps ?? (saved.lrScaleSteps as TrainConfig['lrScaleSteps']) ?? 'warmup';
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0)
    throw new StrataError('E_CONFIG', `--rewarm must be an integer >= 0, got ${args.rewarm}`);
  return {
    training,
    event: {
      step: state.step,
      event: 'phase',
      phaseStart: state.step,
      reason: pending ? 'growth' : 'resume',
      warmupSteps,
      lr: training.lr ?? saved.lr,
      lrScaleSteps: lrScaleLifetime({ lrScaleSteps, warmupSteps }),
    },
  };
}

/** One line describing a new phase, for the progress log. */
export function describePhase(event: Readonly<Record<string, unknown>>, steps: number): string {
  const life = event.lrScaleSteps;
  return (
    `new schedule phase at step ${event.phaseStart}${event.reason === 'growth' ? ' (grown checkpoint)' : ''}: ` +
    `re-warm over ${event.warmupSteps} steps, then cosine to step ${steps}; ` +
    `growth LR multipliers ${life === 'keep' ? 'kept' : `return to 1 over ${life} steps`}`
  );
}
