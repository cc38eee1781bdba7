/**
 * A tokenized text with a deterministic train/validation split and stateless batch sampling.
 *
 * @module
 */
import { StrataError } from '../errors.js';
import { Rng } from '../util/rng.js';
import { createSha256 } from '../util/sha256.js';
import { ByteTokenizer, type TokenArray, type Tokenizer } from './tokenizer.js';

/** Options of {@link TextDataset}. */
export interface TextDatasetOptions {
  /** Fraction of the tokens held out for validation, in [0, 1). Default 0.1; 0 disables validation. */
  valFraction?: number;
  /** Seed of the split and of the batch sampling. Default 0. */
  seed?: number;
  /**
   * Nominal size of the chunks that are assigned to train or validation (default 4096 tokens). Validation
   * windows never span two chunks unless both are validation chunks, so it must exceed the context length.
   */
  chunkSize?: number;
}

/** The text a {@link TextDataset} is built from: documents (joined by `"\n\n"`) or one text. */
export type DatasetText =
  | {
      /** The whole text (used as is when given). */
      text: string;
      /** The documents it was joined from, only counted here (the text wins). */
      documents?: readonly string[];
    }
  | {
      /** Documents, joined with `"\n\n"` when no `text` is given. */
      documents: readonly string[];
      /** The joined text, if already at hand. */
      text?: string;
    }
  | {
      /** Token ids already encoded by `tokenizer` (e.g. by `tokenizeSource`, from its cache). */
      tokens: TokenArray;
      /** Number of documents they hold (default 1). */
      documents?: number;
    }
  | string;

/** A contiguous run of tokens `[start, end)` that belongs entirely to one split. */
export interface Segment {
  /** First token index. */
  readonly start: number;
  /** One past the last token index. */
  readonly end: number;
}

/**
 * A batch of `batchSize` windows of `seqLen + 1` consecutive tokens: `x` holds the first `seqLen` of each,
 * `y` the last `seqLen` (the next-token targets), both row-major `[batchSize, seqLen]`.
 */
export interface TokenBatch {
  /** Input token ids, `batchSize * seqLen` values, row-major. */
  x: Int32Array;
  /** Target token ids: `y[b, t]` is the token after `x[b, t]`. */
  y: Int32Array;
  /** Rows in this batch (always the requested batch size). */
  batchSize: number;
  /** Tokens per row. */
  seqLen: number;
}

/** Token counts of a {@link TextDataset} (see {@link TextDataset.stats}). */
export interface DatasetStats {
  /** All tokens. */
  totalTokens: number;
  /** Tokens in the training split. */
  trainTokens: number;
  /** Tokens in the validation split. */
  valTokens: number;
  /** Contiguous training segments (runs of adjacent training chunks). */
  trainSegments: number;
  /** Contiguous validation segments. */
  valSegments: number;
  /** Number of chunks the tokens were cut into for the split (1 contiguous validation block for small data). */
  chunks: number;
  /** Actual chunk size used (≈ the `chunkSize` option; equal-sized chunks). */
  chunkSize: number;
  /** Documents in the source. */
  documents: number;
  /** The tokenizer's vocabulary size. */
  vocabSize: number;
  /** The requested validation fraction. */
  valFraction: number;
  /** The seed of the split and sampling. */
  seed: number;
}

/** Below this many chunks the validation split is one contiguous block at the start or end. */
const MIN_CHUNKS = 10;

interface SamplingTable {
  segments: Segment[];
  /** cum[i] = number of window starts in segments[0..i). */
  cum: number[];
  total: number;
}

/**
 * A tokenized text, split deterministically (from the seed) into training and validation parts, that
 * hands out batches of next-token-prediction windows.
 *
 * **Split.** The tokens (the documents joined by `"\n\n"`) are cut into equal chunks of about `chunkSize`
 * tokens; `round(valFraction × chunks)` of them (at least 1 when `valFraction > 0`, at most all but one),
 * chosen at random with `Rng.derive(seed, 'split')`, form the validation split. When the data has fewer
 * than 10 chunks, the validation split is instead one contiguous block of `round(valFraction × tokens)`
 * tokens at the start or the end (chosen from the seed), so that training keeps one contiguous segment.
 * Adjacent chunks of a split form a {@link Segment}; no window ever crosses a segment boundary, so no
 * training window contains a validation token.
 *
 * **Batches.** {@link TextDataset.trainBatch} is stateless: the batch of step `s` depends only on the data,
 * the seed, `s`, `batchSize` and `seqLen`, so a resumed run sees exactly the batches of an
 * uninterrupted one. {@link TextDataset.valBatches} is a fixed list.
 */
