/**
 * The width transforms as one rebuild: the residual, head, head-dim and FFN units each plan the map of their
 * space ({@link planResidual}, {@link planHeads}, {@link planHeadDim}, {@link planFfn}); this stage builds the
 * grown model and maps every tensor through the maps of its axes (its layout: growth guide "Width").
 *
 * @module
 */
import { type ParamSpec, Rng } from '@strata/core';
import type { FamilyInfo, GrowthFamily, ModelDims } from '../families.js';
import type { StageTensor } from '../host.js';
import { specsOf } from '../host.js';
import { mapTensor } from '../maptensor.js';
import type { NoiseGroups } from '../noise.js';
import { type Ablations, getGrowthRules, type StrategyGrowthRules } from '../rules.js';
import { type AxisMap, identityMap, type ParamLayout, type SpaceMap, type SpaceName } from '../spaces.js';
import {
  addOnce,
  assign,
  buildModel,
  type Current,
  dimsOf,
  fail,
  newLog,
  type PlanLog,
  refuse,
  type StageResult,
  traceOf,
} from '../stage.js';
import { planFfn } from './ffn.js';
import { planHeadDim, planHeads } from './heads.js';
import { planResidual } from './residual.js';
import { splitCopiedRows } from './split.js';

/** The choices of a width stage. */
export interface WidthRequest {
  readonly map?: 'auto' | 'isometric' | 'tile';
  readonly nonInteger?: 'auto' | 'zero-pad' | 'average';
  readonly allowApprox?: boolean;
  /** Seed for new free entries and row splits. */
  readonly seed?: number;
  /** Seed of the grown model's fresh init. */
  readonly initSeed?: number;
  readonly ablate?: Ablations;
}

type Maps = Record<Exclude<SpaceName, 'fixed'>, SpaceMap>;

/**
 * Grows `cur` to the sizes `t` (d_model, heads, head dim, d_ff; depth unchanged), recording the copy groups
 * of every grown space in `groups` for the noise stage.
 */
export function widthStage(
  name: 'ffn' | 'width',
  cur: Current,
  family: GrowthFamily,
  t: ModelDims,
  req: WidthRequest,
  groups: NoiseGroups,
): StageResult {
  const info = cur.info;
  const rules = info.strategy ? getGrowthRules(info.strategy) : undefined;
  const log = newLog();
  const ab = req.ablate ?? {};
  const residual = planResidual(info, cur.specs, family, rules, { ...req, dModel: t.dModel }, log);
  const normEps = info.normEps !== undefined ? { normEps: info.normEps * residual.epsFactor } : {};
  const grownConfig = (extra: Record<string, unknown> = {}) =>
    family.config(cur.config, { ...t, nLayers: info.nLayers, ...normEps, ...extra });
  const headDim = planHeadDim(info, family, t.headDim, () => grownConfig(), ab, log);
  const heads = planHeads(info, family, rules, t.nHeads, headDim, log);
  const maps: Maps = { residual: residual.map, ...heads, ffn: planFfn(info, family, rules, t.dFF, log) };
  if (info.strategy && !rules)
    log.reasons.push(`strategy "${info.strategy}" declares no growth rules (registerGrowthRules)`);
  if (ab.ngptScaleFix === false && family.adjust && t.dModel !== info.dModel)
    log.reasons.push('ablation: s_ν not rescaled for the new d_model (negative control)');
  if (log.reasons.length && !req.allowApprox) refuse(name, log.reasons);
  for (const s of ['residual', 'attn', 'qkv', 'ffn'] as const)
    if (!maps[s].identity) groups[s] = maps[s].groups;

  const raw = grownConfig(headDim.ropeRepeat !== undefined ? { ropeRepeat: headDim.ropeRepeat } : {});
  const big = buildModel(family.name, raw, req.initSeed ?? 0);
  const bigSpecs = specsOf(big);
  let values: Map<string, StageTensor>;
  try {
    values = mapAll(name, cur, bigSpecs, family, rules, maps, req, log);
    for (const n of residual.headNormFix) scaleTensor(values.get(n)!, 1 / residual.k);
  } catch (e) {
    big.dispose();
    throw e;
  }
  if (log.reasons.length && !req.allowApprox) {
    big.dispose();
    refuse(name, log.reasons);
  }
  family.adjust?.(values, bigSpecs, {
    smallConfig: cur.config,
    bigConfig: big.config,
    smallSpecOf: (n) => cur.specs.get(n),
    ...(ab.ngptScaleFix === false ? { ablate: { ngptScaleFix: false as const } } : {}),
    note: (s) => addOnce(log.notes, s),
  });
  assign(big, values);
  return {
    next: { model: big, values, specs: bigSpecs, config: big.config, info: family.info(big.config) },
    report: {
      name,
      description: log.parts.join('; '),
      exactness: log.reasons.length ? 'approx' : 'exact',
      reasons: log.reasons,
      notes: log.notes,
      from: dimsOf(info),
      to: dimsOf(family.info(big.config)),
    },
    trace: traceOf(name, values),
  };
}

