/**
 * `@strata/core`: backend selection, tensor building blocks, the GPT model family, the norm-strategy plugin
 * contract and registry, training (AdamW, schedules, clipping), data and tokenizer, checkpoints,
 * evaluation, sampling and metrics.
 *
 * Bundlers that honour the `browser` export condition get the browser entry instead: the same API without
 * checkpoints, file formats, interop and data files, which need Node's file system.
 *
 * @packageDocumentation
 */

export * from './browser.js';
export * from './checkpoint.js';
export * from './data/node.js';
export * from './interop/index.js';
export * from './io/index.js';
