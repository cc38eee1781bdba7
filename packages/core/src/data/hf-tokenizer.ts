/**
 * Subword tokenizers in the Hugging Face `tokenizer.json` format: any such file a user has, GPT-2's
 * byte-level BPE (its vocabulary from the `js-tiktoken` package, offline), and the BPE tokenizers
 * `strata tokenizer train` writes. Encoding and decoding are done by `@huggingface/tokenizers` (pure JS);
 * Strata only reads the file, records it in checkpoints and maps the special tokens.
 *
 * @module
 */
import { Tokenizer as HFImpl } from '@huggingface/tokenizers';
import { StrataError } from '../errors.js';
import { nodeBuiltin } from '../util/node-builtin.js';
import { createSha256 } from '../util/sha256.js';
import type { SpecialTokenIds, StreamDecoder, Tokenizer } from './tokenizer.js';

/** The file a checkpoint keeps beside `config.json` for a subword tokenizer (the HF format, as is). */
export const TOKENIZER_FILE = 'tokenizer.json';

/** GPT-2's end-of-text token, its only special token (id 50256), used as BOS, EOS and document separator. */
export const GPT2_EOS = '<|endoftext|>';

/** Names by which the roles of special tokens are recognised in a `tokenizer.json`'s added tokens. */
const ROLE_NAMES: Record<Exclude<keyof SpecialTokenIds, 'sentinels'>, string[]> = {
  bos: ['<bos>', '<s>', '<|endoftext|>', '<|begin_of_text|>', '[CLS]'],
  eos: ['<eos>', '</s>', '<|endoftext|>', '<|end_of_text|>', '[SEP]'],
  pad: ['<pad>', '[PAD]', '<|pad|>'],
  unk: ['<unk>', '[UNK]', '<|unk|>'],
  mask: ['<mask>', '[MASK]'],
};

/** An entry of a `tokenizer.json`'s `added_tokens`. */
export interface AddedToken {
  /** The token's id. */
  id: number;
  /** Its text. */
  content: string;
  /** Whether it is a special token (skipped by `skip_special_tokens`); absent: special. */
  special?: boolean;
  /** Hugging Face's matching options (`single_word`, `lstrip`, `rstrip`, `normalized`), kept as written. */
  [option: string]: unknown;
}

/** One special token as a checkpoint records it. */
export interface SpecialTokenRecord {
  /** The token's text, e.g. `<|endoftext|>`. */
  token: string;
  /** Its id. */
  id: number;
}

/** What a checkpoint's `config.json` records of a subword tokenizer (the file itself is `tokenizer.json`). */
export interface HFTokenizerRecord {
  /** `"gpt2"` (GPT-2's vocabulary) or `"hf"` (a user's or a trained `tokenizer.json`). */
  kind: string;
  /** One past the largest token id. */
  vocabSize: number;
  /** The file holding the tokenizer, beside `config.json`. */
  file: string;
  /** SHA-256 of that file's text (`sha256:` + hex), checked when the checkpoint is loaded. */
  sha256: string;
  /** Special tokens by role (`bos`, `eos`, `pad`, `unk`, `mask`): the token's text and id. */
  specials: Record<string, SpecialTokenRecord>;
  /** Number of T5 sentinel tokens `<extra_id_N>` (span corruption). */
  sentinels: number;
  /** Where the tokenizer came from (a path, `js-tiktoken gpt2`, ...), for `strata info`. */
  source?: string;
  /**
   * Special tokens appended after the vocabulary by {@link withAddedTokens} (e.g. `<mask>` on GPT-2's
   * tokenizer for masked-LM training), in id order from the original vocabulary size; absent when none.
   */
  added?: string[];
  [k: string]: unknown;
}

