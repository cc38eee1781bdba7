/**
 * `@strata/ngpt`: nGPT, the normalized Transformer with representation learning on the hypersphere
 * (Loshchilov, Hsieh, Sun, Ginsburg, arXiv 2410.01131), as a Strata model family, and its optimizer-step
 * hook that re-projects every matrix to unit norm.
 *
 * ```ts
 * import { initBackend } from '@strata/core';
 * import { registerNGPT, ngptFamily } from '@strata/ngpt';
 * await initBackend('wasm');
 * registerNGPT(); // makes `ngpt` available to checkpoints and the CLI
 * const model = ngptFamily.create(ngptFamily.parseConfig({ dModel: 64, nLayers: 2, nHeads: 2 }), { seed: 1 });
 * ```
 *
 * @packageDocumentation
 */
export { NGPT_DEFAULTS, type NGPTConfig, parseNGPTConfig } from './config.js';
export { ngptFamily, registerNGPT } from './family.js';
export {
  exportNvidiaNGPT,
  fromNvidiaNGPTConfig,
  importNvidiaNGPT,
  nvidiaNGPTFormat,
  nvidiaNGPTLayout,
  nvidiaNGPTProblems,
  toNvidiaNGPTConfig,
} from './interop.js';
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