/** Maps every tensor of the small model through the maps of its axes. */
function mapAll(
  name: string,
  cur: Current,
  bigSpecs: ReadonlyMap<string, ParamSpec>,
  family: GrowthFamily,
  rules: StrategyGrowthRules | undefined,
  maps: Maps,
  req: WidthRequest,
  log: PlanLog,
): Map<string, StageTensor> {
  const rng = Rng.derive(req.seed ?? 0, 'growth', name);
  const splitRng = Rng.derive(req.seed ?? 0, 'growth', name, 'split');
  const values = new Map<string, StageTensor>();
  for (const bs of bigSpecs.values()) {
    const ss = cur.specs.get(bs.name);
    const x = cur.values.get(bs.name);
    if (!ss || !x) fail(`the grown model has a parameter "${bs.name}" the small model lacks`);
    const layout = layoutOf(ss, family, cur.info, rules, log.reasons);
    const axes: AxisMap[] = layout.map((a, i) =>
      a.space === 'fixed' ? identityMap(x.shape[i]!).axis('fixed') : maps[a.space].axis(a.use),
    );
    const out = mapTensor(bs.name, x, axes, rng);
    const read = layout[0];
    if (
      family.internalRead === 'copy' &&
      layout.length === 2 &&
      read?.use === 'read' &&
      (read.space === 'attn' || read.space === 'ffn') &&
      !maps[read.space].uniform
    ) {
      splitCopiedRows(out, maps[read.space].groups, splitRng);
    }
    values.set(bs.name, out);
  }
  return values;
}

/** Multiplies a grown tensor (and its value coefficients) by `f`. */
function scaleTensor(t: StageTensor, f: number): void {
  const data = t.data as Float64Array;
  const s = t.origin.s as Float64Array;
  for (let i = 0; i < data.length; i++) {
    data[i] = data[i]! * f;
    s[i] = s[i]! * f;
  }
}

function layoutOf(
  spec: ParamSpec,
  family: GrowthFamily,
  info: FamilyInfo,
  rules: StrategyGrowthRules | undefined,
  reasons: string[],
): ParamLayout {
  const ctx = { dModel: info.dModel, dFF: info.dFF };
  const l = family.layout(spec, info, ctx) ?? rules?.layout(spec, ctx);
  if (l) return l;
  const inferred = inferLayout(spec, info);
  const why = rules
    ? `parameter "${spec.name}" is not declared by the growth rules of strategy "${info.strategy}"`
    : `strategy "${info.strategy}" declares no growth rules (registerGrowthRules)`;
  addOnce(reasons, why);
  if (!inferred) fail(`cannot grow parameter "${spec.name}" (shape [${spec.shape}]): ${why}`);
  return inferred;
}

/** Shape-based guess for undeclared strategy parameters (only used with allowApprox). */
function inferLayout(spec: ParamSpec, info: FamilyInfo): ParamLayout | undefined {
  if (spec.shape.length === 1) {
    const n = spec.shape[0]!;
    const use = spec.role === 'norm_gain' ? 'gain' : spec.role === 'norm_bias' ? 'bias' : 'mult';
    if (n === 1) return [{ space: 'fixed', use: 'fixed' }];
    if (n === info.dModel) return [{ space: 'residual', use }];
    if (n === info.dFF) return [{ space: 'ffn', use }];
  }
  return undefined;
}
