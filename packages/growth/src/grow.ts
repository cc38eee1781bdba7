import type { LanguageModel, OptimizerState } from '@strata/core';
import { registerBuiltinGrowthRules } from './builtin-rules.js';
import { depthStage } from './depth.js';
import { getGrowthFamily, type ModelDims } from './families.js';
import { readParams, specsOf } from './host.js';
import { type NoiseGroups, noiseStage } from './noise.js';
import {
  type GrownOptimizerState,
  type GrowthTrace,
  growOptimizerState,
  type OptimizerSummary,
  optimizerSummary,
} from './optimizer.js';
import { resolveGrowth, resolveStackDepths } from './resolve.js';
import type { Ablations, Exactness } from './rules.js';
import { type Current, dimsOf, fail, type StageReport, type StageResult, worst } from './stage.js';
import { compareRuns, makeProbe, type ProbeIds, type ProbeRun, probeRun } from './verify.js';
import { type WidthRequest, widthStage } from './width/stage.js';

export { resolveGrowth, resolveStackDepths } from './resolve.js';

/** Where new blocks go when only a count or factor is given. */
export type DepthPlacement = 'interleave' | 'top' | 'bottom';

/** Depth growth in detail. */
export interface DepthSpec {
  /** Number of blocks of the grown model. */
  readonly layers?: number;
  /** Or: a factor on the number of blocks (N′ = N·factor must be an integer). */
  readonly factor?: number;
  /**
   * Or: where to insert each new block, as indices of the small model's blocks the new block goes *before*
   * (`nLayers` = on top; repeat an index to insert several there).
   */
  readonly insertAt?: readonly number[];
  /**
   * Encoder-decoder models: the stack that grows, `encoder`, `decoder` or `both` (default `both`, with a
   * `factor` only: `layers` and `insertAt` count the blocks of one stack). Encoder-only models have one
   * `encoder` stack, decoder-only models one `decoder` stack.
   */
  readonly stack?: 'encoder' | 'decoder' | 'both';
  /**
   * For `layers`/`factor`: `interleave` spreads the new blocks evenly (N → 2N puts one after every block),
   * `top` stacks them above the last block, `bottom` below the first (default `interleave`).
   */
  readonly placement?: DepthPlacement;
}

/** What to grow. Sizes not given stay; `width` alone also scales d_ff and the head count. */
export interface GrowthSpec {
  /** Factor on d_model (k; an integer for the isometric/tile maps, any ratio where an exact rule exists). */
  readonly width?: number;
  /** Or: the new d_model. */
  readonly dModel?: number;
  /** New number of attention heads (default: heads × width factor, head dim kept — as HyperCloning, arXiv 2409.12903). */
  readonly heads?: number;
  /** New head dimension (an integer multiple of the old; q, k × b^(−1/4), RoPE frequencies repeated). */
  readonly headDim?: number;
  /** Factor on d_ff (default: the d_model factor, keeping d_ff/d_model). */
  readonly ffn?: number;
  /** Or: the new d_ff. */
  readonly dFF?: number;
  /** Depth: a factor on the number of blocks, or a {@link DepthSpec}. */
  readonly depth?: number | DepthSpec;
  /**
   * Symmetry breaking (HyperCloning, arXiv 2409.12903): relative size of the paired zero-sum noise added to every internal
   * linear whose inputs are duplicated (HyperCloning's ±N); the function stays exact while copies receive
   * different gradients. GPT: noise std = `noise` × rms of the matrix; nGPT: norm-preserving noise of norm
   * `noise` on every unit vector. Default 0.
   */
  readonly noise?: number;
  /** Seed for noise and for new free entries (default 0). */
  readonly seed?: number;
  /** Allow transforms that cannot be exact (they run and report the measured difference). */
  readonly allowApprox?: boolean;
  /**
   * Residual map for integer width factors: `isometric` (Su: [h; h]/√k, eps ÷ k), `tile` (HyperCloning:
   * [h; h], eps kept, tied head via final norm ÷ k), or `auto` (isometric, except tile for strategies with
   * norms over internal widths — SubLN). Default `auto`.
   */
  readonly map?: 'auto' | 'isometric' | 'tile';
  /**
   * Residual construction for non-integer width: `zero-pad` (RMSNorm, or no norms), `average` (LayerNorm,
   * pre-norm strategies, and Mix-LN without Post-LN layers), or `auto` (the one the strategy supports).
   * Default `auto`.
   */
  readonly nonInteger?: 'auto' | 'zero-pad' | 'average';
}

