import type { LanguageModel } from '../model/family.js';
import type { ParamRole } from '../params.js';

/** Roles whose weights are multiplied with every token's activations (one multiply-add per weight and token). */
const MATMUL_ROLES: ReadonlySet<ParamRole> = new Set([
  'qkv',
  'attn_out',
  'ffn_in',
  'ffn_gate',
  'ffn_out',
  'head',
]);

/** The pieces of {@link trainingFlopsPerToken}, for reports that show where the compute goes. */
export interface FlopBreakdown {
  /** N: weights used as a matrix product per token — attention q/k/v/out, FFN in/gate/out and the output head
   * (the token embedding when the head is tied). Embedding look-ups, norms and biases are not counted. */
  matmulParams: number;
  /**
   * Σ over layers of the attention width d_attn (= the q width of that layer; a GAU layer, whose QKᵀ is over
   * the key size s and whose A·V over the width e, counts (s + e)/2, recorded as `meta.attentionWidth`).
   */
  attentionWidth: number;
  /** Sequence length T the attention term was computed for. */
  seqLen: number;
  /** 6·N + 12·T·Σ d_attn: training FLOPs per token (forward + backward). */
  flopsPerToken: number;
}

/**
 * Training FLOPs per token of one optimizer step (forward + backward), by the standard dense-Transformer count
 * (Kaplan et al. 2020, arXiv 2001.08361, §2.1; with the attention term of Chowdhery et al. 2022, PaLM,
 * arXiv 2204.02311, Appendix B):
 *
 * `C = 6·N + 12·T·Σ_l d_attn,l`
 *
 * - `6·N`: every matrix weight costs 2 FLOPs per token forward (multiply + add) and 4 backward (the input and
 *   the weight gradient). N counts the weights with a matrix-product role (`qkv`, `attn_out`, `ffn_in`,
 *   `ffn_gate`, `ffn_out`, `head`; a tied head counts the token embedding once).
 * - `12·T·d_attn` per layer: QKᵀ and A·V are 2·T·d_attn FLOPs each per token forward, ×3 with the backward.
 *   T is the training sequence length; the causal mask is not discounted (PaLM's convention).
 *
 * It is read off the model's parameter roles, so it holds for every family that declares roles (GPT, nGPT and
 * user families); norms, biases, softmax and element-wise ops (nGPT's normalizations) are not counted — they
 * are O(d) per token, not O(d²). Multiply by tokens per step for the FLOPs of a step; every phase of a run
 * (e.g. a small model trained before growth) is counted with its own model.
 *
 * @param model the model as trained
 * @param seqLen tokens per sequence in training
 */
export function trainingFlops(model: LanguageModel, seqLen: number): FlopBreakdown {
  let matmulParams = 0;
  let hasHead = false;
  let embedding = 0;
  let dModel = 0;
  let attentionWidth = 0;
  const qkvByLayer = new Map<number, number>();
  for (const s of model.params.specs()) {
    const size = s.shape.reduce((a, b) => a * b, 1);
    if (s.role === 'tok_embedding') {
      embedding += size;
      dModel = s.shape[s.shape.length - 1] ?? 0;
    }
    if (s.role === 'head') hasHead = true;
    const declared = s.meta?.attentionWidth;
    if (typeof declared === 'number') attentionWidth += declared;
    if (s.shape.length === 2 && MATMUL_ROLES.has(s.role)) {
      matmulParams += size;
      if (s.role === 'qkv') qkvByLayer.set(s.layer ?? -1, (qkvByLayer.get(s.layer ?? -1) ?? 0) + size);
    }
  }
  if (!hasHead) matmulParams += embedding;
  if (dModel === 0) dModel = Number(model.config.dModel ?? 0);
  // q, k and v each map d_model → d_attn, fused or not: a layer's qkv weights hold 3·d_model·d_attn numbers.
  for (const n of qkvByLayer.values()) attentionWidth += dModel > 0 ? n / (3 * dModel) : 0;
  return {
    matmulParams,
    attentionWidth,
    seqLen,
    flopsPerToken: 6 * matmulParams + 12 * seqLen * attentionWidth,
  };
}

/** Training FLOPs per token ({@link trainingFlops}`(model, seqLen).flopsPerToken`). */
export function trainingFlopsPerToken(model: LanguageModel, seqLen: number): number {
  return trainingFlops(model, seqLen).flopsPerToken;
}
