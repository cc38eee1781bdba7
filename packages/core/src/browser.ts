/**
 * The browser entry of `@strata/core` (the `browser` export condition): everything in the package that runs
 * without Node — backends, the model families, norm strategies, training, the byte/BPE tokenizers, datasets,
 * sampling and metrics — and no module that imports a Node built-in. Node's entry (`index.ts`) is this plus
 * checkpoints, file formats and file I/O, interop with other ecosystems' files, data files and the token cache.
 *
 * @module
 */

export * from './backend.js';
export * from './config-fields.js';
export * from './data/index.js';
export * from './decode.js';
export * from './errors.js';
export * from './model/attention-entropy.js';
export {
  type EncDecConfig,
  EncoderDecoder,
  encDecFamily,
  parseEncDecConfig,
  Seq2SeqCache,
} from './model/encdec.js';
export * from './model/family.js';
export * from './model/gau.js';
export { encoderFamily, GPT, gptFamily } from './model/gpt.js';
export * from './model/gpt-config.js';
export { type HostSettings, NormInputRecorder, ParamWeightHost } from './model/host.js';
export * from './model/layers.js';
export * from './model/presets.js';
export { getModelFamily, listModelFamilies } from './model/registry.js';
export * from './norm/contract.js';
export { preLN } from './norm/pre-ln.js';
export * from './norm/registry.js';
export * from './ops.js';
export * from './options.js';
export type { WorkerSetup } from './parallel/pool.js';
export * from './params.js';
export * from './sample.js';
export * from './train/adamw.js';
export * from './train/config.js';
export * from './train/flops.js';
export * from './train/memory.js';
export * from './train/schedule.js';
export * from './train/task-eval.js';
export * from './train/trainer.js';
export * from './util/plot.js';
export * from './util/rng.js';
export * from './webgpu.js';