/** Options of {@link growModel}. */
export interface GrowOptions {
  /** The small model's AdamW state (`exportState()` / checkpoint): grown with the weights (Growth guide, "Optimizer state"). */
  readonly optimizer?: OptimizerState;
  /** Moments of new entries: `zero` (default) or `seed-v` (see `growOptimizerState`). */
  readonly newMoments?: 'zero' | 'seed-v';
  /** Adam β₁, β₂ of the run, for the report of the first update of fresh entries (default 0.9, 0.95). */
  readonly adam?: {
    /** Adam β₁. */
    readonly beta1: number;
    /** Adam β₂. */
    readonly beta2: number;
  };
  /** Probe batch for the measurements (default: 2 random sequences of min(16, context) tokens). */
  readonly probe?: ProbeIds;
  /**
   * Tolerance on max |Δlogits| relative to max |logit| for exact transforms (default 1e-5, Growth guide, "Verifying a transform";
   * transforms exact up to eps use 10× this).
   */
  readonly tolerance?: number;
  /** DeepNorm depth: keep α (default) or absorb α′/α (DeepNet, arXiv 2203.00555; Growth guide, "Depth"). */
  readonly deepnormAlpha?: 'keep' | 'absorb';
  /** New blocks start as copies of the block below them (default) or from the grown model's fresh init. */
  readonly depthInit?: 'copy' | 'random';
  /** Negative controls for tests (see {@link Ablations}). */
  readonly ablate?: Ablations;
  /** Seed of the grown model's fresh init (only new free entries and `depthInit: 'random'` use it; default 0). */
  readonly initSeed?: number;
}

/** The report of one transform: what it did ({@link StageReport}) and what it measured. */
export interface TransformReport extends StageReport {
  /** max |Δlogits| between the model before and after this transform, on the probe batch. */
  readonly maxAbsDeltaLogits: number;
  /** `maxAbsDeltaLogits` relative to the largest |logit| of the model before it. */
  readonly relDeltaLogits: number;
  /** Relative tolerance this transform is held to. */
  readonly tolerance: number;
  /** Whether `relDeltaLogits` is within `tolerance`. */
  readonly withinTolerance: boolean;
}

/** The report of a whole growth. */
export interface GrowthReport {
  /** Model family of both models. */
  readonly family: string;
  /** Residual-normalization strategy (GPT family). */
  readonly strategy?: string;
  /** Sizes of the small model. */
  readonly from: ModelDims;
  /** Sizes of the grown model. */
  readonly to: ModelDims;
  /** One report per transform, in the order applied. */
  readonly transforms: readonly TransformReport[];
  /** Worst exactness over the transforms. */
  readonly exactness: Exactness;
  /** True when no transform is approximate (exact, or exact up to the norm eps). */
  readonly exact: boolean;
  /** max |Δlogits| between the small and the grown model on the probe batch. */
  readonly maxAbsDeltaLogits: number;
  /** `maxAbsDeltaLogits` relative to `maxAbsLogit`. */
  readonly relDeltaLogits: number;
  /** Largest |logit| of the small model on the probe batch. */
  readonly maxAbsLogit: number;
  /** Probe next-token loss of the small model and of the grown model. */
  readonly lossBefore: number;
  /** Probe next-token loss of the grown model (equal to `lossBefore` when exact). */
  readonly lossAfter: number;
  /** Relative tolerance of the whole growth (the loosest of its transforms). */
  readonly tolerance: number;
  /** Whether `relDeltaLogits` is within `tolerance`. */
  readonly withinTolerance: boolean;
  /** Size of the probe batch the differences were measured on. */
  readonly probe: {
    /** Sequences. */
    readonly batch: number;
    /** Tokens per sequence. */
    readonly seq: number;
  };
  /** Scalar parameter counts. */
  readonly parameters: {
    /** Of the small model. */
    readonly before: number;
    /** Of the grown model. */
    readonly after: number;
  };
  /** Optimizer-state growth, when a state was given. */
  readonly optimizer?: OptimizerSummary;
}