/** Every id of a parsed `tokenizer.json`: its model's vocabulary and its added tokens. */
function fileIds(json: Record<string, unknown>): number[] {
  const ids: number[] = [];
  const vocab = (json.model as { vocab?: unknown }).vocab;
  if (Array.isArray(vocab))
    for (let i = 0; i < vocab.length; i++) ids.push(i); // Unigram: [piece, score] pairs
  else for (const v of Object.values(vocab as Record<string, number>)) ids.push(v);
  for (const t of (Array.isArray(json.added_tokens) ? json.added_tokens : []) as AddedToken[]) ids.push(t.id);
  return ids;
}

function tokenText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string')
    return (v as { content: string }).content;
  return undefined;
}

/**
 * A tokenizer read from a Hugging Face `tokenizer.json` (BPE, WordPiece, Unigram, ... whatever
 * `@huggingface/tokenizers` supports). `encode` never adds special tokens (no BOS/EOS): the dataset
 * separates documents with {@link SpecialTokenIds.eos} itself. Literal special-token text in the input
 * (e.g. `<|endoftext|>`) is read as that special token, as Hugging Face does. Ids outside the vocabulary
 * decode to U+FFFD.
 */
export class HFTokenizer implements Tokenizer {
  /** `"gpt2"` or `"hf"`. */
  readonly kind: string;
  /** One past the largest id of the vocabulary and the added tokens. */
  readonly vocabSize: number;
  /** Special tokens by role (see {@link SpecialTokenIds}). */
  readonly specials: SpecialTokenIds;
  /** The `tokenizer.json` text, as stored in checkpoints. */
  readonly fileText: string;
  private readonly impl: HFImpl;
  private readonly valid: Uint8Array;
  private readonly names = new Map<number, string>();
  private readonly source: string | undefined;
  /** Special tokens appended by {@link withAddedTokens} (recorded in {@link HFTokenizerRecord.added}). */
  readonly added: readonly string[];

