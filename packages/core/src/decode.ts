/**
 * Decoding for encoder-decoder models: batched greedy decoding and beam search, both with the decoder's
 * KV cache and the encoder output computed once per source.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { StrataError } from './errors.js';
import type { EncoderDecoder, Seq2SeqCache } from './model/encdec.js';

/**
 * Log-probabilities of the next token for each hypothesis of a step. Hypothesis `i` of this step is
 * hypothesis `parents[i]` of the previous step extended by `tokens[i]` (the first step has one hypothesis,
 * parent 0, token `<bos>`). Returns one `Float32Array(vocab)` per hypothesis.
 */
export type StepScorer = (parents: readonly number[], tokens: readonly number[]) => Promise<Float32Array[]>;

/** Settings of {@link beamSearch}. */
export interface BeamOptions {
  /** Hypotheses kept per step (1 = greedy). */
  beam: number;
  /** Most tokens generated (the `<eos>` included). */
  maxLength: number;
  /** Start token fed first. */
  bos: number;
  /** End token: a hypothesis that produces it is finished. */
  eos: number;
}

/** One decoded sequence: tokens without `<bos>` and `<eos>`, and its total log-probability. */
export interface Hypothesis {
  /** Generated token ids, without `<bos>` and `<eos>`. */
  tokens: number[];
  /** Sum of the log-probabilities of the tokens, `<eos>` included when finished. */
  score: number;
  /** Whether it ended with `<eos>` (otherwise it hit `maxLength`). */
  finished: boolean;
}

function checkBeam(o: BeamOptions): void {
  if (!Number.isInteger(o.beam) || o.beam < 1)
    throw new StrataError('E_USAGE', `--beam must be an integer >= 1, got ${o.beam}`);
  if (!Number.isInteger(o.maxLength) || o.maxLength < 1)
    throw new StrataError('E_USAGE', `--max-tokens must be an integer >= 1, got ${o.maxLength}`);
}

/** Indices of the `k` largest values, largest first; ties go to the lower index. */
function topK(v: Float32Array, k: number): number[] {
  const idx: number[] = [];
  for (let i = 0; i < v.length; i++) {
    let j = idx.length;
    if (j === k && v[i]! <= v[idx[k - 1]!]!) continue;
    if (j === k) idx.pop();
    j = idx.length;
    while (j > 0 && v[idx[j - 1]!]! < v[i]!) j--;
    idx.splice(j, 0, i);
  }
  return idx;
}

/**
 * Beam search (no length penalty): at each step every live hypothesis is extended by its `beam` best tokens,
 * the `beam` best extensions that do not end in `<eos>` stay live and those that do are finished. It stops
 * when no live hypothesis can beat the best finished one (log-probabilities only decrease), or at
 * `maxLength`. Returns the hypotheses best first (finished ones, then live ones cut at `maxLength`). With
 * `beam` 1 it is greedy decoding.
 */
export async function beamSearch(score: StepScorer, options: BeamOptions): Promise<Hypothesis[]> {
  checkBeam(options);
  const { beam, maxLength, bos, eos } = options;
  let live: Hypothesis[] = [{ tokens: [], score: 0, finished: false }];
  let parents = [0];
  let last = [bos];
  const finished: Hypothesis[] = [];
  for (let step = 0; step < maxLength; step++) {
    const lps = await score(parents, last);
    const cands: { i: number; v: number; s: number }[] = [];
    live.forEach((h, i) => {
      for (const v of topK(lps[i]!, beam)) cands.push({ i, v, s: h.score + lps[i]![v]! });
    });
    cands.sort((a, b) => b.s - a.s || a.i - b.i || a.v - b.v);
    const next: { i: number; v: number; s: number }[] = [];
    for (const c of cands) {
      if (next.length === beam) break;
      if (c.v === eos) finished.push({ tokens: [...live[c.i]!.tokens], score: c.s, finished: true });
      else next.push(c);
    }
    const bestFinished = Math.max(...finished.map((h) => h.score));
    if (next.length === 0 || (finished.length > 0 && bestFinished >= next[0]!.s)) {
      live = [];
      break;
    }
    live = next.map((c) => ({ tokens: [...live[c.i]!.tokens, c.v], score: c.s, finished: false }));
    parents = next.map((c) => c.i);
    last = next.map((c) => c.v);
  }
  return [...finished.sort((a, b) => b.score - a.score), ...live.sort((a, b) => b.score - a.score)];
}