export class TextDataset {
  /** All token ids, training and validation. */
  readonly tokens: TokenArray;
  /** The tokenizer that produced {@link TextDataset.tokens}. */
  readonly tokenizer: Tokenizer;
  /** Seed of the split and of the sampling. */
  readonly seed: number;
  /** Requested validation fraction. */
  readonly valFraction: number;
  /** Training segments, in token order. */
  readonly train: readonly Segment[];
  /** Validation segments, in token order. */
  readonly val: readonly Segment[];
  private readonly documentCount: number;
  private readonly chunkCount: number;
  private readonly actualChunkSize: number;
  private readonly tables = new Map<string, SamplingTable>();
  private fingerprint: string | undefined;

  /**
   * Tokenizes `source` and splits it.
   *
   * @param source documents, a text, or both (`text` wins when both are given).
   * @param tokenizer default: a {@link ByteTokenizer}.
   * @throws StrataError `E_DATA` when the text has no tokens; `E_CONFIG` for invalid options.
   */
  constructor(
    source: DatasetText,
    tokenizer: Tokenizer = new ByteTokenizer(),
    options: TextDatasetOptions = {},
  ) {
    let text: string | undefined;
    let documents: number;
    let given: TokenArray | undefined;
    if (typeof source === 'string') {
      text = source;
      documents = 1;
    } else if ('tokens' in source) {
      given = source.tokens;
      documents = source.documents ?? 1;
    } else if (typeof source.text === 'string') {
      text = source.text;
      documents = source.documents?.length ?? 1;
    } else if (Array.isArray(source.documents)) {
      text = source.documents.join('\n\n');
      documents = source.documents.length;
    } else {
      throw new StrataError('E_DATA', 'a dataset needs { documents: string[] } or { text: string }');
    }
    const tokens = given ?? tokenizer.encode(text ?? '');
    const { seed = 0, valFraction = 0.1, chunkSize = 4096 } = options;
    if (!Number.isInteger(seed)) throw new StrataError('E_CONFIG', `seed must be an integer, got ${seed}`);
    if (!(valFraction >= 0 && valFraction < 1)) {
      throw new StrataError('E_CONFIG', `valFraction must be in [0, 1), got ${valFraction}`);
    }
    if (!Number.isInteger(chunkSize) || chunkSize < 2) {
      throw new StrataError('E_CONFIG', `chunkSize must be an integer ≥ 2, got ${chunkSize}`);
    }
    const n = tokens.length;
    if (n === 0) throw new StrataError('E_DATA', 'the training text is empty (0 tokens)');
    if (n < 2) throw new StrataError('E_DATA', `the training text has only ${n} token; need at least 2`);

    this.tokens = tokens;
    this.tokenizer = tokenizer;
    this.seed = seed;
    this.valFraction = valFraction;
    this.documentCount = documents;

    const rng = Rng.derive(seed, 'split');
    const nChunks = Math.max(1, Math.round(n / chunkSize));
    const isVal: boolean[] = [];
    const bounds: number[] = [];
    if (nChunks < MIN_CHUNKS) {
      // Small data: one contiguous validation block at the start or the end.
      const valLen = valFraction > 0 ? Math.min(n - 1, Math.max(1, Math.round(n * valFraction))) : 0;
      const atEnd = rng.next() < 0.5;
      if (valLen === 0) {
        bounds.push(0, n);
        isVal.push(false);
      } else if (atEnd) {
        bounds.push(0, n - valLen, n);
        isVal.push(false, true);
      } else {
        bounds.push(0, valLen, n);
        isVal.push(true, false);
      }
      this.chunkCount = 1;
      this.actualChunkSize = n;
    } else {
      for (let i = 0; i <= nChunks; i++) bounds.push(Math.floor((i * n) / nChunks));
      const k = valFraction > 0 ? Math.min(nChunks - 1, Math.max(1, Math.round(valFraction * nChunks))) : 0;
      // Partial Fisher–Yates shuffle: the first k indices are the validation chunks.
      const order = Array.from({ length: nChunks }, (_, i) => i);
      for (let i = 0; i < k; i++) {
        const j = i + rng.int(nChunks - i);
        const t = order[i]!;
        order[i] = order[j]!;
        order[j] = t;
      }
      for (let i = 0; i < nChunks; i++) isVal.push(false);
      for (let i = 0; i < k; i++) isVal[order[i]!] = true;
      this.chunkCount = nChunks;
      this.actualChunkSize = Math.round(n / nChunks);
    }
    const train: Segment[] = [];
    const val: Segment[] = [];
    for (let i = 0; i < isVal.length; i++) {
      const list = isVal[i] ? val : train;
      const start = bounds[i]!;
      const end = bounds[i + 1]!;
      if (end <= start) continue;
      const last = list[list.length - 1];
      if (last !== undefined && last.end === start) list[list.length - 1] = { start: last.start, end };
      else list.push({ start, end });
    }
    this.train = train;
    this.val = val;
  }

