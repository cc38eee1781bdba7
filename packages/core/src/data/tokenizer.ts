/**
 * Tokenizers: text ⇄ integer token ids. The default is byte level (UTF-8 bytes, vocabulary 256), which
 * needs no training and no vocabulary file and can represent any text. Subword tokenizers (GPT-2's BPE,
 * any Hugging Face `tokenizer.json`, trained BPE) are in `hf-tokenizer.ts`; a checkpoint stores their
 * `tokenizer.json` beside `config.json`.
 *
 * @module
 */
import { formatChoices, StrataError } from '../errors.js';
import {
  appendAddedTokens,
  gpt2Tokenizer,
  gpt2TokenizerJSON,
  HFTokenizer,
  loadTokenizerFile,
  sha256Text,
  TOKENIZER_FILE,
} from './hf-tokenizer.js';

/** Token ids as produced by a tokenizer: a compact typed array (bytes for the byte tokenizer). */
export type TokenArray = Uint8Array | Uint16Array | Int32Array;

/** Turns text into token ids and back. Implementations must be deterministic and serializable. */
export interface Tokenizer {
  /** The registered kind, e.g. `"byte"`; stored in checkpoints by {@link Tokenizer.toJSON}. */
  readonly kind: string;
  /** Number of distinct token ids; every id is in `[0, vocabSize)`. */
  readonly vocabSize: number;
  /** Encodes text into token ids. */
  encode(text: string): TokenArray;
  /** Decodes token ids into text; never throws on malformed sequences (they become U+FFFD). */
  decode(ids: ArrayLike<number>): string;
  /**
   * An incremental decoder for generation: feed ids as they are sampled and get back only the text of
   * complete characters; bytes of a partial UTF-8 sequence are held until it completes.
   */
  decoder(): StreamDecoder;
  /**
   * Special tokens by role (beginning and end of sequence, padding, mask, sentinels), when the tokenizer has
   * any. The dataset separates documents with `eos`; the encoder tasks use `pad`, `mask`, `bos`, `eos` and
   * the sentinels.
   */
  readonly specials?: SpecialTokenIds;
  /**
   * The text of special token `id` (`<mask>`, `<extra_id_3>`, `<|endoftext|>`), or undefined for an ordinary
   * token. The masked-LM task never draws a special token as a random replacement. Absent: no special tokens.
   */
  specialName?(id: number): string | undefined;
  /**
   * Files a checkpoint stores beside `config.json` to rebuild this tokenizer (name → text), e.g.
   * `tokenizer.json` for a subword tokenizer; {@link tokenizerFromJSON} gets them back. Absent: none.
   */
  files?(): Record<string, string>;
  /** A JSON description from which {@link tokenizerFromJSON} rebuilds an identical tokenizer. */
  toJSON(): Record<string, unknown> & {
    /** The registered kind, e.g. `"byte"`. */
    kind: string;
  };
}

/** Ids of a tokenizer's special tokens by role; a role the tokenizer lacks is absent. */
export interface SpecialTokenIds {
  /** Beginning of sequence (a decoder's start token). */
  bos?: number;
  /** End of sequence; also the separator between documents in a dataset. */
  eos?: number;
  /** Padding. */
  pad?: number;
  /** Unknown token. */
  unk?: number;
  /** Mask of masked-language modelling. */
  mask?: number;
  /** T5 sentinels `<extra_id_0>`, `<extra_id_1>`, ... of span corruption, in order. */
  sentinels?: number[];
}

/** Incremental decoder returned by {@link Tokenizer.decoder}. */
export interface StreamDecoder {
  /** Adds token ids; returns the newly completed text (possibly `""`). */
  push(ids: number | ArrayLike<number>): string;
  /** Ends the stream: returns any held partial sequence as U+FFFD replacement characters. */
  flush(): string;
}

const encoder = new TextEncoder();

/** Replacement for invalid ids (outside 0..255): a byte that is never valid in UTF-8, so it decodes to U+FFFD. */
const INVALID_BYTE = 0xff;

