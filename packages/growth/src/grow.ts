import {
  getModelFamily,
  type LanguageModel,
  type ModelConfigBase,
  type OptimizerState,
  type ParamSpec,
  Rng,
  StrataError,
} from '@strata/core';
import { deepNormAbsorb, registerBuiltinGrowthRules, zeroOutputDepthRule } from './builtin-rules.js';
import {
  type AdjustContext,
  acceptsConfigKey,
  type FamilyInfo,
  type GrowthFamily,
  getGrowthFamily,
  type ModelDims,
  ropeRepeatKey,
} from './families.js';
import {
  type HostTensor,
  identityOrigin,
  type Origin,
  readParams,
  type StageTensor,
  specsOf,
  toFloat32,
} from './host.js';
import { mapTensor } from './maptensor.js';
import { addNoise, type NoiseGroups } from './noise.js';
import {
  freshFirstUpdate,
  type GrownOptimizerState,
  type GrowthTrace,
  growOptimizerState,
  type StageTrace,
} from './optimizer.js';
import {
  type Ablations,
  type DepthChoices,
  type DepthEditor,
  type DepthPlanContext,
  type DepthRule,
  type DepthRun,
  type Exactness,
  getGrowthRules,
  type StrategyGrowthRules,
} from './rules.js';
import {
  type AxisMap,
  headMap,
  identityMap,
  type ParamLayout,
  qkvMap,
  type ResidualMode,
  residualEpsFactor,
  residualMap,
  type SpaceMap,
  type SpaceName,
  unitMap,
} from './spaces.js';
import { compareRuns, makeProbe, type ProbeIds, type ProbeRun, probeRun } from './verify.js';

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
  /** New number of attention heads (default: heads × width factor, head dim kept — growth.md §0 concl. 2). */
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
   * Symmetry breaking (growth.md §2.7): relative size of the paired zero-sum noise added to every internal
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
   * pre-norm strategies), or `auto` (the one the strategy supports). Default `auto`.
   */
  readonly nonInteger?: 'auto' | 'zero-pad' | 'average';
}

/** Options of {@link growModel}. */
export interface GrowOptions {
  /** The small model's AdamW state (`exportState()` / checkpoint): grown with the weights (growth.md §4). */
  readonly optimizer?: OptimizerState;
  /** Moments of new entries: `zero` (default) or `seed-v` (see `growOptimizerState`). */
  readonly newMoments?: 'zero' | 'seed-v';
  /** Adam β₁, β₂ of the run, for the report of the first update of fresh entries (default 0.9, 0.95). */
  readonly adam?: { readonly beta1: number; readonly beta2: number };
  /** Probe batch for the measurements (default: 2 random sequences of min(16, context) tokens). */
  readonly probe?: ProbeIds;
  /**
   * Tolerance on max |Δlogits| relative to max |logit| for exact transforms (default 1e-5, growth.md §6.1;
   * transforms exact up to eps use 10× this).
   */
  readonly tolerance?: number;
  /** DeepNorm depth: keep α (default) or absorb α′/α (growth.md §3.3). */
  readonly deepnormAlpha?: 'keep' | 'absorb';
  /** New blocks start as copies of the block below them (default) or from the grown model's fresh init. */
  readonly depthInit?: 'copy' | 'random';
  /** Negative controls for tests (see {@link Ablations}). */
  readonly ablate?: Ablations;
  /** Seed of the grown model's fresh init (only new free entries and `depthInit: 'random'` use it; default 0). */
  readonly initSeed?: number;
}

/** The report of one transform. */
export interface TransformReport {
  readonly name: 'ffn' | 'width' | 'depth' | 'noise';
  /** What was done, with the rule used. */
  readonly description: string;
  /** How exact it is by construction. */
  readonly exactness: Exactness;
  /** Why it is not exact (empty when exact). */
  readonly reasons: readonly string[];
  /** Other facts (eps change, ablations, α handling). */
  readonly notes: readonly string[];
  readonly from: ModelDims;
  readonly to: ModelDims;
  /** max |Δlogits| between the model before and after this transform, on the probe batch. */
  readonly maxAbsDeltaLogits: number;
  readonly relDeltaLogits: number;
  /** Relative tolerance this transform is held to. */
  readonly tolerance: number;
  readonly withinTolerance: boolean;
}

