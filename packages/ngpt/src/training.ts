/**
 * nGPT's training recipe (Loshchilov et al., arXiv 2410.01131; NVIDIA/ngpt `train.py` / `launcher.sh`): Adam with β₁ 0.9,
 * β₂ 0.95, ε 1e-8, **no weight decay**, **no warmup**, cosine decay to 0, global-norm clipping at 1.0, one
 * learning rate for every parameter (the per-parameter multipliers come from the scale re-parameterization).
 * The keys match `@strata/core`'s training config, so the CLI can spread these over its defaults for
 * `--model ngpt`. `lr` is the NVIDIA launcher's 3e-3; nGPT's best learning rate does not transfer across
 * sizes (see the nGPT guide), so tune it per model.
 */
export const NGPT_TRAINING_DEFAULTS = {
  /** Peak learning rate (NVIDIA launcher: 3e-3). */
  lr: 3e-3,
  /** Final learning rate: cosine decay to 0. */
  minLr: 0,
  /** No warmup. */
  warmupSteps: 0,
  /** Cosine decay over the whole run. */
  decay: 'cosine',
  /** Adam β₁. */
  beta1: 0.9,
  /** Adam β₂. */
  beta2: 0.95,
  /** Adam ε. */
  eps: 1e-8,
  /** No weight decay: the weights live on the unit sphere. */
  weightDecay: 0,
  /** Global gradient-norm clip. */
  gradClip: 1,
} as const satisfies Readonly<Record<string, number | string>>;