function toBytes(ids: ArrayLike<number>): Uint8Array {
  if (ids instanceof Uint8Array) return ids;
  const out = new Uint8Array(ids.length);
  for (let i = 0; i < ids.length; i++) {
    const v = ids[i]!;
    out[i] = Number.isInteger(v) && v >= 0 && v <= 255 ? v : INVALID_BYTE;
  }
  return out;
}

/**
 * Byte-level tokenizer: the token ids of a text are its UTF-8 bytes (vocabulary 256). Decoding invalid
 * or incomplete UTF-8 (which a sampling model can produce) yields U+FFFD replacement characters instead
 * of throwing; ids outside 0..255 decode to U+FFFD as well.
 */
export class ByteTokenizer implements Tokenizer {
  /** Always `"byte"`. */
  readonly kind = 'byte';
  /** Always 256. */
  readonly vocabSize = 256;

  /** Encodes `text` as its UTF-8 bytes. */
  encode(text: string): Uint8Array {
    return encoder.encode(text);
  }

  /** Decodes UTF-8 bytes; malformed or truncated sequences become U+FFFD. */
  decode(ids: ArrayLike<number>): string {
    return new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }).decode(toBytes(ids));
  }

  /** An incremental UTF-8 decoder that only emits complete characters (see {@link StreamDecoder}). */
  decoder(): StreamDecoder {
    const td = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
    return {
      push(ids: number | ArrayLike<number>): string {
        const bytes = typeof ids === 'number' ? toBytes([ids]) : toBytes(ids);
        return td.decode(bytes, { stream: true });
      },
      flush(): string {
        return td.decode();
      },
    };
  }

  /** `{ kind: "byte" }`. */
  toJSON(): {
    /** Always `"byte"`. */
    kind: 'byte';
  } {
    return { kind: 'byte' };
  }
}

/** Names of the special tokens of a {@link ByteSpecialTokenizer}, in id order after the 256 bytes. */
export const SPECIAL_TOKENS = ['<pad>', '<mask>', '<bos>', '<eos>'] as const;

/**
 * Byte-level tokenizer plus special tokens, for encoder-only (masked-language modelling) and
 * encoder-decoder models: ids 0–255 are UTF-8 bytes, then `<pad>` (256), `<mask>` (257), `<bos>` (258),
 * `<eos>` (259), then `sentinels` T5 sentinel tokens `<extra_id_0>` … (260 …) used by span corruption.
 * `encode` never produces special tokens (text is bytes); {@link ByteSpecialTokenizer.encodeWithSpecials}
 * reads the literal names. Special ids decode to their names; `<pad>` decodes to nothing.
 */
export class ByteSpecialTokenizer implements Tokenizer {
  /** Always `"byte-special"`. */
  readonly kind = 'byte-special';
  /** 256 + 4 + sentinels. */
  readonly vocabSize: number;
  /** Padding id (256). */
  readonly padId = 256;
  /** Mask id for masked-language modelling (257). */
  readonly maskId = 257;
  /** Beginning-of-sequence id, the decoder's start token (258). */
  readonly bosId = 258;
  /** End-of-sequence id (259). */
  readonly eosId = 259;
  private readonly bytes = new ByteTokenizer();

  /** The special ids by role: pad 256, mask 257, bos 258, eos 259, then the sentinels. */
  get specials(): SpecialTokenIds {
    return {
      pad: this.padId,
      mask: this.maskId,
      bos: this.bosId,
      eos: this.eosId,
      sentinels: Array.from({ length: this.sentinels }, (_, k) => this.sentinelId(k)),
    };
  }

  /** @param sentinels number of T5 sentinel tokens (default 16). */
  constructor(readonly sentinels = 16) {
    if (!Number.isInteger(sentinels) || sentinels < 0 || sentinels > 4096)
      throw new StrataError(
        'E_CONFIG',
        `tokenizer.sentinels must be an integer in [0, 4096], got ${sentinels}`,
      );
    this.vocabSize = 256 + SPECIAL_TOKENS.length + sentinels;
  }

