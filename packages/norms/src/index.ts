/**
 * `@strata/norms`: residual-normalization strategies for Strata's models — Post-LN, DeepNorm, SubLN,
 * Sandwich-LN, ReZero, LayerScale, Admin and Mix-LN (Pre-LN lives in `@strata/core`) — the pure constants
 * behind them (DeepNorm's α and β, SubLN's γ, …), a conformance suite for plugin authors, and the
 * depth-stability diagnostics of DeepNet §3.
 *
 * Importing the package has no side effects; call {@link registerBuiltinNorms} to make the strategies
 * available by name (`getNorm('deepnorm')`, `--norm deepnorm`).
 *
 * @packageDocumentation
 */
export { preLN } from '@strata/core';
export { builtinNorms, registerBuiltinNorms } from './builtins.js';
export {
  type ConformanceCheck,
  type ConformanceOptions,
  type ConformanceReport,
  NormConformanceError,
  runNormConformance,
} from './conformance.js';
export {
  type AdminScale,
  adminOmega,
  deepNormAdamConstants,
  deepNormAlpha,
  deepNormBeta,
  depthsOf,
  layerScaleInit,
  type Stack,
  type StackDepths,
  subLnGamma,
} from './constants.js';
export {
  type DiagnosticValues,
  type LayerGradNorms,
  type LayerNormInputs,
  layerGradNorms,
  lossStalled,
  modelUpdateNorm,
  normInputsByLayer,
} from './diagnostics.js';
export { admin, adminResidualCount } from './strategies/admin.js';
export {
  type DeepNormOptions,
  deepNorm,
  deepNormConstants,
  deepNormInit,
  deepNormOptions,
} from './strategies/deepnorm.js';
export { layerScale } from './strategies/layerscale.js';
export { mixLN, mixLnPostLayers } from './strategies/mix-ln.js';
export { postLN } from './strategies/post-ln.js';
export { reZero } from './strategies/rezero.js';
export { sandwichLN } from './strategies/sandwich-ln.js';
export { subLN, subLnInit } from './strategies/subln.js';
export { frozen, isSublayerRole, isValueOrOutput } from './util.js';
