/**
 * Width: attention heads and head dimension (growth guide "MLP width and attention heads", "Head dimension"; HyperCloning, arXiv 2409.12903).
 *
 * - Heads H → H′: grown head h′ copies head h′ mod H (any ratio); W_o reads the average of the copies (GPT) or
 *   the copies split into unit rows w/c + p_i that sum to w (nGPT, whose W_o output is re-normalized).
 * - Head dim hd → b·hd: rotation pairs (RoPE) or features repeated; q, k × b^(−1/4) under a scaled dot
 *   product (the family's `qkFactor`), and RoPE keeps the small head's frequencies through a repeated table
 *   (config `ropeRepeat` = small ropeRepeat × b).
 *
 * @module
 */
import { getModelFamily } from '@strata/core';
import { type FamilyInfo, type GrowthFamily, ropeRepeatKey, stripNormVersion } from '../families.js';
import type { Ablations, StrategyGrowthRules } from '../rules.js';
import { fusedMap, headMap, qkvMap, type SpaceMap } from '../spaces.js';
import type { PlanLog } from '../stage.js';

/** How the head dimension grows. */
export interface HeadDimPlan {
  /** Factor b on the head dim. */
  readonly b: number;
  /** Whether features are repeated as RoPE rotation pairs. */
  readonly pairs: boolean;
  /** Factor on q and k (1 when unchanged). */
  readonly qkFactor: number;
  /** The grown config's `ropeRepeat` (undefined: unchanged). */
  readonly ropeRepeat?: number;
}

/**
 * Plans head-dim growth. `grownConfig` is the grown model's raw config without `ropeRepeat`: whether the
 * repeated RoPE table is accepted is checked against the *grown* head dim (the small head dim need not be
 * divisible by the new repeat count, e.g. 6 → 12 repeats each of the 3 small frequencies twice).
 */
export function planHeadDim(
  info: FamilyInfo,
  family: GrowthFamily,
  headDim2: number,
  grownConfig: () => Record<string, unknown>,
  ablate: Ablations,
  log: PlanLog,
): HeadDimPlan {
  const b = headDim2 / info.headDim;
  const pairs = info.positions === 'rope';
  if (b === 1) return { b, pairs, qkFactor: 1 };
  log.parts.push(
    `head dim ${info.headDim}→${headDim2} (${pairs ? 'rotation pairs repeated' : 'features repeated'}${family.name === 'gpt' ? `, q,k × ${b}^(−1/4)` : ', s_qk rescaled'})`,
  );
  let ropeRepeat: number | undefined;
  if (pairs) {
    const r2 = info.ropeRepeat * b;
    if (ablate.ropeRepeat === false) {
      log.reasons.push('ablation: standard RoPE table for the grown head dim (negative control)');
    } else {
      const refusal = ropeRepeatRefusal(family.name, grownConfig(), r2);
      if (refusal === undefined) {
        ropeRepeat = r2;
        log.notes.push(
          `RoPE frequencies of head dim ${info.headDim} repeated ${r2}× (config ${ropeRepeatKey}: ${r2})`,
        );
      } else log.reasons.push(refusal);
    }
  }
  let qkFactor = family.qkFactor(b);
  if (qkFactor !== 1 && ablate.qkFix === false) {
    qkFactor = 1;
    log.reasons.push('ablation: q, k not scaled by b^(−1/4) (negative control)');
  }
  return { b, pairs, qkFactor, ...(ropeRepeat !== undefined ? { ropeRepeat } : {}) };
}

/** Why the grown config cannot take `ropeRepeat: r` (undefined when it can). */
function ropeRepeatRefusal(family: string, grown: Record<string, unknown>, r: number): string | undefined {
  const parse = (raw: Record<string, unknown>) => getModelFamily(family).parseConfig(stripNormVersion(raw));
  try {
    parse({ ...grown, [ropeRepeatKey]: r });
    return undefined;
  } catch (e) {
    const why = (e as Error).message;
    const base = `head-dim growth with RoPE needs each duplicated pair to keep the small model's frequency (Growth guide: RoPE)`;
    try {
      parse(grown);
    } catch {
      return `${base}, but the grown ${family} config is invalid: ${why}`;
    }
    return `${base}: the ${family} config does not accept "${ropeRepeatKey}: ${r}" (${why}), so the grown model would use the standard table`;
  }
}

/**
 * Plans head-count growth H → H2 (and records it in `log`): the maps of the heads and of the fused projections
 * that write them (self-attention `qkv`; cross-attention `q` and `kv`).
 */
export function planHeads(
  info: FamilyInfo,
  family: GrowthFamily,
  rules: StrategyGrowthRules | undefined,
  H2: number,
  headDim: HeadDimPlan,
  log: PlanLog,
): { attn: SpaceMap; qkv: SpaceMap; q: SpaceMap; kv: SpaceMap } {
  const H = info.nHeads;
  if (H2 !== H || headDim.b !== 1) {
    if (H2 % H !== 0 && (family.uniformInternalOnly || rules?.internalNorms)) {
      log.reasons.push(
        `heads ${H}→${H2} is not a whole multiple: ${family.uniformInternalOnly ? `${family.name} needs uniform replication (re-normalized outputs)` : `the inner norms of "${info.strategy}" see the non-uniformly replicated heads`}`,
      );
    }
    if (H2 !== H)
      log.parts.push(
        `heads ${H}→${H2} (${H2 % H === 0 ? 'duplicated' : 'Net2Net replication'}, W_o ${readerText(family, H2 % H === 0)})`,
      );
  }
  const attn = headMap(H, info.headDim, H2, headDim.b, {
    pairs: headDim.pairs,
    readScale: family.internalRead,
  });
  const f = headDim.qkFactor;
  return { attn, qkv: qkvMap(attn, f), q: fusedMap(attn, f, ['q']), kv: fusedMap(attn, f, ['k', 'v']) };
}

/** How the reader of duplicated units/heads treats them, for the report. */
export function readerText(family: GrowthFamily, uniform: boolean): string {
  if (family.internalRead === 'mean') return 'reads the average of the copies';
  return uniform
    ? 'copies rows (output re-normalized)'
    : 'splits each copied row w into unit rows w/c + p_i with Σ p_i = 0, p_i ⟂ w (the sum is w)';
}