/** What {@link growModel} returns. */
export interface GrowResult {
  /** The grown model (the caller disposes it; the input model is left untouched). */
  readonly model: LanguageModel;
  /** Sizes, exactness and measured differences of every transform. */
  readonly report: GrowthReport;
  /** Provenance of every grown entry, for {@link growOptimizerState}. */
  readonly trace: GrowthTrace;
  /** The grown optimizer state, when `options.optimizer` was given. */
  readonly optimizer?: GrownOptimizerState;
}

interface StageOutcome {
  readonly report: TransformReport;
  readonly trace: GrowthTrace['stages'][number];
}

/** A transform of the pipeline: the next model from the current one. */
type Transform = (cur: Current) => StageResult | Promise<StageResult>;

/**
 * Runs the transforms in order, measuring each against the model before it on the probe batch; disposes
 * every intermediate model (not `start`'s) and, on error, the current one.
 */
async function runPipeline(
  start: Current,
  transforms: readonly Transform[],
  probe: ProbeIds,
  tol: number,
): Promise<{ first: ProbeRun; last: ProbeRun; cur: Current; outcomes: StageOutcome[] }> {
  const first = await probeRun(start.model, probe);
  let prev = first;
  let cur = start;
  const outcomes: StageOutcome[] = [];
  try {
    for (const transform of transforms) {
      const r = await transform(cur);
      let run: ProbeRun;
      try {
        run = await probeRun(r.next.model, probe);
      } catch (e) {
        r.next.model.dispose();
        throw e;
      }
      const check = compareRuns(prev, run);
      const t = r.report.exactness === 'eps' ? tol * 10 : tol;
      const report: TransformReport = {
        ...r.report,
        maxAbsDeltaLogits: check.maxAbsDeltaLogits,
        relDeltaLogits: check.relDeltaLogits,
        tolerance: t,
        withinTolerance: check.relDeltaLogits <= t,
      };
      outcomes.push({ trace: r.trace, report });
      if (cur !== start) cur.model.dispose();
      cur = r.next;
      prev = run;
    }
  } catch (e) {
    if (cur !== start) cur.model.dispose();
    throw e;
  }
  return { first, last: prev, cur, outcomes };
}

/**
 * Grows a trained model into a larger one that computes the same function (Growth guide): FFN width,
 * d_model (with heads or head dim), depth, then optional symmetry breaking, each as a separate transform whose
 * max |Δlogits| is measured on a probe batch. A transform that cannot be exact is refused with the reason,
 * unless `spec.allowApprox`. Strategies and families declare their parameters (see
 * {@link registerGrowthRules}, `registerGrowthFamily`); an undeclared strategy is refused unless approximation
 * is allowed.
 *
 * ```ts
 * const { model: big, report } = await growModel(small, { width: 2, depth: 2 });
 * console.log(report.maxAbsDeltaLogits, report.exact);
 * ```
 */
