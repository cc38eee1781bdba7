import type { InitRequest } from '@strata/core';
import * as tf from '@tensorflow/tfjs-core';

/**
 * `x` in the forward pass, zero gradient in the backward pass. Used for weights a strategy stores with the
 * model but must not train (DeepNorm's per-layer α, Admin's ω when not learnable): any optimizer that does
 * no weight decay on them (they are added with `decay: false`) leaves them unchanged. They are also tagged
 * `meta.frozen = true` so a trainer can skip them.
 */
export const frozen: (x: tf.Tensor) => tf.Tensor = tf.customGrad(
  // biome-ignore lint/suspicious/noExplicitAny: tfjs's customGrad typing
  (x: any) => ({
    value: tf.clone(x as tf.Tensor),
    gradFunc: (dy: tf.Tensor) => [tf.zerosLike(dy)],
  }),
) as unknown as (x: tf.Tensor) => tf.Tensor;

/**
 * The weights that carry magnitude through a sublayer and get DeepNorm's β (and SubLN's γ): the V slice of
 * the fused QKV matrix, the attention output projection, and the FFN input, gate and output matrices.
 * Q and K slices (and a `qkv` request without a slice) are not scaled (DeepNet Lemma 4.1: Q/K do not affect
 * the output-magnitude bound).
 */
export function isValueOrOutput(req: Pick<InitRequest, 'role' | 'slice'>): boolean {
  switch (req.role) {
    case 'qkv':
      return req.slice === 'v';
    case 'attn_out':
    case 'ffn_in':
    case 'ffn_gate':
    case 'ffn_out':
      return true;
    default:
      return false;
  }
}

/** True for the sublayer matrices a strategy's `init` hook is asked about. */
export function isSublayerRole(role: InitRequest['role']): boolean {
  return (
    role === 'qkv' || role === 'attn_out' || role === 'ffn_in' || role === 'ffn_gate' || role === 'ffn_out'
  );
}
