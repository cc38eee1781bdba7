/**
 * Growth arms of `strata compare`: a variant with `--grow-at F --grow "FLAGS"` trains the small model its own
 * flags describe, grows it with `strata grow FLAGS` (function-preserving, Adam state included) and trains the
 * grown model on in a new schedule phase (re-warm, then a fresh cosine over the rest of the budget), as Staged
 * Training and MSG do.
 *
 * Equal compute by construction: `--steps T` counts steps of the *grown* model, so a growth arm spends the
 * FLOPs of T grown-model steps, the small phase included. A fraction F of that budget goes to the small model:
 * S = round(F·T·C_grown / C_small) small steps, then T − round(F·T) grown steps (C = training FLOPs per token,
 * {@link trainingFlops}; both phases see the same tokens per step).
 *
 * @module
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  isCheckpointDir,
  type LanguageModel,
  readMetrics,
  StrataError,
  trainingFlops,
  writeFileAtomic,
} from '@strata/core';
import { type GrowthSpec, growModel } from '@strata/growth';
import { type ParsedArgs, parseCommandArgs, splitWords, UsageError } from '../args.js';
import { createModel } from '../run-training.js';
import { growSpec } from '../specs.js';
import { run as growRun, growthSpecFromArgs } from './grow.js';
import { planFreshRun, resumeRun } from './train.js';

/** Variant flags that make a growth arm; they and the grown phase's schedule flags never reach the small run. */
export const GROWTH_FLAGS = ['grow-at', 'grow', 'grown-lr', 'rewarm', 'lr-scale'] as const;

/** `strata grow` flags a growth arm may not give (the comparison chooses them). */
const GROW_FLAGS_REFUSED = ['checkpoint', 'out', 'force', 'json', 'backend', 'plugin', 'verify'];

/** A growth arm read from a run's flags. */
export interface GrowthArm {
  /** Fraction of the FLOP budget spent on the small model, in (0, 1). */
  at: number;
  /** The `strata grow` flags (parsed). */
  growArgs: ParsedArgs;
  /** The growth they describe. */
  spec: GrowthSpec;
  /** The grown phase's peak learning rate as a multiple of the run's (`--grown-lr`, default 1). */
  grownLr: number;
}

/** The growth arm of a run's flags, or undefined for an ordinary run; bad flags are one-line usage errors. */
export function growthArmOf(args: ParsedArgs, label = 'variant'): GrowthArm | undefined {
  const at = args['grow-at'];
  const grow = args.grow;
  if (at === undefined && grow === undefined) {
    for (const k of ['grown-lr', 'rewarm', 'lr-scale'])
      if (args[k] !== undefined)
        throw new UsageError(
          `${label}: --${k} applies to the grown phase of a growth arm; give --grow-at and --grow`,
        );
    return undefined;
  }
  if (at === undefined || grow === undefined)
    throw new UsageError(`${label}: a growth arm needs both --grow-at FRACTION and --grow "GROW FLAGS"`);
  const f = Number(at);
  if (!Number.isFinite(f) || f <= 0 || f >= 1)
    throw new UsageError(
      `${label}: --grow-at must be a fraction of the FLOP budget in (0, 1), got ${String(at)}`,
    );
  const growArgs = parseCommandArgs(growSpec, splitWords(String(grow)), { defaults: false });
  const refused = GROW_FLAGS_REFUSED.filter((k) => growArgs[k] !== undefined);
  if (refused.length)
    throw new UsageError(
      `${label}: --grow may not set ${refused.map((k) => `--${k}`).join(', ')} (the comparison chooses them)`,
    );
  for (const k of Object.keys(growArgs)) if (growArgs[k] === undefined) delete growArgs[k];
  const spec = growthSpecFromArgs(growArgs);
  if (!spec.width && !spec.heads && !spec.headDim && !spec.ffn && !spec.depth)
    throw new UsageError(
      `${label}: --grow "${String(grow)}" grows nothing (give --width, --heads, --ffn, --depth …)`,
    );
  const grownLr = args['grown-lr'] === undefined ? 1 : Number(args['grown-lr']);
  if (!(grownLr > 0 && Number.isFinite(grownLr)))
    throw new UsageError(`${label}: --grown-lr must be a positive factor, got ${String(args['grown-lr'])}`);
  return { at: f, growArgs, spec, grownLr };
}