export async function growModel(
  model: LanguageModel,
  spec: GrowthSpec,
  options: GrowOptions = {},
): Promise<GrowResult> {
  registerBuiltinGrowthRules();
  const family = getGrowthFamily(model.family);
  if (model.config.block === 'gau')
    fail(
      'growth of GAU layers (model.block "gau") is not supported: their fused [u|v|z] projection, single-head key size and q/k scales have no growth rules yet',
    );
  const info0 = family.info(model.config);
  const { dims } = resolveGrowth(info0, { ...spec, depth: undefined });
  const depths = resolveStackDepths(info0, spec);
  const insertAt = depths.flatMap((d) => d.insertAt);
  const noise = spec.noise ?? 0;
  const widthChange = dims.dModel !== info0.dModel || dims.nHeads !== info0.nHeads;
  const ffnChange = dims.dFF !== info0.dFF;
  if (!widthChange && !ffnChange && insertAt.length === 0 && !(noise > 0))
    fail('nothing to grow: give a width, heads, head dim, FFN or depth change');
  const groups: NoiseGroups = {};
  const seeds = { seed: spec.seed ?? 0, initSeed: options.initSeed ?? 0 };
  const width: WidthRequest = {
    ...(spec.map ? { map: spec.map } : {}),
    ...(spec.nonInteger ? { nonInteger: spec.nonInteger } : {}),
    allowApprox: spec.allowApprox === true,
    ...seeds,
    ...(options.ablate ? { ablate: options.ablate } : {}),
  };
  const transforms: Transform[] = [];
  if (ffnChange)
    transforms.push((c) => widthStage('ffn', c, family, { ...dimsOf(c.info), dFF: dims.dFF }, width, groups));
  if (widthChange)
    transforms.push((c) =>
      widthStage('width', c, family, { ...dims, nLayers: c.info.nLayers }, width, groups),
    );
  for (const d of depths)
    if (d.insertAt.length)
      transforms.push((c) =>
        depthStage(
          c,
          family,
          d.insertAt,
          { ...options, ...seeds, allowApprox: spec.allowApprox === true },
          d.stack,
        ),
      );
  if (noise > 0) transforms.push((c) => noiseStage(c, family, groups, noise, seeds.seed, seeds.initSeed));

  const probe =
    options.probe ??
    family.probe?.(model.config, seeds.seed + 1) ??
    makeProbe(info0.vocabSize, Math.min(16, info0.contextLength), 2, seeds.seed + 1);
  const start: Current = {
    model,
    values: await readParams(model),
    specs: specsOf(model),
    config: model.config,
    info: info0,
  };
  const tol = options.tolerance ?? 1e-5;
  const { first, last, cur, outcomes } = await runPipeline(start, transforms, probe, tol);
  const trace: GrowthTrace = { stages: outcomes.map((o) => o.trace) };
  const optimizer = options.optimizer
    ? growOptimizerState(
        options.optimizer,
        trace,
        options.newMoments ? { newMoments: options.newMoments } : {},
      )
    : undefined;
  return {
    model: cur.model,
    report: growthReport(model, cur, outcomes, first, last, probe, tol, optimizer, options.adam),
    trace,
    ...(optimizer ? { optimizer } : {}),
  };
}

/** The report of a whole growth from its measured transforms. */
function growthReport(
  model: LanguageModel,
  cur: Current,
  outcomes: readonly StageOutcome[],
  first: ProbeRun,
  last: ProbeRun,
  probe: ProbeIds,
  tol: number,
  optimizer: GrownOptimizerState | undefined,
  adam: GrowOptions['adam'],
): GrowthReport {
  const overall = compareRuns(first, last);
  const transforms = outcomes.map((o) => o.report);
  const exactness = worst(transforms.map((t) => t.exactness));
  const tolerance = exactness === 'eps' ? tol * 10 : tol;
  const info0 = getGrowthFamily(model.family).info(model.config);
  return {
    family: model.family,
    ...(info0.strategy ? { strategy: info0.strategy } : {}),
    from: dimsOf(info0),
    to: dimsOf(cur.info),
    transforms,
    exactness,
    exact: exactness !== 'approx',
    maxAbsDeltaLogits: overall.maxAbsDeltaLogits,
    relDeltaLogits: overall.relDeltaLogits,
    maxAbsLogit: overall.maxAbsLogit,
    lossBefore: overall.lossSmall,
    lossAfter: overall.lossBig,
    tolerance,
    withinTolerance: overall.relDeltaLogits <= tolerance,
    probe: { batch: probe.length, seq: probe[0]?.length ?? 0 },
    parameters: { before: model.params.count(), after: cur.model.params.count() },
    ...(optimizer ? { optimizer: optimizerSummary(optimizer, adam ?? { beta1: 0.9, beta2: 0.95 }) } : {}),
  };
}