/** Pads (with `padId`) a list of token lists into a `[B, S]` int32 tensor; errors name the longest. */
function sourceTensor(model: EncoderDecoder, sources: readonly (readonly number[])[]): tf.Tensor2D {
  const c = model.config;
  const S = Math.max(1, ...sources.map((s) => s.length));
  sources.forEach((s, i) => {
    if (s.length > c.sourceLength)
      throw new StrataError(
        'E_USAGE',
        `source ${i} has ${s.length} tokens, more than the model's sourceLength ${c.sourceLength}; shorten it or train with a longer --source-length`,
      );
    for (const id of s)
      if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize)
        throw new StrataError(
          'E_USAGE',
          `source ${i}: token ${id} is outside the vocabulary [0, ${c.vocabSize})`,
        );
  });
  const data = new Int32Array(sources.length * S).fill(c.padId);
  sources.forEach((s, i) => {
    data.set(s, i * S);
  });
  return tf.tensor2d(data, [sources.length, S], 'int32');
}

async function logSoftmaxRows(logits: tf.Tensor2D): Promise<Float32Array[]> {
  const lp = tf.logSoftmax(logits);
  const data = (await lp.data()) as Float32Array;
  lp.dispose();
  const [B, V] = logits.shape;
  return Array.from({ length: B }, (_, i) => data.slice(i * V, (i + 1) * V));
}

/**
 * A {@link StepScorer} for one source on an encoder-decoder model: the source is encoded once, the
 * decoder runs one position per step with its KV cache, reordered to follow the surviving hypotheses.
 * Call `dispose` when done.
 */
export function seq2seqScorer(
  model: EncoderDecoder,
  source: readonly number[],
): {
  /** Scores the hypotheses of one step (see {@link StepScorer}). */
  score: StepScorer;
  /** Frees the cached encoder output and decoder keys/values. */
  dispose(): void;
} {
  const src = sourceTensor(model, [source]);
  let cache: Seq2SeqCache;
  try {
    cache = model.startDecoding(src);
  } finally {
    src.dispose();
  }
  return {
    score: async (parents, tokens) => {
      if (parents.length !== cache.batch || parents.some((p, i) => p !== i)) cache.reorder(parents);
      const logits = model.step(tokens, cache);
      try {
        return await logSoftmaxRows(logits);
      } finally {
        logits.dispose();
      }
    },
    dispose: () => cache.dispose(),
  };
}

/**
 * Beam search on an encoder-decoder model for one source (token ids without padding); `maxLength`
 * defaults to the model's `targetLength`. Returns the best hypotheses first.
 */
export async function beamSearchSeq2Seq(
  model: EncoderDecoder,
  source: readonly number[],
  options: { beam: number; maxLength?: number },
): Promise<Hypothesis[]> {
  const c = model.config;
  const maxLength = Math.min(options.maxLength ?? c.targetLength, c.targetLength);
  const scorer = seq2seqScorer(model, source);
  try {
    return await beamSearch(scorer.score, { beam: options.beam, maxLength, bos: c.bosId, eos: c.eosId });
  } finally {
    scorer.dispose();
  }
}

/**
 * Greedy decoding of a batch of sources at once (argmax at every step, lowest id on ties) until every row
 * produced `<eos>` or `maxLength` tokens (default `targetLength`). Returns the tokens of each row without
 * `<bos>`/`<eos>`.
 */
export async function greedyDecode(
  model: EncoderDecoder,
  sources: readonly (readonly number[])[],
  options: { maxLength?: number } = {},
): Promise<number[][]> {
  const c = model.config;
  const maxLength = Math.min(options.maxLength ?? c.targetLength, c.targetLength);
  if (!Number.isInteger(maxLength) || maxLength < 1)
    throw new StrataError('E_USAGE', `--max-tokens must be an integer >= 1, got ${maxLength}`);
  if (sources.length === 0) return [];
  const src = sourceTensor(model, sources);
  let cache: Seq2SeqCache;
  try {
    cache = model.startDecoding(src);
  } finally {
    src.dispose();
  }
  const out: number[][] = sources.map(() => []);
  const done = sources.map(() => false);
  let feed = sources.map(() => c.bosId);
  try {
    for (let t = 0; t < maxLength && done.some((d) => !d); t++) {
      const logits = model.step(feed, cache);
      const arg = tf.argMax(logits, 1);
      const ids = Array.from(await arg.data());
      arg.dispose();
      logits.dispose();
      feed = ids.map((id, i) => {
        if (done[i]) return c.padId;
        if (id === c.eosId) done[i] = true;
        else out[i]!.push(id);
        return id;
      });
    }
  } finally {
    cache.dispose();
  }
  return out;
}
