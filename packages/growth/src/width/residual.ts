/**
 * Width: the residual stream d_model → d_model′ (growth guide "Width"). Integer factors use the isometric map (Su: h′ = [h; …]/√k, eps ÷ k) or the tile map (HyperCloning:
 * h′ = [h; …], eps kept, the norm that feeds a tied head ÷ k); non-integer factors zero-pad (RMSNorm, or no
 * norms) or add average coordinates (LayerNorm, pre-norm only).
 *
 * @module
 */
import type { ParamSpec } from '@strata/core';
import { type FamilyInfo, type GrowthFamily, stacksOf } from '../families.js';
import type { Ablations, StrategyGrowthRules } from '../rules.js';
import { type ResidualMode, residualEpsFactor, residualMap, type SpaceMap } from '../spaces.js';
import type { PlanLog } from '../stage.js';

/** How the residual stream grows. */
export interface ResidualPlan {
  readonly mode: ResidualMode;
  readonly map: SpaceMap;
  /** Factor on the norm eps (1 when unchanged). */
  readonly epsFactor: number;
  /** Norm gains/biases divided by k so a tied head under the tile map reads h, not k·h. */
  readonly headNormFix: ReadonlySet<string>;
  readonly k: number;
}

/** What the residual unit reads from the request. */
export interface ResidualRequest {
  readonly dModel: number;
  readonly map?: 'auto' | 'isometric' | 'tile';
  readonly nonInteger?: 'auto' | 'zero-pad' | 'average';
  readonly ablate?: Ablations;
}

/** The rule flag `flag` of a strategy, for this model (a boolean, or a function of its options and depth). */
export function ruleFlag(
  rules: StrategyGrowthRules | undefined,
  flag: 'zeroPad' | 'average',
  info: FamilyInfo,
): boolean {
  const v = rules?.[flag];
  return typeof v === 'function' ? v(info.strategyOptions, info.nLayers) : v === true;
}

/**
 * The norm whose output the (tied) head reads: `final.*` when the strategy has a final norm, else the one its
 * growth rules name (Post-LN-type strategies: the last block's last LN) — of the stack the head reads (the
 * decoder of an encoder-decoder: `decoder.final.*`, `decoder.blocks.{M−1}.mlp.norm`).
 */
function headNormParams(
  specs: ReadonlyMap<string, ParamSpec>,
  rules: StrategyGrowthRules | undefined,
  info: FamilyInfo,
): string[] {
  const stacks = stacksOf(info);
  const top = stacks[stacks.length - 1]!;
  const isNorm = (s: ParamSpec) => s.role === 'norm_gain' || s.role === 'norm_bias';
  const final = [...specs.values()].filter((s) => s.name.startsWith(`${top.prefix}final.`) && isNorm(s));
  if (final.length) return final.map((s) => s.name);
  const norm = rules?.headNorm?.(top.layers, info.strategyOptions);
  if (!norm) return [];
  const prefix = `${top.prefix}${norm}`;
  return [...specs.values()].filter((s) => s.name.startsWith(`${prefix}.`) && isNorm(s)).map((s) => s.name);
}

