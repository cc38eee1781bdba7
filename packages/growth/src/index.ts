/**
 * `@strata/growth`: function-preserving growth of trained Strata models (see the Growth guide):
 * d_model (isometric or tile map, non-integer by zero-padding or average coordinates), heads, head dim (q/k
 * factor, RoPE pairs with repeated frequencies), FFN width, depth (each strategy's identity block; per stack for
 * encoder-decoder models), paired
 * zero-sum noise for symmetry breaking, and AdamW state growth — each transform measured on a probe batch.
 *
 * ```ts
 * import { growModel } from '@strata/growth';
 * const { model: big, report } = await growModel(small, { width: 2, depth: 2, noise: 0.01 });
 * ```
 *
 * @packageDocumentation
 */
export {
  applyPostLNInsertion,
  BUILTIN_GROWTH_RULES,
  deepNormAlphaOf,
  mixLnPostLayersOf,
  registerBuiltinGrowthRules,
  residualNormLayout,
  zeroOutputDepthRule,
} from './builtin-rules.js';
export {
  type AdjustContext,
  acceptsConfigKey,
  type ConfigTarget,
  coreLayout,
  encDecGrowth,
  encoderGrowth,
  type FamilyInfo,
  type GrowthFamily,
  getGrowthFamily,
  gptGrowth,
  type ModelDims,
  ngptDepthRule,
  ngptGrowth,
  registerGrowthFamily,
  ropeRepeatKey,
  type StackInfo,
  stacksOf,
} from './families.js';
export {
  type DepthPlacement,
  type DepthSpec,
  type GrowOptions,
  type GrowResult,
  type GrowthReport,
  type GrowthSpec,
  growModel,
  resolveGrowth,
  resolveStackDepths,
  type TransformReport,
} from './grow.js';
export { type HostTensor, type Origin, readParams, type StageTensor } from './host.js';
export { mapTensor } from './maptensor.js';
export { addNoise, type NoiseGroups } from './noise.js';
export {
  freshFirstUpdate,
  type GrownOptimizerState,
  type GrowOptimizerOptions,
  type GrowthTrace,
  growOptimizerState,
  LR_SCALE_PREFIX,
  type OptimizerSummary,
  optimizerSummary,
  optimizerTensors,
  type StageTrace,
} from './optimizer.js';
export {
  type Ablations,
  type DepthChoices,
  type DepthEditor,
  type DepthPlanContext,
  type DepthRule,
  type DepthRun,
  type DepthVerdict,
  type Exactness,
  getGrowthRules,
  type LayoutContext,
  listGrowthRules,
  registerGrowthRules,
  type StrategyGrowthRules,
  type StrategyPredicate,
} from './rules.js';
export {
  type AxisMap,
  type AxisSpec,
  type AxisUse,
  type FreshKind,
  fusedMap,
  headFeatureSource,
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
export type { StageReport, TransformName } from './stage.js';
export {
  compareRuns,
  type GrowthCheck,
  makeProbe,
  type ProbeIds,
  type ProbeRun,
  probeRun,
  verifyGrowth,
} from './verify.js';
