import { getModelFamily, type ModelFamily, registerModelFamily } from '@strata/core';
import { type NGPTConfig, parseNGPTConfig } from './config.js';
import { NGPT } from './model.js';
import { NGPT_TRAINING_DEFAULTS } from './training.js';

/**
 * The nGPT model family (`family: "ngpt"` in checkpoints). Register it with {@link registerNGPT} to make
 * `--model ngpt` and checkpoint loading work; importing this package registers nothing by itself.
 */
export const ngptFamily: ModelFamily<NGPTConfig> = {
  name: 'ngpt',
  version: '1',
  description:
    'nGPT: normalized Transformer on the hypersphere (unit-norm embeddings, weights and hidden states; learned alpha_A/alpha_M, s_qk, s_u/s_nu, s_z)',
  parseConfig: (raw) => parseNGPTConfig(raw),
  create: (config, options) => new NGPT(parseNGPTConfig(config), options),
  // nGPT trains with no weight decay and no warmup (NVIDIA/ngpt `train.py`); the CLI applies these under user flags.
  trainingDefaults: NGPT_TRAINING_DEFAULTS,
  // RoPE only, no position table: a checkpoint runs at any context (`strata eval --context`).
  contextFree: () => true,
};

/**
 * Registers {@link ngptFamily} with `@strata/core`'s model-family registry. Idempotent: calling it again, or
 * from a second copy of `@strata/ngpt` in the same process, is a no-op. Fails (`E_PLUGIN`) only if some other
 * family already took the name `ngpt`.
 */
export function registerNGPT(): void {
  try {
    registerModelFamily(ngptFamily);
  } catch (e) {
    let existing: ModelFamily | undefined;
    try {
      existing = getModelFamily('ngpt');
    } catch {
      throw e;
    }
    if (existing.description !== ngptFamily.description) throw e;
  }
}