  /** The id of sentinel `k` (`<extra_id_k>`). */
  sentinelId(k: number): number {
    if (!Number.isInteger(k) || k < 0 || k >= this.sentinels)
      throw new StrataError('E_USAGE', `sentinel ${k} is outside [0, ${this.sentinels})`);
    return 256 + SPECIAL_TOKENS.length + k;
  }

  /** True for ids that are not bytes. */
  isSpecial(id: number): boolean {
    return id >= 256 && id < this.vocabSize;
  }

  /** The name of special id `id` (`<mask>`, `<extra_id_3>`), or undefined for a byte. */
  specialName(id: number): string | undefined {
    if (id < 256 || id >= this.vocabSize) return undefined;
    const k = id - 256;
    return k < SPECIAL_TOKENS.length ? SPECIAL_TOKENS[k] : `<extra_id_${k - SPECIAL_TOKENS.length}>`;
  }

  /** Encodes `text` as its UTF-8 bytes (no special tokens). */
  encode(text: string): Uint8Array {
    return this.bytes.encode(text);
  }

  /** Encodes `text`, turning the literal names `<mask>`, `<pad>`, `<bos>`, `<eos>`, `<extra_id_N>` into their ids. */
  encodeWithSpecials(text: string): Int32Array {
    const out: number[] = [];
    const re = /<(pad|mask|bos|eos|extra_id_(\d+))>/g;
    let last = 0;
    for (let m = re.exec(text); m; m = re.exec(text)) {
      const id =
        m[2] !== undefined
          ? Number(m[2]) < this.sentinels
            ? this.sentinelId(Number(m[2]))
            : undefined
          : 256 + SPECIAL_TOKENS.indexOf(`<${m[1]}>` as (typeof SPECIAL_TOKENS)[number]);
      if (id === undefined) continue;
      out.push(...this.bytes.encode(text.slice(last, m.index)), id);
      last = m.index + m[0].length;
    }
    out.push(...this.bytes.encode(text.slice(last)));
    return Int32Array.from(out);
  }

  /** Decodes bytes as UTF-8 and special ids as their names (`<pad>` as nothing). */
  decode(ids: ArrayLike<number>): string {
    const d = this.decoder();
    let s = '';
    for (let i = 0; i < ids.length; i++) s += d.push(ids[i]!);
    return s + d.flush();
  }

  /** An incremental decoder (complete characters only; special tokens as their names). */
  decoder(): StreamDecoder {
    const inner = this.bytes.decoder();
    return {
      push: (ids: number | ArrayLike<number>): string => {
        const list = typeof ids === 'number' ? [ids] : Array.from(ids);
        let s = '';
        for (const id of list) {
          const name = this.specialName(id);
          if (name === undefined) s += inner.push(id);
          else s += inner.flush() + (id === this.padId ? '' : name);
        }
        return s;
      },
      flush: () => inner.flush(),
    };
  }

  /** `{ kind: "byte-special", specials: [...], sentinels }`. */
  toJSON(): {
    /** Always `"byte-special"`. */
    kind: 'byte-special';
    /** Names of the special tokens in id order ({@link SPECIAL_TOKENS}). */
    specials: string[];
    /** Number of T5 sentinel tokens. */
    sentinels: number;
  } {
    return { kind: 'byte-special', specials: [...SPECIAL_TOKENS], sentinels: this.sentinels };
  }
}

type TokenizerFactory = (json: Record<string, unknown>, files: Readonly<Record<string, string>>) => Tokenizer;