/** The report of a whole growth. */
export interface GrowthReport {
  readonly family: string;
  readonly strategy?: string;
  readonly from: ModelDims;
  readonly to: ModelDims;
  readonly transforms: readonly TransformReport[];
  /** Worst exactness over the transforms. */
  readonly exactness: Exactness;
  /** True when no transform is approximate (exact, or exact up to the norm eps). */
  readonly exact: boolean;
  /** max |Δlogits| between the small and the grown model on the probe batch. */
  readonly maxAbsDeltaLogits: number;
  readonly relDeltaLogits: number;
  readonly maxAbsLogit: number;
  /** Probe next-token loss of the small model and of the grown model. */
  readonly lossBefore: number;
  readonly lossAfter: number;
  /** Relative tolerance of the whole growth (the loosest of its transforms). */
  readonly tolerance: number;
  readonly withinTolerance: boolean;
  readonly probe: { readonly batch: number; readonly seq: number };
  readonly parameters: { readonly before: number; readonly after: number };
  /** Optimizer-state growth, when a state was given. */
  readonly optimizer?: {
    readonly step: number;
    readonly freshEntries: number;
    /** First update of a fresh entry in units of the learning rate (growth.md §4.3). */
    readonly freshFirstUpdate: number;
    /** Range of the per-entry learning-rate multipliers. */
    readonly lrScaleMin: number;
    readonly lrScaleMax: number;
  };
}

/** What {@link growModel} returns. */
export interface GrowResult {
  /** The grown model (the caller disposes it; the input model is left untouched). */
  readonly model: LanguageModel;
  readonly report: GrowthReport;
  /** Provenance of every grown entry, for {@link growOptimizerState}. */
  readonly trace: GrowthTrace;
  /** The grown optimizer state, when `options.optimizer` was given. */
  readonly optimizer?: GrownOptimizerState;
}

interface Current {
  model: LanguageModel;
  values: Map<string, HostTensor>;
  specs: Map<string, ParamSpec>;
  config: ModelConfigBase;
  info: FamilyInfo;
}

/** What a stage returns before it is measured. */
interface StageResult {
  next: Current;
  report: Omit<TransformReport, 'maxAbsDeltaLogits' | 'relDeltaLogits' | 'withinTolerance' | 'tolerance'>;
  trace: StageTrace;
}

interface StageOutcome {
  readonly cur: Current;
  readonly report: TransformReport;
  readonly trace: StageTrace;
}

const ORDER: Record<Exactness, number> = { exact: 0, eps: 1, approx: 2 };
function worst(list: readonly Exactness[]): Exactness {
  return list.reduce<Exactness>((a, b) => (ORDER[b] > ORDER[a] ? b : a), 'exact');
}

function dimsOf(info: FamilyInfo): ModelDims {
  return {
    dModel: info.dModel,
    nHeads: info.nHeads,
    headDim: info.headDim,
    dFF: info.dFF,
    nLayers: info.nLayers,
  };
}

function fail(message: string): never {
  throw new StrataError('E_GROWTH', message);
}

function isInt(x: number): boolean {
  return Number.isInteger(x) && x > 0;
}

/** Resolves a {@link GrowthSpec} into the grown sizes and the insertion positions of new blocks. */
export function resolveGrowth(info: ModelDims, spec: GrowthSpec): { dims: ModelDims; insertAt: number[] } {
  const { dModel: d, nHeads: H, headDim: hd, dFF: F, nLayers: N } = info;
  let d2 = spec.dModel ?? (spec.width !== undefined ? d * spec.width : undefined);
  if (d2 !== undefined && !isInt(d2)) {
    fail(`d_model ${d} × width ${spec.width} = ${d2} is not a whole number`);
  }
  let H2 = spec.heads;
  let hd2 = spec.headDim;
  if (d2 === undefined) {
    H2 ??= H;
    hd2 ??= hd;
    d2 = H2 * hd2;
  } else if (H2 === undefined && hd2 === undefined) {
    hd2 = hd;
    H2 = d2 / hd;
    if (!isInt(H2)) {
      fail(
        `d_model ${d2} is not a multiple of the head dim ${hd}: give --heads or --head-dim (d_model = heads × head dim)`,
      );
    }
  } else if (H2 === undefined) {
    H2 = d2 / hd2!;
  } else if (hd2 === undefined) {
    hd2 = d2 / H2;
  }
  if (!isInt(H2!) || !isInt(hd2!) || H2! * hd2! !== d2) {
    fail(`d_model ${d2} must equal heads (${H2}) × head dim (${hd2}) in this model family`);
  }
  if (d2 < d) fail(`growth cannot shrink d_model (${d} → ${d2})`);
  if (H2! < H) fail(`growth cannot remove heads (${H} → ${H2}); merging heads is not function-preserving`);
  if (hd2! < hd || hd2! % hd !== 0) {
    fail(
      `the head dim can only grow by an integer factor (${hd} → ${hd2}); a non-integer head-dim change has no exact construction here`,
    );
  }
  let F2 = spec.dFF ?? (spec.ffn !== undefined ? F * spec.ffn : Math.round((F * d2) / d));
  if (!isInt(F2)) fail(`d_ff ${F} × ffn ${spec.ffn} = ${F2} is not a whole number`);
  if (F2 < F) fail(`growth cannot shrink d_ff (${F} → ${F2})`);
  F2 = Math.round(F2);
  let insertAt: number[] = [];
  const dep = spec.depth;
  if (dep !== undefined) {
    const o: DepthSpec = typeof dep === 'number' ? { factor: dep } : dep;
    if (o.insertAt) {
      insertAt = [...o.insertAt].sort((a, b) => a - b);
      for (const p of insertAt)
        if (!Number.isInteger(p) || p < 0 || p > N) fail(`insertAt ${p} is not in [0, ${N}]`);
      if (o.layers !== undefined && o.layers !== N + insertAt.length)
        fail(`depth: layers ${o.layers} ≠ ${N} + ${insertAt.length} insertions`);
    } else {
      const N2 = o.layers ?? (o.factor !== undefined ? N * o.factor : N);
      if (!Number.isInteger(N2))
        fail(`depth factor ${o.factor} × ${N} layers is not a whole number of layers`);
      if (N2 < N) fail(`growth cannot remove layers (${N} → ${N2})`);
      const m = N2 - N;
      const placement = o.placement ?? 'interleave';
      for (let j = 0; j < m; j++) {
        insertAt.push(
          placement === 'top'
            ? N
            : placement === 'bottom'
              ? 0
              : Math.min(N, Math.max(1, Math.ceil(((j + 1) * N) / m))),
        );
      }
    }
  }
  return {
    dims: { dModel: d2, nHeads: H2!, headDim: hd2!, dFF: F2, nLayers: N + insertAt.length },
    insertAt,
  };
}

