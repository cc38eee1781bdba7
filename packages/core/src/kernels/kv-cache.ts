/**
 * Key/value cache for autoregressive generation: each layer keeps the keys and values of the tokens seen so
 * far, so producing the next token runs the model on that token only instead of on the whole context.
 */
import * as tf from '@tensorflow/tfjs-core';
import { StrataError } from '../errors.js';
import type { LanguageModel } from '../model/family.js';
import { attnDecodeFast, strataKernelsActive } from './index.js';

/** Keys and values of the tokens seen so far, per layer: `[batch, heads, length, headDim]`. */
export class KVCache {
  private readonly k: (tf.Tensor4D | undefined)[];
  private readonly v: (tf.Tensor4D | undefined)[];
  /** Number of cached positions (the position of the next token). */
  length = 0;
  /**
   * On wasm with Strata's kernels, the cache is preallocated `[batch, heads, maxLength, headDim]` per layer
   * and one fused kernel per layer appends and attends ({@link attendFused}); elsewhere `attend` grows it
   * with `concat`.
   */
  readonly fused: boolean;

  constructor(
    /** Number of attention layers (one cache entry each). */
    readonly layers: number,
    /** Sequences generated together. */
    readonly batch: number,
    /** Attention heads per layer. */
    readonly heads: number,
    /** Width of each head. */
    readonly headDim: number,
    /** Longest sequence the model accepts (its contextLength). */
    readonly maxLength: number,
    /** `fused: false` keeps a growing, unfused cache even where the fused kernel is active (GAU layers, whose k and v widths differ). */
    options: { fused?: boolean } = {},
  ) {
    this.k = new Array(layers).fill(undefined);
    this.v = new Array(layers).fill(undefined);
    this.fused = options.fused ?? strataKernelsActive();
  }

  /**
   * Fused version of {@link attend} (when {@link fused}): `qkv` `[batch·n, 3d]` straight from the QKV
   * projection, RoPE tables `[n, headDim]` of the new positions; returns `[batch·n, d]` (heads merged).
   */
  attendFused(layer: number, qkv: tf.Tensor2D, rope?: { cos: tf.Tensor; sin: tf.Tensor }): tf.Tensor2D {
    const n = qkv.shape[0] / this.batch;
    const p0 = this.length;
    if (p0 + n > this.maxLength) {
      throw new StrataError(
        'E_USAGE',
        `KV cache: ${p0} cached + ${n} new positions exceed the context length ${this.maxLength}`,
      );
    }
    if (!this.k[layer]) {
      const shape: [number, number, number, number] = [this.batch, this.heads, this.maxLength, this.headDim];
      this.k[layer] = tf.keep(tf.zeros(shape)) as tf.Tensor4D;
      this.v[layer] = tf.keep(tf.zeros(shape)) as tf.Tensor4D;
    }
    return attnDecodeFast(qkv, this.k[layer]!, this.v[layer]!, this.batch, n, this.heads, p0, rope);
  }

  /**
   * Causal attention of `n` new positions of layer `layer` over the cached ones plus themselves, appending
   * their keys and values to the cache. All inputs `[batch, heads, n, headDim]` (q and k after RoPE).
   * `softmax(q·kᵀ/√d_k + mask)·v`, the same math as `causalSelfAttention`. Call {@link advance} once all
   * layers have seen the new positions.
   * @returns `[batch, heads, n, headDim]`
   */
  attend(layer: number, q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D): tf.Tensor4D {
    const n = q.shape[2];
    const p0 = this.length;
    const [kAll, vAll] = this.append(layer, k, v);
    let scores = tf.mul(tf.matMul(q, kAll, false, true), 1 / Math.sqrt(this.headDim));
    if (n > 1) scores = tf.add(scores, cachedCausalMask(n, p0));
    return tf.matMul(tf.softmax(scores), vAll) as tf.Tensor4D;
  }

  /**
   * Appends the keys and values `[batch, heads, n, ·]` of `n` new positions of layer `layer` (unfused cache;
   * k and v may differ in width) and returns all cached ones, `[batch, heads, length + n, ·]`.
   */
  append(layer: number, k: tf.Tensor4D, v: tf.Tensor4D): [tf.Tensor4D, tf.Tensor4D] {
    const n = k.shape[2];
    const p0 = this.length;
    if (p0 + n > this.maxLength) {
      throw new StrataError(
        'E_USAGE',
        `KV cache: ${p0} cached + ${n} new positions exceed the context length ${this.maxLength}`,
      );
    }
    const prevK = this.k[layer];
    const prevV = this.v[layer];
    const kAll = tf.keep(prevK ? (tf.concat([prevK, k], 2) as tf.Tensor4D) : tf.clone(k));
    const vAll = tf.keep(prevV ? (tf.concat([prevV, v], 2) as tf.Tensor4D) : tf.clone(v));
    prevK?.dispose();
    prevV?.dispose();
    this.k[layer] = kAll;
    this.v[layer] = vAll;
    return [kAll, vAll];
  }