/** A subword tokenizer from the `tokenizer.json` a checkpoint keeps, checked against its recorded hash. */
function fromTokenizerFile(
  json: Record<string, unknown>,
  files: Readonly<Record<string, string>>,
): Tokenizer {
  const kind = String(json.kind);
  const name = typeof json.file === 'string' ? json.file : TOKENIZER_FILE;
  let text = files[name];
  if (text === undefined && kind === 'gpt2') text = gpt2TokenizerJSON();
  if (text === undefined)
    throw new StrataError(
      'E_CONFIG',
      `tokenizer "${kind}" is stored in ${name} beside config.json, which is missing; copy it back from where the checkpoint came from`,
    );
  const added = Array.isArray(json.added) ? json.added.map(String) : [];
  if (kind === 'gpt2' && files[name] === undefined && added.length) text = appendAddedTokens(text, added);
  if (typeof json.sha256 === 'string' && sha256Text(text) !== json.sha256)
    throw new StrataError(
      'E_CONFIG',
      `${name} does not match the tokenizer recorded in config.json (sha256 ${sha256Text(text)}, recorded ${json.sha256}); the file was replaced or edited`,
    );
  const tok = new HFTokenizer(text, {
    kind,
    where: name,
    ...(typeof json.source === 'string' ? { source: json.source } : {}),
    ...(added.length ? { added } : {}),
  });
  if (typeof json.vocabSize === 'number' && json.vocabSize !== tok.vocabSize)
    throw new StrataError(
      'E_CONFIG',
      `${name} has ${tok.vocabSize} ids but config.json records a tokenizer of ${json.vocabSize}`,
    );
  return tok;
}

const factories = new Map<string, TokenizerFactory>([
  ['byte', () => new ByteTokenizer()],
  ['gpt2', fromTokenizerFile],
  ['hf', fromTokenizerFile],
  [
    'byte-special',
    (json) => {
      const specials = json.specials;
      if (specials !== undefined && JSON.stringify(specials) !== JSON.stringify(SPECIAL_TOKENS))
        throw new StrataError(
          'E_CONFIG',
          `tokenizer "byte-special": specials ${JSON.stringify(specials)} differ from this version's ${JSON.stringify(SPECIAL_TOKENS)}`,
        );
      return new ByteSpecialTokenizer(json.sentinels === undefined ? 16 : (json.sentinels as number));
    },
  ],
]);

/** The tokenizer kinds that {@link tokenizerFromJSON} and {@link createTokenizer} know. */
export function listTokenizerKinds(): string[] {
  return [...factories.keys()].sort();
}

/**
 * Creates a tokenizer by kind name (e.g. from a `--tokenizer` option).
 *
 * @throws StrataError `E_CONFIG` for an unknown kind, listing the valid ones.
 */
export function createTokenizer(kind = 'byte'): Tokenizer {
  return tokenizerFromJSON({ kind });
}

/**
 * Rebuilds a tokenizer from its {@link Tokenizer.toJSON} description (as stored in a checkpoint's config).
 *
 * @throws StrataError `E_CONFIG` when `json` is not an object with a known `kind` (the message lists the valid kinds).
 */
export function tokenizerFromJSON(json: unknown, files: Readonly<Record<string, string>> = {}): Tokenizer {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new StrataError(
      'E_CONFIG',
      `a tokenizer description must be an object like {"kind": "byte"}, got ${JSON.stringify(json) ?? String(json)}`,
    );
  }
  const rec = json as Record<string, unknown>;
  const kind = rec.kind;
  const factory = typeof kind === 'string' ? factories.get(kind) : undefined;
  if (!factory) {
    throw new StrataError(
      'E_CONFIG',
      `unknown tokenizer kind ${JSON.stringify(kind) ?? String(kind)}; valid kinds: ${formatChoices(listTokenizerKinds())}`,
    );
  }
  return factory(rec, files);
}

/**
 * The tokenizer a `--tokenizer` option names: `byte` (UTF-8 bytes), `byte-special`, `gpt2` (GPT-2's BPE,
 * from the `js-tiktoken` package), or the path of a Hugging Face `tokenizer.json`.
 *
 * @throws StrataError `E_CONFIG` naming the option when the path is unreadable or not a tokenizer.json.
 */
export function resolveTokenizer(spec: string): Tokenizer {
  if (spec === 'gpt2') return gpt2Tokenizer();
  if (spec === 'byte' || spec === 'byte-special') return createTokenizer(spec);
  if (!/[/\\.]/.test(spec))
    throw new StrataError(
      'E_CONFIG',
      `--tokenizer ${spec}: not a known tokenizer; give byte, gpt2 or the path of a Hugging Face tokenizer.json`,
    );
  return loadTokenizerFile(spec);
}