function buildModel(family: string, raw: Record<string, unknown>, seed: number): LanguageModel {
  const fam = getModelFamily(family);
  let cfg: ModelConfigBase;
  try {
    cfg = fam.parseConfig(raw);
  } catch (e) {
    throw new StrataError('E_GROWTH', `the grown config is invalid: ${(e as Error).message}`, { cause: e });
  }
  return fam.create(cfg, { seed });
}

function assign(model: LanguageModel, values: ReadonlyMap<string, HostTensor>): void {
  model.params.assign(toFloat32(values), 'grown weights');
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
  if (!reasons.includes(why)) reasons.push(why);
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

/** The width stage (d_model, heads, head dim, d_ff). */
async function widthStage(
  name: 'ffn' | 'width',
  cur: Current,
  family: GrowthFamily,
  t: ModelDims,
  spec: GrowthSpec,
  options: GrowOptions,
  groups: NoiseGroups,
): Promise<StageResult> {
  const info = cur.info;
  const rules = info.strategy ? getGrowthRules(info.strategy) : undefined;
  const reasons: string[] = [];
  const notes: string[] = [];
  const ab = options.ablate ?? {};
  const { dModel: d, nHeads: H, headDim: hd, dFF: F } = info;
  const { dModel: d2, nHeads: H2, dFF: F2 } = t;
  const b = t.headDim / hd;
  const parts: string[] = [];
  // --- residual stream ---
  let mode: ResidualMode = 'identity';
  const finalNorm = [...cur.specs.values()].filter(
    (s) => s.name.startsWith('final.') && (s.role === 'norm_gain' || s.role === 'norm_bias'),
  );
  const hasNorms = [...cur.specs.values()].some((s) => s.role === 'norm_gain');
  if (d2 !== d) {
    const k = d2 / d;
    if (Number.isInteger(k)) {
      const tileOk = family.residualModes.includes('tile') && (!info.tied || finalNorm.length > 0);
      const pref = spec.map ?? 'auto';
      if (pref === 'tile') {
        mode = 'tile';
        if (!family.residualModes.includes('tile'))
          reasons.push(`${family.name} does not support the tile map`);
        else if (!tileOk)
          reasons.push('the tile map with a tied head needs a final norm to absorb the ×k of the logits');
      } else if (pref === 'isometric') mode = 'isometric';
      else mode = rules?.internalNorms && tileOk ? 'tile' : 'isometric';
      parts.push(
        mode === 'isometric'
          ? `d_model ${d}→${d2} isometric (h′ = [h;…]/√${k}: writers and readers ÷√${k}, norm γ,β ÷√${k}, eps ÷${k}, multipliers tiled)`
          : `d_model ${d}→${d2} tile (h′ = [h;…]: readers ÷${k}, norm γ,β tiled, eps kept${info.tied ? `, final norm ÷${k} for the tied head` : ''})`,
      );
    } else {
      const hasZero = family.residualModes.includes('zero-pad');
      const hasAvg = family.residualModes.includes('average');
      const zeroOk = hasZero && rules?.zeroPad === true && (info.normKind === 'rmsnorm' || !hasNorms);
      const avgOk = hasAvg && rules?.average === true && info.normKind === 'layernorm' && hasNorms;
      const pref = spec.nonInteger ?? 'auto';
      if (pref === 'zero-pad' || (pref === 'auto' && (zeroOk || !avgOk))) mode = 'zero-pad';
      else mode = 'average';
      if (!hasZero && !hasAvg) {
        reasons.push(
          `${family.name}: a non-integer d_model factor (${d}→${d2}) has no exact construction (unit-norm rows/columns and re-normalized outputs need uniform replication)`,
        );
      } else if (mode === 'zero-pad' && !zeroOk) {
        reasons.push(
          `zero-padding the residual stream is exact only for RMSNorm (or no norms) with strategies whose norms all see the padded stream (growth.md §3.0 rows 17–18); ${info.strategy ?? family.name} with ${info.normKind ?? 'no norm kind'} does not qualify${info.normKind === 'layernorm' && !avgOk ? ' (LayerNorm "average coordinates" need a pre-norm strategy: pre-ln)' : ''}`,
        );
      } else if (mode === 'average' && !avgOk) {
        reasons.push(
          `"average" coordinates are exact only for LayerNorm with pre-norm strategies (growth.md §2.9, row 22)`,
        );
      }
      parts.push(
        mode === 'zero-pad'
          ? `d_model ${d}→${d2} zero-padded (h′ = [h; 0]; RMSNorm γ × √(${d}/${d2}), eps × ${d}/${d2}; readers' new rows random)`
          : `d_model ${d}→${d2} with average coordinates (new coords = mean of old; LN γ × √(${d}/${d2}), new β = 0, eps × ${d}/${d2})`,
      );
    }
  }
  let epsF = residualEpsFactor(mode, d, d2);
  if (info.normEps === undefined || !hasNorms) epsF = 1;
  if (epsF !== 1 && ab.epsFix === false) {
    epsF = 1;
    reasons.push('ablation: norm eps not scaled with the residual map (negative control)');
  }
  if (rules?.internalNorms && epsF !== 1) {
    reasons.push(
      `strategy "${info.strategy}" has norms over internal widths, which need eps unchanged, while the ${mode} residual map needs eps × ${epsF}: use the tile map (map: 'tile')`,
    );
  }
  if (epsF !== 1) notes.push(`norm eps ${info.normEps} → ${info.normEps! * epsF}`);
  // --- attention heads ---
  const pairs = info.positions === 'rope';
  let ropeRepeat: number | undefined;
  if (H2 !== H || b !== 1) {
    if (H2 % H !== 0 && (family.uniformInternalOnly || rules?.internalNorms)) {
      reasons.push(
        `heads ${H}→${H2} is not a whole multiple: ${family.uniformInternalOnly ? `${family.name} needs uniform replication (re-normalized outputs)` : `the inner norms of "${info.strategy}" see the non-uniformly replicated heads`}`,
      );
    }
    parts.push(
      `heads ${H}→${H2} (${H2 % H === 0 ? 'duplicated' : 'Net2Net replication'}, W_o ${family.internalRead === 'mean' ? 'reads the average of the copies' : 'copies rows (output re-normalized)'})`,
    );
    if (b !== 1) {
      parts.push(
        `head dim ${hd}→${t.headDim} (${pairs ? 'rotation pairs repeated' : 'features repeated'}${family.name === 'gpt' ? `, q,k × ${b}^(−1/4)` : ', s_qk rescaled'})`,
      );
      if (pairs) {
        const r2 = info.ropeRepeat * b;
        if (ab.ropeRepeat === false) {
          reasons.push('ablation: standard RoPE table for the grown head dim (negative control)');
        } else if (acceptsConfigKey(family.name, cur.config, ropeRepeatKey, r2)) {
          ropeRepeat = r2;
          notes.push(`RoPE frequencies of head dim ${hd} repeated ${r2}× (config ${ropeRepeatKey}: ${r2})`);
        } else {
          reasons.push(
            `head-dim growth with RoPE needs each duplicated pair to keep the small model's frequency (growth.md §3.6); the ${family.name} config has no "${ropeRepeatKey}" field for a repeated frequency table, so the grown model would use the standard table (see the @strata/growth README for the core change)`,
          );
        }
      }
    }
  }
  let qkF = family.qkFactor(b);
  if (b !== 1 && qkF !== 1 && ab.qkFix === false) {
    qkF = 1;
    reasons.push('ablation: q, k not scaled by b^(−1/4) (negative control)');
  }
  // --- FFN ---
  if (F2 !== F) {
    if (F2 % F !== 0 && (family.uniformInternalOnly || rules?.internalNorms)) {
      reasons.push(
        `d_ff ${F}→${F2} is not a whole multiple: ${family.uniformInternalOnly ? `${family.name} needs uniform replication` : `the inner norm of "${info.strategy}" sees the non-uniformly replicated units`}`,
      );
    }
    parts.push(
      `d_ff ${F}→${F2} (${F2 % F === 0 ? 'units duplicated' : 'Net2Net replication'}, ${family.internalRead === 'mean' ? 'outgoing weights ÷ copies' : 'outgoing rows copied (output re-normalized)'})`,
    );
  }
  if (info.strategy && !rules)
    reasons.push(`strategy "${info.strategy}" declares no growth rules (registerGrowthRules)`);
  if (ab.ngptScaleFix === false && family.adjust && d2 !== d) {
    reasons.push('ablation: s_ν not rescaled for the new d_model (negative control)');
  }
  const exactness: Exactness = reasons.length ? 'approx' : 'exact';
  if (exactness === 'approx' && !spec.allowApprox) refuse(name, reasons);

  const maps: Record<Exclude<SpaceName, 'fixed'>, SpaceMap> = {
    residual: residualMap(mode, d, d2),
    attn: headMap(H, hd, H2, b, { pairs, readScale: family.internalRead }),
    ffn: unitMap(F, F2, family.internalRead),
    qkv: identityMap(1),
  };
  maps.qkv = qkvMap(maps.attn, qkF);
  for (const s of ['residual', 'attn', 'qkv', 'ffn'] as const)
    if (!maps[s].identity) groups[s] = maps[s].groups;

  const raw = family.config(cur.config, {
    ...t,
    nLayers: info.nLayers,
    ...(info.normEps !== undefined ? { normEps: info.normEps * epsF } : {}),
    ...(ropeRepeat !== undefined ? { ropeRepeat } : {}),
  });
  const big = buildModel(family.name, raw, options.initSeed ?? 0);
  const bigSpecs = specsOf(big);
  const rng = Rng.derive(spec.seed ?? 0, 'growth', name);
  const values = new Map<string, StageTensor>();
  const k = d2 / d;
  const tiedFix = mode === 'tile' && info.tied ? new Set(finalNorm.map((s) => s.name)) : new Set<string>();
  for (const bs of bigSpecs.values()) {
    const ss = cur.specs.get(bs.name);
    const x = cur.values.get(bs.name);
    if (!ss || !x) {
      big.dispose();
      fail(`the grown model has a parameter "${bs.name}" the small model lacks`);
    }
    const layout = layoutOf(ss, family, info, rules, reasons);
    const axes: AxisMap[] = layout.map((a, i) =>
      a.space === 'fixed' ? identityMap(x.shape[i]!).axis('fixed') : maps[a.space].axis(a.use),
    );
    const out = mapTensor(bs.name, x, axes, rng);
    if (tiedFix.has(bs.name)) {
      const data = out.data as Float64Array;
      const s = out.origin.s as Float64Array;
      for (let i = 0; i < data.length; i++) {
        data[i] = data[i]! / k;
        s[i] = s[i]! / k;
      }
    }
    values.set(bs.name, out);
  }
  if (reasons.length && exactness === 'exact' && !spec.allowApprox) {
    big.dispose();
    refuse(name, reasons);
  }
  const adjustCtx: AdjustContext = {
    smallConfig: cur.config,
    bigConfig: big.config,
    smallSpecOf: (n) => cur.specs.get(n),
    ...(options.ablate?.ngptScaleFix === false ? { ablate: { ngptScaleFix: false as const } } : {}),
    note: (s) => {
      if (!notes.includes(s)) notes.push(s);
    },
  };
  family.adjust?.(values, bigSpecs, adjustCtx);
  assign(big, values);
  return {
    next: { model: big, values, specs: bigSpecs, config: big.config, info: family.info(big.config) },
    report: {
      name,
      description: parts.join('; '),
      exactness: reasons.length ? 'approx' : 'exact',
      reasons,
      notes,
      from: dimsOf(info),
      to: dimsOf(family.info(big.config)),
    },
    trace: traceOf(name, values),
  };
}

function refuse(stage: string, reasons: readonly string[]): never {
  fail(
    `${stage} growth cannot be exact: ${reasons.join('; ')}. Pass allowApprox (--allow-approx) to grow anyway and measure the difference.`,
  );
}

function traceOf(name: string, values: ReadonlyMap<string, StageTensor>): StageTrace {
  const shapes = new Map<string, number[]>();
  const origins = new Map<string, Origin>();
  for (const [n, t] of values) {
    shapes.set(n, [...t.shape]);
    origins.set(n, t.origin);
  }
  return { name, shapes, origins };
}

/** The depth stage. */
async function depthStage(
  cur: Current,
  family: GrowthFamily,
  insertAt: readonly number[],
  spec: GrowthSpec,
  options: GrowOptions,
): Promise<StageResult> {
  const info = cur.info;
  const N = info.nLayers;
  const N2 = N + insertAt.length;
  const rules = info.strategy ? getGrowthRules(info.strategy) : undefined;
  const reasons: string[] = [];
  const notes: string[] = [];
  let rule: DepthRule | undefined = family.depthRule?.(info) ?? rules?.depth;
  if (!rule) {
    reasons.push(
      `strategy "${info.strategy}" declares no depth rule (registerGrowthRules); new blocks get zero output projections, which is an identity only for pre-norm strategies`,
    );
    rule = zeroOutputDepthRule;
  }
  // Layer sequence of the grown model.
  const count = new Array<number>(N + 1).fill(0);
  for (const p of insertAt) count[p]! += 1;
  type Entry = { isNew: false; src: number } | { isNew: true; neighbor: number };
  const seq: Entry[] = [];
  const oldBig: number[] = [];
  const runs: DepthRun[] = [];
  for (let p = 0; p <= N; p++) {
    if (count[p]) {
      const layers: number[] = [];
      for (let c = 0; c < count[p]!; c++) {
        layers.push(seq.length);
        seq.push({ isNew: true, neighbor: p > 0 ? p - 1 : 0 });
      }
      runs.push({
        position: p,
        layers,
        ...(p > 0 ? { prev: oldBig[p - 1]! } : {}),
        ...(p < N ? { next: seq.length } : {}),
      });
    }
    if (p < N) {
      oldBig.push(seq.length);
      seq.push({ isNew: false, src: p });
    }
  }
  const choices: DepthChoices = {
    deepnormAlpha: options.deepnormAlpha ?? 'keep',
    ...(options.ablate ? { ablate: options.ablate } : {}),
  };
  const ctx: DepthPlanContext = {
    family: family.name,
    ...(info.strategy ? { strategy: info.strategy } : {}),
    options: info.strategyOptions,
    smallLayers: N,
    bigLayers: N2,
    runs,
    config: cur.config,
    choices,
  };
  const verdicts = runs.map((r) => rule!.check(r, ctx));
  for (const v of verdicts)
    if (v.exactness === 'approx' && v.reason && !reasons.includes(v.reason)) reasons.push(v.reason);
  const ab = options.ablate ?? {};
  if (ab.postLnAffine === false || ab.deepnormAlpha === false) reasons.push('ablation (negative control)');
  const exactness = worst([...verdicts.map((v) => v.exactness), reasons.length ? 'approx' : 'exact']);
  if (exactness === 'approx' && !spec.allowApprox) refuse('depth', reasons);
  const strategyOptions = rule.options?.(ctx);
  const epsF = rule.epsFactor?.(ctx) ?? 1;
  const signedAlpha = cur.config.alphaAbs === true;
  const raw = family.config(cur.config, {
    ...dimsOf(info),
    nLayers: N2,
    ...(strategyOptions ? { strategyOptions } : {}),
    ...(info.normEps !== undefined ? { normEps: info.normEps * epsF } : {}),
    ...(signedAlpha ? { signedAlpha } : {}),
  });
  const big = buildModel(family.name, raw, options.initSeed ?? 0);
  const bigSpecs = specsOf(big);
  const fresh = options.depthInit === 'random' ? await readParams(big) : undefined;
  const values = new Map<string, StageTensor>();
  const srcName = new Map<string, string>();
  for (const bs of bigSpecs.values()) {
    const m = /^blocks\.(\d+)\.(.+)$/.exec(bs.name);
    let from = bs.name;
    let isNew = false;
    if (m) {
      const e = seq[Number(m[1])]!;
      isNew = e.isNew;
      from = `blocks.${e.isNew ? e.neighbor : e.src}.${m[2]}`;
    }
    const x = cur.values.get(from);
    if (!x) {
      big.dispose();
      fail(`depth growth: no source "${from}" for "${bs.name}"`);
    }
    const origin = identityOrigin(from, x.data.length);
    const data = isNew && fresh ? Float64Array.from(fresh.get(bs.name)!.data) : Float64Array.from(x.data);
    values.set(bs.name, {
      shape: [...x.shape],
      data,
      origin: isNew ? { ...origin, fresh: new Uint8Array(x.data.length).fill(1) } : origin,
    });
    srcName.set(bs.name, from);
  }
  const editor = makeEditor(values, bigSpecs, notes);
  deepNormAbsorb(ctx, editor, oldBig);
  for (const r of runs) rule.apply(r, editor, ctx);
  family.adjust?.(values, bigSpecs, {
    smallConfig: cur.config,
    bigConfig: big.config,
    smallSpecOf: (n) => cur.specs.get(srcName.get(n) ?? n),
    note: (s) => {
      if (!notes.includes(s)) notes.push(s);
    },
  });
  if (signedAlpha) notes.push('α made signed (alphaAbs: false) so the new α = 0 can learn');
  if (strategyOptions) notes.push(`strategy options of the grown model: ${JSON.stringify(strategyOptions)}`);
  if (epsF !== 1) notes.push(`norm eps × ${epsF.toPrecision(6)}`);
  assign(big, values);
  const where = runs.map((r) => `${r.layers.length}×@${r.position}`).join(', ');
  return {
    next: { model: big, values, specs: bigSpecs, config: big.config, info: family.info(big.config) },
    report: {
      name: 'depth',
      description: `layers ${N}→${N2} (new blocks before small-model block index: ${where}; ${options.depthInit === 'random' ? 'fresh init' : 'copies of the block below'}); ${rule.description}`,
      exactness,
      reasons,
      notes,
      from: dimsOf(info),
      to: dimsOf(family.info(big.config)),
    },
    trace: traceOf('depth', values),
  };
}

function makeEditor(
  values: Map<string, StageTensor>,
  specs: ReadonlyMap<string, ParamSpec>,
  notes: string[],
): DepthEditor {
  const need = (n: string) => {
    const t = values.get(n);
    if (!t) fail(`depth rule: no parameter "${n}"`);
    return t;
  };
  const markFresh = (t: StageTensor): StageTensor => ({
    ...t,
    origin: { ...t.origin, fresh: new Uint8Array(t.data.length).fill(1) },
  });
  return {
    has: (n) => values.has(n),
    get: (n) => need(n),
    fill(n, v) {
      const t = markFresh(need(n));
      (t.data as Float64Array).fill(v);
      values.set(n, t);
    },
    zero(n) {
      this.fill(n, 0);
    },
    scale(n, f) {
      const t = need(n);
      const s = Float64Array.from(t.origin.s, (x) => x * f);
      values.set(n, {
        shape: t.shape,
        data: Float64Array.from(t.data, (x) => x * f),
        origin: { ...t.origin, s },
      });
    },
    move(from, to) {
      const t = need(from);
      need(to);
      values.set(to, {
        shape: t.shape,
        data: Float64Array.from(t.data),
        origin: {
          from: t.origin.from,
          src: Int32Array.from(t.origin.src),
          s: Float64Array.from(t.origin.s),
          n: Float64Array.from(t.origin.n),
          ...(t.origin.fresh ? { fresh: Uint8Array.from(t.origin.fresh) } : {}),
        },
      });
    },
    branchOutputs(layer) {
      const out: string[] = [];
      for (const s of specs.values()) {
        if (s.layer !== layer || (s.role !== 'attn_out' && s.role !== 'ffn_out')) continue;
        out.push(s.name);
        const bias = s.name.replace(/\.weight$/, '.bias');
        if (bias !== s.name && values.has(bias)) out.push(bias);
      }
      return out;
    },
    note(text) {
      if (!notes.includes(text)) notes.push(text);
    },
  };
}

/** The symmetry-breaking stage. */
function noiseStage(
  cur: Current,
  family: GrowthFamily,
  groups: NoiseGroups,
  spec: GrowthSpec,
  options: GrowOptions,
): StageResult {
  const rng = Rng.derive(spec.seed ?? 0, 'growth', 'noise');
  const values = new Map<string, StageTensor>();
  for (const [n, x] of cur.values) {
    values.set(n, {
      shape: x.shape,
      data: Float64Array.from(x.data),
      origin: identityOrigin(n, x.data.length),
    });
  }
  const touched = addNoise(values, cur.specs, groups, family, spec.noise!, rng);
  const big = buildModel(family.name, { ...cur.config } as Record<string, unknown>, options.initSeed ?? 0);
  assign(big, values);
  return {
    next: { model: big, values, specs: specsOf(big), config: big.config, info: cur.info },
    report: {
      name: 'noise',
      description:
        family.noise === 'unit'
          ? `norm-preserving paired noise of norm ${spec.noise} on every matrix with duplicated inputs (zero-sum over each copy group, orthogonal to each unit vector)`
          : `paired zero-sum noise (std ${spec.noise} × rms) on every matrix with duplicated inputs (HyperCloning ±N: Σ over copies of the noise = 0)`,
      exactness: 'exact',
      reasons: [],
      notes: touched.length
        ? [
            `noised ${touched.length} matrices (${[...new Set(touched.map((n) => cur.specs.get(n)!.role))].join(', ')})`,
          ]
        : ['no duplicated inputs: nothing to break'],
      from: dimsOf(cur.info),
      to: dimsOf(cur.info),
    },
    trace: traceOf('noise', values),
  };
}

/**
 * Grows a trained model into a larger one that computes the same function (growth.md; SPEC §6): FFN width,
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
  const info0 = family.info(model.config);
  const { dims, insertAt } = resolveGrowth(info0, spec);
  const probe =
    options.probe ?? makeProbe(info0.vocabSize, Math.min(16, info0.contextLength), 2, (spec.seed ?? 0) + 1);
  const tol = options.tolerance ?? 1e-5;
  const start: Current = {
    model,
    values: await readParams(model),
    specs: specsOf(model),
    config: model.config,
    info: info0,
  };
  const widthChange = dims.dModel !== info0.dModel || dims.nHeads !== info0.nHeads;
  const ffnChange = dims.dFF !== info0.dFF;
  if (!widthChange && !ffnChange && insertAt.length === 0 && !(spec.noise && spec.noise > 0)) {
    fail('nothing to grow: give a width, heads, head dim, FFN or depth change');
  }
  const smallRun = await probeRun(model, probe);
  let prevRun = smallRun;
  const groups: NoiseGroups = {};
  const outcomes: StageOutcome[] = [];
  let cur = start;
  const advance = async (r: StageResult) => {
    let run: ProbeRun;
    try {
      run = await probeRun(r.next.model, probe);
    } catch (e) {
      r.next.model.dispose();
      throw e;
    }
    const check = compareRuns(prevRun, run);
    prevRun = run;
    const t = r.report.exactness === 'eps' ? tol * 10 : tol;
    outcomes.push({
      cur: r.next,
      trace: r.trace,
      report: {
        ...r.report,
        maxAbsDeltaLogits: check.maxAbsDeltaLogits,
        relDeltaLogits: check.relDeltaLogits,
        tolerance: t,
        withinTolerance: check.relDeltaLogits <= t,
      },
    });
    if (cur !== start) cur.model.dispose();
    cur = r.next;
  };
  try {
    if (ffnChange) {
      await advance(
        await widthStage('ffn', cur, family, { ...dimsOf(cur.info), dFF: dims.dFF }, spec, options, groups),
      );
    }
    if (widthChange) {
      await advance(
        await widthStage('width', cur, family, { ...dims, nLayers: cur.info.nLayers }, spec, options, groups),
      );
    }
    if (insertAt.length) await advance(await depthStage(cur, family, insertAt, spec, options));
    if (spec.noise && spec.noise > 0) await advance(noiseStage(cur, family, groups, spec, options));
  } catch (e) {
    if (cur !== start) cur.model.dispose();
    throw e;
  }
  const overall = compareRuns(smallRun, prevRun);
  const transforms = outcomes.map((o) => o.report);
  const exactness = worst(transforms.map((t) => t.exactness));
  const tolerance = exactness === 'eps' ? tol * 10 : tol;
  const trace: GrowthTrace = { stages: outcomes.map((o) => o.trace) };
  let optimizer: GrownOptimizerState | undefined;
  if (options.optimizer) {
    optimizer = growOptimizerState(options.optimizer, trace, {
      ...(options.newMoments ? { newMoments: options.newMoments } : {}),
    });
  }
  let lrMin = Number.POSITIVE_INFINITY;
  let lrMax = Number.NEGATIVE_INFINITY;
  if (optimizer) {
    for (const t of optimizer.lrScale.values()) {
      for (const x of t.data) {
        lrMin = Math.min(lrMin, x);
        lrMax = Math.max(lrMax, x);
      }
    }
  }
  const adam = options.adam ?? { beta1: 0.9, beta2: 0.95 };
  const report: GrowthReport = {
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
    ...(optimizer
      ? {
          optimizer: {
            step: optimizer.step,
            freshEntries: optimizer.freshEntries,
            freshFirstUpdate: freshFirstUpdate(optimizer.step, adam.beta1, adam.beta2),
            lrScaleMin: lrMin,
            lrScaleMax: lrMax,
          },
        }
      : {}),
  };
  return { model: cur.model, report, trace, ...(optimizer ? { optimizer } : {}) };
}
