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
 * In a browser bundle (the `browser` export condition) the interop with NVIDIA's checkpoint files is left out:
 * it reads and writes files with Node's file system.
 *
 * @packageDocumentation
 */
export * from './browser.js';
export {
  exportNvidiaNGPT,
  fromNvidiaNGPTConfig,
  importNvidiaNGPT,
  nvidiaNGPTFormat,
  nvidiaNGPTLayout,
  nvidiaNGPTProblems,
  toNvidiaNGPTConfig,
} from './interop.js';