  /**
   * Checks that both splits can hold at least one window of `seqLen + 1` tokens (the validation split only
   * when `valFraction > 0`).
   *
   * @throws StrataError `E_DATA` naming the token counts needed and available.
   */
  requireSeqLen(seqLen: number): void {
    checkPositiveInt('seqLen', seqLen);
    this.table('train', seqLen);
    if (this.valFraction > 0) this.table('val', seqLen);
  }

  /**
   * The training batch of step `step`: `batchSize` windows drawn uniformly (with replacement) among all
   * windows of `seqLen + 1` tokens that lie inside one training segment, using `Rng.derive(seed, 'train',
   * step)`. Stateless: equal arguments give an identical batch.
   *
   * @throws StrataError `E_DATA` when no training segment has `seqLen + 1` tokens.
   */
  trainBatch(step: number, batchSize: number, seqLen: number): TokenBatch {
    const starts = this.trainWindowStarts(step, batchSize, seqLen);
    const x = new Int32Array(batchSize * seqLen);
    const y = new Int32Array(batchSize * seqLen);
    for (let b = 0; b < batchSize; b++) this.copyWindow(starts[b]!, seqLen, x, y, b);
    return { x, y, batchSize, seqLen };
  }

  /**
   * The start positions (token indices) of the windows of {@link TextDataset.trainBatch}, for tests and
   * diagnostics: row `b` of the batch is `tokens[start[b] .. start[b] + seqLen]`.
   */
  trainWindowStarts(step: number, batchSize: number, seqLen: number): number[] {
    if (!Number.isInteger(step) || step < 0) {
      throw new StrataError('E_CONFIG', `step must be an integer ≥ 0, got ${step}`);
    }
    checkPositiveInt('batchSize', batchSize);
    checkPositiveInt('seqLen', seqLen);
    const table = this.table('train', seqLen);
    const rng = Rng.derive(this.seed, 'train', step);
    const starts: number[] = [];
    for (let b = 0; b < batchSize; b++) starts.push(this.locate(table, uniformInt(rng, table.total)));
    return starts;
  }

  /**
   * A fixed, deterministic list of validation batches, each with exactly `batchSize` rows. Each validation
   * segment is covered by consecutive windows of `seqLen + 1` tokens with stride `seqLen`, so the inputs
   * of different windows do not overlap and neither do their targets (every validation token except a
   * segment's first is predicted at most once). `min(maxBatches, floor(windows / batchSize))` batches are
   * made from an evenly spaced subset of the windows, so the whole split is represented; when there are
   * fewer windows than `batchSize`, the one batch repeats them cyclically. Returns `[]` when `valFraction`
   * is 0.
   *
   * @throws StrataError `E_DATA` when no validation segment has `seqLen + 1` tokens.
   */
  valBatches(batchSize: number, seqLen: number, maxBatches = Number.POSITIVE_INFINITY): TokenBatch[] {
    checkPositiveInt('batchSize', batchSize);
    checkPositiveInt('seqLen', seqLen);
    if (!(maxBatches >= 1)) throw new StrataError('E_CONFIG', `maxBatches must be ≥ 1, got ${maxBatches}`);
    const starts = this.valWindowStarts(batchSize, seqLen, maxBatches);
    const batches: TokenBatch[] = [];
    for (let i = 0; i < starts.length; i += batchSize) {
      const x = new Int32Array(batchSize * seqLen);
      const y = new Int32Array(batchSize * seqLen);
      for (let b = 0; b < batchSize; b++) this.copyWindow(starts[i + b]!, seqLen, x, y, b);
      batches.push({ x, y, batchSize, seqLen });
    }
    return batches;
  }

  /**
   * The start positions (token indices) of the rows of {@link TextDataset.valBatches}, in order: row `r`
   * of batch `i` is the window `tokens[s .. s + seqLen]` with `s = starts[i * batchSize + r]`.
   */
  valWindowStarts(batchSize: number, seqLen: number, maxBatches = Number.POSITIVE_INFINITY): number[] {
    checkPositiveInt('batchSize', batchSize);
    checkPositiveInt('seqLen', seqLen);
    if (this.val.length === 0) return [];
    this.table('val', seqLen); // validates
    const all: number[] = [];
    for (const seg of this.val) {
      for (let s = seg.start; s + seqLen + 1 <= seg.end; s += seqLen) all.push(s);
    }
    if (all.length < batchSize) {
      const cyc: number[] = [];
      for (let i = 0; i < batchSize; i++) cyc.push(all[i % all.length]!);
      return cyc;
    }
    const want = Math.min(Math.floor(all.length / batchSize), Math.floor(maxBatches)) * batchSize;
    if (want === all.length) return all;
    const picked: number[] = [];
    for (let i = 0; i < want; i++) picked.push(all[Math.floor((i * all.length) / want)]!);
    return picked;
  }