  /**
   * @param fileText the `tokenizer.json` text.
   * @param options `kind` (default `"hf"`), `where` (named in errors), `config` (a `tokenizer_config.json`
   *   object whose `bos_token`, `eos_token`, `pad_token`, `unk_token`, `mask_token` name the special tokens),
   *   `specials` (roles to token texts, overriding both), `source` (where it came from, for `strata info`),
   *   `added` (the special tokens {@link withAddedTokens} appended, recorded in the checkpoint).
   * @throws StrataError `E_CONFIG` naming `where` when the text is not a tokenizer.json this library reads.
   */
  constructor(
    fileText: string,
    options: {
      kind?: string;
      where?: string;
      config?: Record<string, unknown>;
      specials?: Record<string, string>;
      source?: string;
      added?: readonly string[];
    } = {},
  ) {
    const where = options.where ?? 'tokenizer.json';
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(fileText) as Record<string, unknown>;
    } catch (e) {
      throw new StrataError('E_CONFIG', `${where}: not JSON (${(e as Error).message})`);
    }
    const model = json.model as { vocab?: unknown; unk_token?: unknown } | undefined;
    if (!json || typeof json !== 'object' || !model || typeof model !== 'object' || !model.vocab)
      throw new StrataError(
        'E_CONFIG',
        `${where}: not a Hugging Face tokenizer.json (it needs a "model" with a "vocab"); save one with tokenizer.save("tokenizer.json") or PreTrainedTokenizerFast.save_pretrained`,
      );
    try {
      this.impl = new HFImpl(json, options.config ?? {});
    } catch (e) {
      throw new StrataError('E_CONFIG', `${where}: cannot be loaded (${(e as Error).message})`);
    }
    this.kind = options.kind ?? 'hf';
    this.fileText = fileText;
    this.source = options.source;
    this.added = options.added ?? [];
    const ids = fileIds(json);
    const added = (Array.isArray(json.added_tokens) ? json.added_tokens : []) as AddedToken[];
    this.vocabSize = ids.reduce((a, b) => Math.max(a, b), -1) + 1;
    this.valid = new Uint8Array(this.vocabSize);
    for (const id of ids) this.valid[id] = 1;
    const byText = new Map(added.map((t) => [t.content, t.id]));
    for (const t of added) if (t.special !== false) this.names.set(t.id, t.content);
    const vocabId = (text: string): number | undefined =>
      byText.get(text) ?? this.impl.token_to_id(text) ?? undefined;
    const specials: SpecialTokenIds = {};
    for (const role of Object.keys(ROLE_NAMES) as (keyof typeof ROLE_NAMES)[]) {
      const explicit = options.specials?.[role] ?? tokenText(options.config?.[`${role}_token`]);
      const text =
        explicit ??
        (role === 'unk' ? tokenText(model.unk_token) : undefined) ??
        ROLE_NAMES[role].find((n) => byText.has(n));
      if (text === undefined) continue;
      const id = vocabId(text);
      if (id === undefined)
        throw new StrataError(
          'E_CONFIG',
          `${where}: the ${role} token ${JSON.stringify(text)} is not in the vocabulary`,
        );
      specials[role] = id;
    }
    const sentinels: number[] = [];
    for (let k = 0; byText.has(`<extra_id_${k}>`); k++) sentinels.push(byText.get(`<extra_id_${k}>`)!);
    if (sentinels.length) specials.sentinels = sentinels;
    this.specials = specials;
  }

  /** The token ids of `text` (no special tokens added); a `Uint16Array` when every id fits in 16 bits. */
  encode(text: string): Uint16Array | Int32Array {
    const ids = this.impl.encode(text, { add_special_tokens: false }).ids;
    return this.vocabSize <= 65536 ? Uint16Array.from(ids) : Int32Array.from(ids);
  }

  /** The text of `ids`; special tokens appear as their text, ids outside the vocabulary as U+FFFD. */
  decode(ids: ArrayLike<number>): string {
    let out = '';
    let run: number[] = [];
    const flush = () => {
      if (run.length)
        out += this.impl.decode(run, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
      run = [];
    };
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (Number.isInteger(id) && id >= 0 && id < this.vocabSize && this.valid[id]) run.push(id);
      else {
        flush();
        out += '\uFFFD';
      }
    }
    flush();
    return out;
  }

  /**
   * An incremental decoder: each push decodes the whole sequence so far and returns the new text, holding
   * back trailing U+FFFD (the start of a character whose remaining bytes are still to come).
   */
  decoder(): StreamDecoder {
    const ids: number[] = [];
    let emitted = '';
    const step = (final: boolean): string => {
      const text = this.decode(ids);
      const stable = final ? text : text.replace(/\uFFFD+$/, '');
      if (!stable.startsWith(emitted) || stable.length <= emitted.length) return '';
      const fresh = stable.slice(emitted.length);
      emitted = stable;
      return fresh;
    };
    return {
      push: (more) => {
        if (typeof more === 'number') ids.push(more);
        else for (let i = 0; i < more.length; i++) ids.push(more[i]!);
        return step(false);
      },
      flush: () => step(true),
    };
  }

  /** The text of special token `id`, or undefined for an ordinary token. */
  specialName(id: number): string | undefined {
    return this.names.get(id);
  }

  /** The files a checkpoint keeps beside `config.json`: `tokenizer.json`. */
  files(): Record<string, string> {
    return { [TOKENIZER_FILE]: this.fileText };
  }

  /** The {@link HFTokenizerRecord} stored in `config.json`. */
  toJSON(): HFTokenizerRecord {
    const specials: HFTokenizerRecord['specials'] = {};
    for (const role of Object.keys(ROLE_NAMES) as (keyof typeof ROLE_NAMES)[]) {
      const id = this.specials[role];
      if (id !== undefined) specials[role] = { token: this.impl.id_to_token(id) ?? '', id };
    }
    return {
      kind: this.kind,
      vocabSize: this.vocabSize,
      file: TOKENIZER_FILE,
      sha256: sha256Text(this.fileText),
      specials,
      sentinels: this.specials.sentinels?.length ?? 0,
      ...(this.source !== undefined ? { source: this.source } : {}),
      ...(this.added.length ? { added: [...this.added] } : {}),
    };
  }
}

