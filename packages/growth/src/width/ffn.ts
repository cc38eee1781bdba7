/**
 * Width: the MLP hidden units d_ff → d_ff′ (growth guide "MLP width and attention heads";
 * Net2Net, arXiv 1511.05641): unit j′ copies unit j′ mod d_ff — exact for any activation because the
 * pre-activations are exact copies. The output matrix reads the average of the copies (GPT) or splits each
 * copied row into unit rows that sum to it (nGPT, whose MLP output is re-normalized).
 *
 * @module
 */
import type { FamilyInfo, GrowthFamily } from '../families.js';
import type { StrategyGrowthRules } from '../rules.js';
import { type SpaceMap, unitMap } from '../spaces.js';
import type { PlanLog } from '../stage.js';
import { readerText } from './heads.js';

/** Plans FFN growth F → F2 (and records it in `log`). */
export function planFfn(
  info: FamilyInfo,
  family: GrowthFamily,
  rules: StrategyGrowthRules | undefined,
  F2: number,
  log: PlanLog,
): SpaceMap {
  const F = info.dFF;
  if (F2 !== F) {
    const uniform = F2 % F === 0;
    if (!uniform && (family.uniformInternalOnly || rules?.internalNorms)) {
      log.reasons.push(
        `d_ff ${F}→${F2} is not a whole multiple: ${family.uniformInternalOnly ? `${family.name} needs uniform replication` : `the inner norm of "${info.strategy}" sees the non-uniformly replicated units`}`,
      );
    }
    const outgoing =
      family.internalRead === 'mean'
        ? 'outgoing weights ÷ copies'
        : `outgoing ${readerText(family, uniform)}`;
    log.parts.push(`d_ff ${F}→${F2} (${uniform ? 'units duplicated' : 'Net2Net replication'}, ${outgoing})`);
  }
  return unitMap(F, F2, family.internalRead);
}
