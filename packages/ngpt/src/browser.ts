/**
 * The browser entry of `@strata/ngpt` (the `browser` export condition): the model, its family and the
 * hypersphere helpers, without the interop with NVIDIA's checkpoint files, which needs Node's file system.
 *
 * @module
 */
export { NGPT_DEFAULTS, type NGPTConfig, parseNGPTConfig } from './config.js';
export { ngptFamily, registerNGPT } from './family.js';
export { NGPT, type NGPTForwardWithHidden } from './model.js';
export {
  normalizeMatrices,
  UNIT_NORM_AXIS,
  unitNormAxisOf,
  unitNormErrors,
  vectorNorms,
} from './normalize.js';
export {
  absSignGrad,
  type EffectiveScale,
  effectiveScale,
  effectiveScales,
  SCALE_SYMBOLS,
  type ScaleMeta,
  type ScaleSymbol,
  scaleMetaOf,
  summarizeScales,
} from './scales.js';
export { NGPT_TRAINING_DEFAULTS } from './training.js';