  /** Marks `n` more positions as cached (after every layer has attended them). */
  advance(n: number): void {
    this.length += n;
  }

  /** Forgets every cached position. */
  reset(): void {
    this.length = 0;
    if (this.fused) return; // the preallocated buffers are simply overwritten
    this.release();
  }

  private release(): void {
    for (const t of [...this.k, ...this.v]) t?.dispose();
    this.k.fill(undefined);
    this.v.fill(undefined);
  }

  /** Frees the cache's tensors. */
  dispose(): void {
    this.length = 0;
    this.release();
  }
}

/** Additive causal mask `[n, p0+n]` of `n` new positions after `p0` cached ones: −1e9 on each one's future. */
export function cachedCausalMask(n: number, p0: number): tf.Tensor2D {
  const L = p0 + n;
  const m = new Float32Array(n * L);
  for (let i = 0; i < n; i++) for (let j = p0 + i + 1; j < L; j++) m[i * L + j] = -1e9;
  return tf.tensor2d(m, [n, L]);
}

/** A model that can run on new positions only, given a {@link KVCache} (the GPT can). */
export interface IncrementalModel {
  /** An empty cache for `batch` sequences. */
  createKVCache(batch: number): KVCache;
  /**
   * Logits `[batch, n, vocab]` of `n` new positions `ids` `[batch, n]`, at positions `cache.length …`;
   * their keys and values are appended to the cache.
   */
  forwardIncremental(ids: tf.Tensor2D, cache: KVCache): tf.Tensor3D;
}

/** Whether `model` supports {@link IncrementalModel}. */
export function supportsKVCache(model: LanguageModel): model is LanguageModel & IncrementalModel {
  const m = model as Partial<IncrementalModel>;
  return typeof m.forwardIncremental === 'function' && typeof m.createKVCache === 'function';
}

/** Next-token logits for a growing context, reusing a KV cache. See {@link createIncrementalDecoder}. */
export interface IncrementalDecoder {
  /**
   * Logits `[vocab]` of the token after `tokens` (the whole context so far). The model sees the last
   * `contextLength` tokens, exactly like `generate`: while `tokens` extends the previous call's, only the new
   * tokens are run; when the window slides past the context length the cache is rebuilt from the window.
   */
  next(tokens: readonly number[]): Promise<Float32Array>;
  /** Positions computed so far (prefill + incremental), for throughput reports. */
  readonly positionsComputed: number;
  /** Frees the cached keys and values. */
  dispose(): void;
}

/**
 * A KV-cached decoder for one sequence, or `undefined` when the model has no incremental path. To use it in
 * `generate` (sample.ts), replace the per-step `model.forward(window)` with `await decoder.next(ctx)`.
 */
export function createIncrementalDecoder(model: LanguageModel): IncrementalDecoder | undefined {
  if (!supportsKVCache(model)) return undefined;
  const cache = model.createKVCache(1);
  const ctxLen = model.config.contextLength;
  const V = model.config.vocabSize;
  let seen: number[] = [];
  let computed = 0;
  return {
    get positionsComputed() {
      return computed;
    },
    async next(tokens) {
      if (tokens.length === 0) throw new StrataError('E_USAGE', 'the decoder needs at least one token');
      const window = tokens.length > ctxLen ? tokens.slice(-ctxLen) : [...tokens];
      let prefix = seen.length <= window.length && seen.length > 0;
      for (let i = 0; prefix && i < seen.length; i++) if (seen[i] !== window[i]) prefix = false;
      if (!prefix || seen.length === window.length) {
        cache.reset();
        seen = [];
      }
      const fresh = window.slice(seen.length);
      const logitsT = tf.tidy(() => {
        const logits = model.forwardIncremental(tf.tensor2d(fresh, [1, fresh.length], 'int32'), cache);
        return tf.reshape(tf.slice(logits, [0, fresh.length - 1, 0], [1, 1, V]), [V]);
      });
      computed += fresh.length;
      seen = window;
      const out = (await logitsT.data()) as Float32Array;
      logitsT.dispose();
      return out;
    },
    dispose() {
      cache.dispose();
    },
  };
}