/**
 * An entry of a `tokenizer.json`'s `added_tokens` for special token `content` with id `id`, as Hugging Face
 * writes one (matched as a whole, never normalized, skipped by `skip_special_tokens`).
 */
export function specialAddedToken(id: number, content: string): AddedToken {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

/**
 * The `tokenizer.json` text with `tokens` appended as special added tokens, with ids from one past the
 * largest id on (as Hugging Face's `tokenizer.add_special_tokens` does); the rest of the file is unchanged.
 *
 * @throws StrataError `E_CONFIG` when a token is already in the file.
 */
export function appendAddedTokens(fileText: string, tokens: readonly string[]): string {
  const json = JSON.parse(fileText) as Record<string, unknown>;
  const next = fileIds(json).reduce((a, b) => Math.max(a, b), -1) + 1;
  const added = (Array.isArray(json.added_tokens) ? json.added_tokens : []) as AddedToken[];
  tokens.forEach((content, i) => {
    if (added.some((t) => t.content === content))
      throw new StrataError('E_CONFIG', `cannot add ${content} to the tokenizer: it has that token already`);
    added.push(specialAddedToken(next + i, content));
  });
  return JSON.stringify({ ...json, added_tokens: added });
}

/**
 * A copy of `tokenizer` with special tokens appended after its vocabulary (ids `vocabSize`, `vocabSize + 1`,
 * …), e.g. `<mask>` and `<pad>` on GPT-2's tokenizer, which has only `<|endoftext|>`. The roles are
 * recognised by name (`<pad>`, `<mask>`, `<bos>`, `<eos>`, `<extra_id_N>`); the kind stays, and the record
 * lists the added tokens so that a checkpoint of the `gpt2` kind can be rebuilt even without its file.
 */
export function withAddedTokens(tokenizer: HFTokenizer, tokens: readonly string[]): HFTokenizer {
  if (tokens.length === 0) return tokenizer;
  const added = [...tokenizer.added, ...tokens];
  const rec = tokenizer.toJSON();
  return new HFTokenizer(appendAddedTokens(tokenizer.fileText, tokens), {
    kind: tokenizer.kind,
    where: rec.file,
    ...(rec.source !== undefined ? { source: rec.source } : {}),
    added,
  });
}

/** `sha256:` + the hex SHA-256 of a text's UTF-8 bytes. */
export function sha256Text(text: string): string {
  return `sha256:${createSha256().update(text).hex()}`;
}

/**
 * Reads a user's `tokenizer.json` (and the `tokenizer_config.json` beside it, when there is one, for the
 * names of its special tokens).
 *
 * @throws StrataError `E_CONFIG` naming the path when it is missing or not a tokenizer.json.
 */
export function loadTokenizerFile(path: string, kind = 'hf'): HFTokenizer {
  const { existsSync, readFileSync } = nodeBuiltin('node:fs', `reading the tokenizer file ${path}`);
  const { dirname, join, resolve } = nodeBuiltin('node:path', `reading the tokenizer file ${path}`);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new StrataError(
      'E_CONFIG',
      `--tokenizer ${path}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); give byte, gpt2 or the path of a Hugging Face tokenizer.json`,
    );
  }
  const cfgPath = join(dirname(path), 'tokenizer_config.json');
  let config: Record<string, unknown> | undefined;
  if (existsSync(cfgPath)) {
    try {
      config = JSON.parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new StrataError('E_CONFIG', `${cfgPath}: not JSON (${(e as Error).message})`);
    }
  }
  return new HFTokenizer(text, { kind, where: path, source: resolve(path), ...(config ? { config } : {}) });
}

/**
 * GPT-2's byte-to-character map: each byte becomes a printable character (bytes that are printable
 * Latin-1 map to themselves, the others to U+0100 onwards), so byte-level tokens can be JSON strings.
 */
export function byteLevelAlphabet(): string[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const map: string[] = new Array(256);
  for (const b of printable) map[b] = String.fromCodePoint(b);
  let n = 0;
  for (let b = 0; b < 256; b++) if (map[b] === undefined) map[b] = String.fromCodePoint(256 + n++);
  return map;
}