/** Plans the residual map (and records its description, reasons and notes in `log`). */
export function planResidual(
  info: FamilyInfo,
  specs: ReadonlyMap<string, ParamSpec>,
  family: GrowthFamily,
  rules: StrategyGrowthRules | undefined,
  req: ResidualRequest,
  log: PlanLog,
): ResidualPlan {
  const d = info.dModel;
  const d2 = req.dModel;
  const k = d2 / d;
  const paramFree = info.normAffine === false;
  const hasNorms = paramFree || [...specs.values()].some((s) => s.role === 'norm_gain');
  const headNorm = info.tied ? headNormParams(specs, rules, info) : [];
  let mode: ResidualMode = 'identity';
  if (d2 !== d && paramFree) {
    // No γ to divide: only the tile map keeps every norm's input RMS (eps kept), and the head reads the
    // tiled stream ×k unless it is untied (its rows ÷k). Everything else is refused (Growth guide, "Width").
    mode = !Number.isInteger(k) ? 'zero-pad' : req.map === 'isometric' ? 'isometric' : 'tile';
    if (!Number.isInteger(k) || !family.residualModes.includes('tile'))
      log.reasons.push(
        `parameter-free norms (normAffine: false) have no gain to rescale: d_model ${d}→${d2} is exact only by the tile map (an integer factor)`,
      );
    else if (req.map === 'isometric')
      log.reasons.push(
        'parameter-free norms (normAffine: false) have no gain to divide by √k: the isometric map is not exact; use the tile map',
      );
    else if (info.tied)
      log.reasons.push(
        'parameter-free norms (normAffine: false) with a tied head: the tile map multiplies the logits by k and no norm gain can absorb it; untie the head (tiedEmbeddings: false) before growing',
      );
    log.parts.push(
      mode === 'tile'
        ? `d_model ${d}→${d2} tile (h′ = [h;…]: readers ÷${k}, parameter-free norms unchanged, eps kept)`
        : `d_model ${d}→${d2} ${mode} (not exact without norm gains)`,
    );
  } else if (d2 !== d && Number.isInteger(k)) {
    const hasTile = family.residualModes.includes('tile');
    const tileOk = hasTile && (!info.tied || headNorm.length > 0);
    const pref = req.map ?? 'auto';
    if (pref === 'tile') {
      mode = 'tile';
      if (!hasTile) log.reasons.push(`${family.name} does not support the tile map`);
      else if (!tileOk)
        log.reasons.push(
          'the tile map with a tied head needs a norm before the head to absorb the ×k of the logits',
        );
    } else if (pref === 'isometric') mode = 'isometric';
    else mode = rules?.internalNorms && tileOk ? 'tile' : 'isometric';
    log.parts.push(
      mode === 'isometric'
        ? `d_model ${d}→${d2} isometric (h′ = [h;…]/√${k}: writers and readers ÷√${k}, norm γ,β ÷√${k}, eps ÷${k}, multipliers tiled)`
        : `d_model ${d}→${d2} tile (h′ = [h;…]: readers ÷${k}, norm γ,β tiled, eps kept${info.tied ? `, ${headNorm[0]?.replace(/\.(weight|bias)$/, '')} ÷${k} for the tied head` : ''})`,
    );
  } else if (d2 !== d) {
    mode = nonIntegerMode(info, family, rules, req, hasNorms, log);
  }
  let epsFactor = residualEpsFactor(mode, d, d2);
  if (info.normEps === undefined || !hasNorms) epsFactor = 1;
  if (epsFactor !== 1 && req.ablate?.epsFix === false) {
    epsFactor = 1;
    log.reasons.push('ablation: norm eps not scaled with the residual map (negative control)');
  }
  if (rules?.internalNorms && epsFactor !== 1) {
    log.reasons.push(
      `strategy "${info.strategy}" has norms over internal widths, which need eps unchanged, while the ${mode} residual map needs eps × ${epsFactor}: use the tile map (map: 'tile')`,
    );
  }
  if (epsFactor !== 1) log.notes.push(`norm eps ${info.normEps} → ${info.normEps! * epsFactor}`);
  return {
    mode,
    map: residualMap(mode, d, d2),
    epsFactor,
    headNormFix: new Set(mode === 'tile' && info.tied ? headNorm : []),
    k,
  };
}

/** Non-integer d_model: zero-padding (RMSNorm / no norms) or average coordinates (LayerNorm, pre-norm). */
function nonIntegerMode(
  info: FamilyInfo,
  family: GrowthFamily,
  rules: StrategyGrowthRules | undefined,
  req: ResidualRequest,
  hasNorms: boolean,
  log: PlanLog,
): ResidualMode {
  const d = info.dModel;
  const d2 = req.dModel;
  const hasZero = family.residualModes.includes('zero-pad');
  const hasAvg = family.residualModes.includes('average');
  if (!hasZero && !hasAvg && family.residualModes.includes('weighted') && !hasNorms) {
    log.parts.push(
      `d_model ${d}→${d2} isometric with unequal copies (coordinate i copied c_i times, ÷√c_i: MᵀM = I; no norm gains)`,
    );
    return 'weighted';
  }
  const zeroOk = hasZero && ruleFlag(rules, 'zeroPad', info) && (info.normKind === 'rmsnorm' || !hasNorms);
  const avgOk = hasAvg && ruleFlag(rules, 'average', info) && info.normKind === 'layernorm' && hasNorms;
  const pref = req.nonInteger ?? 'auto';
  const mode: ResidualMode =
    pref === 'zero-pad' || (pref === 'auto' && (zeroOk || !avgOk)) ? 'zero-pad' : 'average';
  if (!hasZero && !hasAvg) {
    log.reasons.push(
      `${family.name}: a non-integer d_model factor (${d}→${d2}) has no exact construction (unit-norm rows/columns and re-normalized outputs need uniform replication)`,
    );
  } else if (mode === 'zero-pad' && !zeroOk) {
    log.reasons.push(
      `zero-padding the residual stream is exact only for RMSNorm (or no norms) with strategies whose norms all see the padded stream (Growth guide, "Width"); ${info.strategy ?? family.name} with ${info.normKind ?? 'no norm kind'} does not qualify${info.normKind === 'layernorm' && !avgOk ? ' (LayerNorm "average coordinates" need a pre-norm strategy: pre-ln)' : ''}`,
    );
  } else if (mode === 'average' && !avgOk) {
    log.reasons.push(
      `"average" coordinates are exact only for LayerNorm with pre-norm strategies (LEMON, arXiv 2310.07999)`,
    );
  }
  log.parts.push(
    mode === 'zero-pad'
      ? `d_model ${d}→${d2} zero-padded (h′ = [h; 0]; RMSNorm γ × √(${d}/${d2}), eps × ${d}/${d2}; readers' new rows random)`
      : `d_model ${d}→${d2} with average coordinates (new coords = mean of old; LN γ × √(${d}/${d2}), new β = 0, eps × ${d}/${d2})`,
  );
  return mode;
}