  /** Token counts and split facts. */
  stats(): DatasetStats {
    const sum = (segs: readonly Segment[]): number => segs.reduce((a, s) => a + s.end - s.start, 0);
    return {
      totalTokens: this.tokens.length,
      trainTokens: sum(this.train),
      valTokens: sum(this.val),
      trainSegments: this.train.length,
      valSegments: this.val.length,
      chunks: this.chunkCount,
      chunkSize: this.actualChunkSize,
      documents: this.documentCount,
      vocabSize: this.tokenizer.vocabSize,
      valFraction: this.valFraction,
      seed: this.seed,
    };
  }

  /**
   * A SHA-256 hash (hex, prefixed `sha256:`) of the token ids and the tokenizer kind, to check on resume
   * that a run continues on the same data. It does not depend on the seed or the split options.
   */
  datasetFingerprint(): string {
    if (this.fingerprint === undefined) {
      const t = this.tokens;
      const h = createSha256();
      h.update(`${this.tokenizer.kind}:${t.constructor.name}:${t.length}:`);
      h.update(new Uint8Array(t.buffer, t.byteOffset, t.byteLength));
      this.fingerprint = `sha256:${h.hex()}`;
    }
    return this.fingerprint;
  }

  private copyWindow(start: number, seqLen: number, x: Int32Array, y: Int32Array, row: number): void {
    const t = this.tokens;
    x.set(t.subarray(start, start + seqLen), row * seqLen);
    y.set(t.subarray(start + 1, start + seqLen + 1), row * seqLen);
  }

  private locate(table: SamplingTable, r: number): number {
    // Largest i with cum[i] <= r.
    const { cum, segments } = table;
    let lo = 0;
    let hi = segments.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (cum[mid]! <= r) lo = mid;
      else hi = mid - 1;
    }
    return segments[lo]!.start + (r - cum[lo]!);
  }

  private table(split: 'train' | 'val', seqLen: number): SamplingTable {
    const key = `${split}:${seqLen}`;
    const hit = this.tables.get(key);
    if (hit) return hit;
    const all = split === 'train' ? this.train : this.val;
    const segments = all.filter((s) => s.end - s.start >= seqLen + 1);
    if (segments.length === 0) throw this.tooSmall(split, seqLen);
    const cum: number[] = [];
    let total = 0;
    for (const s of segments) {
      cum.push(total);
      total += s.end - s.start - seqLen;
    }
    const table = { segments, cum, total };
    this.tables.set(key, table);
    return table;
  }

  private tooSmall(split: 'train' | 'val', seqLen: number): StrataError {
    const need = seqLen + 1;
    const st = this.stats();
    const segs = split === 'train' ? this.train : this.val;
    const longest = segs.reduce((a, s) => Math.max(a, s.end - s.start), 0);
    const name = split === 'train' ? 'training' : 'validation';
    const have =
      segs.length <= 1
        ? `the ${name} split has ${longest} tokens`
        : `the longest contiguous ${name} segment has ${longest} tokens`;
    let advice: string;
    if (st.chunks === 1) {
      const frac = Math.min(this.valFraction > 0 ? this.valFraction : 1, 1 - this.valFraction);
      const minTotal = Math.ceil(need / frac);
      advice = `the data has ${st.totalTokens} tokens (${st.trainTokens} train, ${st.valTokens} validation with valFraction ${this.valFraction}); a context of ${seqLen} needs at least ${minTotal} tokens in all — use more text or a shorter context`;
    } else {
      advice = `the split uses chunks of ≈${st.chunkSize} tokens; use a chunkSize of at least ${need} or a shorter context`;
    }
    return new StrataError(
      'E_DATA',
      `not enough ${name} data for a context length of ${seqLen}: need at least ${need} contiguous tokens but ${have}; ${advice}`,
    );
  }
}

function checkPositiveInt(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1)
    throw new StrataError('E_CONFIG', `${name} must be a positive integer, got ${v}`);
}

/** Uniform integer in [0, n) for n up to 2^53, from one or two 32-bit draws. */
function uniformInt(rng: Rng, n: number): number {
  if (n <= 0x100000000) return rng.int(n);
  const hi = rng.nextU32() >>> 11; // 21 bits
  const lo = rng.nextU32(); // 32 bits
  return Math.floor(((hi * 0x100000000 + lo) / 2 ** 53) * n);
}