/** The flags of the small phase: the run's flags without the growth arm's. */
export function smallPhaseArgs(args: ParsedArgs): ParsedArgs {
  const out = { ...args };
  for (const k of GROWTH_FLAGS) delete out[k];
  return out;
}

/** How a growth arm splits its budget. */
export interface GrowthBudget {
  /** Steps of the small model. */
  smallSteps: number;
  /** Steps of the grown model (the run ends at step `smallSteps + grownSteps`). */
  grownSteps: number;
  /** Training FLOPs per token of the small model. */
  smallFlopsPerToken: number;
  /** Training FLOPs per token of the grown model. */
  grownFlopsPerToken: number;
  /** Parameters of the small model. */
  smallParams: number;
  /** Parameters of the grown model. */
  grownParams: number;
}

/**
 * Splits the budget of a growth arm (module doc): builds the small model of the flags and grows an untrained
 * copy to learn the grown model's FLOPs per token. Needs the runtime set up (backend, plugins).
 */
export async function growthBudget(args: ParsedArgs, arm: GrowthArm): Promise<GrowthBudget> {
  const { family, raw, training } = planFreshRun(smallPhaseArgs(args), { dataSeed: 1 });
  const small = createModel(family, raw, training.seed);
  let big: LanguageModel | undefined;
  try {
    // the family's default probe (an encoder-decoder needs its packed rows)
    big = (await growModel(small, { ...arm.spec, allowApprox: true, noise: 0 })).model;
    const cs = trainingFlops(small, training.seqLen).flopsPerToken;
    const cl = trainingFlops(big, training.seqLen).flopsPerToken;
    const T = training.steps;
    const smallSteps = Math.max(1, Math.round((arm.at * T * cl) / cs));
    const grownSteps = T - Math.round(arm.at * T);
    if (grownSteps < 1)
      throw new UsageError(`--grow-at ${arm.at} leaves no step for the grown model out of --steps ${T}`);
    return {
      smallSteps,
      grownSteps,
      smallFlopsPerToken: cs,
      grownFlopsPerToken: cl,
      smallParams: small.params.count(),
      grownParams: big.params.count(),
    };
  } finally {
    small.dispose();
    big?.dispose();
  }
}

/** What a growth run adds to its `result.json`. */
export interface GrowthRecord {
  /** The step at which the model was grown (the small phase's last step). */
  step: number;
  /** Training FLOPs per token of the small model (steps ≤ `step`). */
  smallFlopsPerToken: number;
  /** Parameters of the small model. */
  smallParams: number;
  /** max |Δlogits| of the growth on its probe batch (function preservation, as `strata grow` reports it). */
  maxAbsDeltaLogits: number;
  /** The grown phase's peak learning rate as a multiple of the run's (`--grown-lr`; absent: 1). */
  grownLr?: number;
  /** The run's metrics (small phase carried over), relative to the run folder. */
  metrics: string;
}

/** The outcome of one phase, as the comparison's job runner reports it. */
export interface PhaseOutcome {
  status: 'ok' | 'diverged';
  steps: number;
  finalValLoss: number;
  trainSeconds: number;
  divergedAt?: number;
}

/**
 * Trains one growth run in `dir` (resumable at every phase): `dir/small` (the small model, `trainSmall` runs it
 * like any run of the grid), `dir/grown` (`strata grow`, then `strata train --resume` in a new phase).
 * Returns undefined when interrupted.
 */
