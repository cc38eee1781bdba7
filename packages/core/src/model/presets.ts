/**
 * Named model presets: a family, an architecture and config values over the family's defaults. Sizes (width,
 * depth, context) are not part of a preset; the CLI's `--preset NAME` applies one under the size flags.
 *
 * @module
 */
import { StrataError } from '../errors.js';
import type { Architecture } from '../norm/contract.js';

/** A named architecture: what `--preset NAME` sets. */
export interface ModelPreset {
  /** The preset's name (`--preset NAME`). */
  readonly name: string;
  /** One line for `--help` and the docs. */
  readonly description: string;
  /** Where the architecture comes from. */
  readonly source: string;
  /** Encoder-only (masked-LM) or decoder-only (next-token LM). */
  readonly architecture: Extract<Architecture, 'encoder-only' | 'decoder-only'>;
  /** The model family the preset builds (`encoder` or `gpt`). */
  readonly family: 'encoder' | 'gpt';
  /** Model config values over the family's defaults (flags and a config file override them). */
  readonly model: Readonly<Record<string, unknown>>;
}

/** The parameter-free RMS norm of GAU-α and RoFormerV2 (`x/√(mean x² + 1e-12)`, no gain, no bias), in Post-LN. */
const SU_NORMS = {
  normKind: 'rmsnorm',
  normAffine: false,
  normEps: 1e-12,
  embedNorm: true,
  norm: { name: 'post-ln', options: {} },
  positions: 'rope',
  bias: false,
  tiedEmbeddings: true,
} as const;

/** The GAU-α layer: GAU with softmax_plus (log n / log 512), key size and width from the model (e = 2d). */
const GAU_ALPHA_LAYER = { block: 'gau', attentionNorm: 'softmax_plus', softmaxPlusBase: 512 } as const;

/**
 * The built-in presets:
 * - `roformer-v2`: RoFormerV2's encoder (Su Jianlin, https://kexue.fm/archives/8998; keras-hub `roformer_v2`):
 *   RoPE, no biases anywhere, ReLU MLP, Post-LN with a parameter-free RMS norm (eps 1e-12) after every
 *   sublayer and on the embeddings, tied masked-LM head.
 * - `gau-alpha`: GAU-α's encoder (ZhuiyiTechnology/GAU-alpha): GAU layers with `softmax_plus`, RoPE, no
 *   biases, Post-LN with the parameter-free RMS norm after every layer and on the embeddings, tied head.
 *   GAU-α stacks twice as many layers as a BERT of the same size (24 vs 12): one GAU ≈ an attention + MLP pair.
 * - `gau-lm`: the GAU-α layer in a decoder-only (causal) language model.
 */
export const MODEL_PRESETS: readonly ModelPreset[] = [
  {
    name: 'roformer-v2',
    description: 'RoFormerV2 encoder: RoPE, no biases, ReLU MLP, Post-LN with a parameter-free RMS norm',
    source: 'Su Jianlin, https://kexue.fm/archives/8998; keras-hub roformer_v2',
    architecture: 'encoder-only',
    family: 'encoder',
    model: { ...SU_NORMS, activation: 'relu' },
  },
  {
    name: 'gau-alpha',
    description:
      'GAU-α encoder: GAU layers, softmax_plus, RoPE, no biases, Post-LN with a parameter-free RMS norm',
    source: 'ZhuiyiTechnology/GAU-alpha; https://kexue.fm/archives/9052',
    architecture: 'encoder-only',
    family: 'encoder',
    model: { ...SU_NORMS, ...GAU_ALPHA_LAYER },
  },
  {
    name: 'gau-lm',
    description: 'decoder-only GAU language model: the GAU-α layer with a causal mask',
    source: 'GAU (arXiv 2202.10447) with GAU-α’s settings',
    architecture: 'decoder-only',
    family: 'gpt',
    model: { ...SU_NORMS, ...GAU_ALPHA_LAYER },
  },
];

/** The preset called `name`; an unknown name fails naming the valid ones. */
export function getModelPreset(name: string): ModelPreset {
  const p = MODEL_PRESETS.find((x) => x.name === name);
  if (!p)
    throw new StrataError(
      'E_CONFIG',
      `unknown model preset "${name}"; valid presets: ${MODEL_PRESETS.map((x) => x.name).join(', ')}`,
    );
  return p;
}