let gpt2Cache: string | undefined;

/**
 * GPT-2's `tokenizer.json` (the Hugging Face `gpt2` tokenizer: 50,000 merges, 50,257 ids, `<|endoftext|>`
 * = 50256), built offline from the ranks that the `js-tiktoken` package ships (`js-tiktoken/ranks/gpt2`).
 *
 * The ranks are the vocabulary in merge order: token `256 + k` is made by merge `k`. The pair of merge `k`
 * is found by applying the merges below `k` to the token's bytes, lowest rank first, until two parts are
 * left (the only split BPE can produce). The result equals OpenAI's `vocab.bpe` and `encoder.json`
 * (checked by the tests against their SHA-256).
 *
 * @throws StrataError `E_CONFIG` when `js-tiktoken` is not installed.
 */
export function gpt2TokenizerJSON(): string {
  if (gpt2Cache !== undefined) return gpt2Cache;
  let ranks: { bpe_ranks: string; special_tokens: Record<string, number> };
  const { createRequire } = nodeBuiltin('node:module', "loading GPT-2's vocabulary (js-tiktoken)");
  try {
    const req = createRequire(import.meta.url);
    const mod = req('js-tiktoken/ranks/gpt2') as { default?: typeof ranks } & typeof ranks;
    ranks = mod.default ?? mod;
  } catch (e) {
    throw new StrataError(
      'E_CONFIG',
      `--tokenizer gpt2 needs the js-tiktoken package, which ships GPT-2's vocabulary: npm install js-tiktoken (${(e as Error).message.split('\n')[0]})`,
    );
  }
  const tokens: Buffer[] = [];
  for (const line of ranks.bpe_ranks.split('\n')) {
    if (!line) continue;
    const [, offset, ...list] = line.split(' ');
    list.forEach((t, i) => {
      tokens[Number(offset) + i] = Buffer.from(t, 'base64');
    });
  }
  const key = (b: Buffer) => b.toString('latin1');
  const rank = new Map(tokens.map((t, r) => [key(t), r]));
  const chars = byteLevelAlphabet();
  const show = (b: Buffer) => Array.from(b, (x) => chars[x]).join('');
  const merges: [string, string][] = [];
  for (let r = 256; r < tokens.length; r++) {
    const t = tokens[r]!;
    const parts: Buffer[] = [];
    for (let i = 0; i < t.length; i++) parts.push(t.subarray(i, i + 1));
    while (parts.length > 2) {
      let best = -1;
      let bestRank = r;
      for (let i = 0; i + 1 < parts.length; i++) {
        const q = rank.get(key(Buffer.concat([parts[i]!, parts[i + 1]!])));
        if (q !== undefined && q < bestRank) {
          bestRank = q;
          best = i;
        }
      }
      if (best < 0) throw new Error(`GPT-2 ranks: token ${r} cannot be built from lower ranks`);
      parts.splice(best, 2, Buffer.concat([parts[best]!, parts[best + 1]!]));
    }
    merges.push([show(parts[0]!), show(parts[1]!)]);
  }
  const vocab: Record<string, number> = {};
  tokens.forEach((t, r) => {
    vocab[show(t)] = r;
  });
  const added = Object.entries(ranks.special_tokens).map(([content, id]) => {
    vocab[content] = id;
    return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true };
  });
  gpt2Cache = JSON.stringify({
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  });
  return gpt2Cache;
}

let gpt2Instance: HFTokenizer | undefined;

/** GPT-2's tokenizer (kind `"gpt2"`), from {@link gpt2TokenizerJSON}; one shared instance (it is immutable). */
export function gpt2Tokenizer(): HFTokenizer {
  gpt2Instance ??= new HFTokenizer(gpt2TokenizerJSON(), {
    kind: 'gpt2',
    source: 'GPT-2 (js-tiktoken gpt2 ranks)',
  });
  return gpt2Instance;
}