export async function runGrowthJob(
  dir: string,
  args: ParsedArgs,
  arm: GrowthArm,
  trainSmall: (runDir: string, args: ParsedArgs) => Promise<PhaseOutcome | undefined>,
): Promise<{ outcome: PhaseOutcome; budget: GrowthBudget; growth?: GrowthRecord } | undefined> {
  const budget = await growthBudget(args, arm);
  const smallDir = join(dir, 'small');
  const smallDone = join(smallDir, 'phase.json');
  let small: PhaseOutcome | undefined = existsSync(smallDone)
    ? (JSON.parse(readFileSync(smallDone, 'utf8')) as PhaseOutcome)
    : undefined;
  if (!small) {
    mkdirSync(smallDir, { recursive: true });
    small = await trainSmall(smallDir, { ...smallPhaseArgs(args), steps: budget.smallSteps });
    if (!small) return undefined;
    await writeFileAtomic(smallDone, `${JSON.stringify(small, null, 2)}\n`);
  }
  if (small.status === 'diverged') return { outcome: small, budget };
  const grownDir = join(dir, 'grown');
  const grown = await isCheckpointDir(join(grownDir, 'checkpoint')).catch(() => false);
  if (!grown || !existsSync(join(grownDir, 'growth.json')) || !existsSync(join(grownDir, 'metrics.jsonl'))) {
    const code = await growRun({
      seed: args.seed,
      ...arm.growArgs,
      checkpoint: join(smallDir, 'checkpoint'),
      out: grownDir,
      force: true,
      json: true,
      ...(args.backend !== undefined ? { backend: args.backend } : {}),
      ...(args.plugin !== undefined ? { plugin: args.plugin } : {}),
    });
    if (code !== 0) throw new StrataError('E_GROWTH', `growing ${smallDir} failed (exit ${code})`);
  }
  const growthJson = JSON.parse(readFileSync(join(grownDir, 'growth.json'), 'utf8')) as {
    step: number;
    maxAbsDeltaLogits: number;
  };
  const resumeArgs: ParsedArgs = {
    resume: grownDir,
    steps: budget.smallSteps + budget.grownSteps,
    json: true,
  };
  for (const k of ['rewarm', 'lr-scale', 'backend', 'plugin', 'workers', 'recompute', 'diagnostics'] as const)
    if (args[k] !== undefined) resumeArgs[k] = args[k];
  if (args.rewarm !== undefined) resumeArgs.phase = 'new';
  if (arm.grownLr !== 1) {
    resumeArgs.phase = 'new';
    resumeArgs.lr = Number(args.lr) * arm.grownLr;
  }
  const { code, result } = await resumeRun(resumeArgs, { sample: false });
  if (result?.interrupted) return undefined;
  if (!result && code !== 0) throw new StrataError('E_IO', `continuing ${grownDir} failed (exit ${code})`);
  // Seconds and the final loss from the metrics: they span every invocation (an interrupted phase resumed).
  let seconds = 0;
  let lastVal = Number.NaN;
  for (const r of readMetrics(join(grownDir, 'metrics.jsonl'))) {
    if (typeof r.ms === 'number') seconds += r.ms / 1000;
    if (typeof r.valLoss === 'number') lastVal = r.valLoss;
  }
  const growth: GrowthRecord = {
    step: growthJson.step,
    smallFlopsPerToken: budget.smallFlopsPerToken,
    smallParams: budget.smallParams,
    maxAbsDeltaLogits: growthJson.maxAbsDeltaLogits,
    ...(arm.grownLr !== 1 ? { grownLr: arm.grownLr } : {}),
    metrics: 'grown/metrics.jsonl',
  };
  const outcome: PhaseOutcome = result?.diverged
    ? {
        status: 'diverged',
        steps: result.steps,
        finalValLoss: Number.NaN,
        trainSeconds: seconds,
        divergedAt: result.diverged.step,
      }
    : {
        status: 'ok',
        steps: result?.steps ?? budget.smallSteps + budget.grownSteps,
        finalValLoss: result?.finalValLoss ?? lastVal,
        trainSeconds: seconds,
      };
  return { outcome, budget, growth };
}
