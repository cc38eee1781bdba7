/**
 * Tokenizers: text ⇄ integer token ids. The default is byte level (UTF-8 bytes, vocabulary 256), which
 * needs no training and no vocabulary file and can represent any text.
 *
 * @module
 */
import { formatChoices, StrataError } from '../errors.js';

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
  /** A JSON description from which {@link tokenizerFromJSON} rebuilds an identical tokenizer. */
  toJSON(): Record<string, unknown> & { kind: string };
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
  toJSON(): { kind: 'byte' } {
    return { kind: 'byte' };
  }
}

type TokenizerFactory = (json: Record<string, unknown>) => Tokenizer;

const factories = new Map<string, TokenizerFactory>([['byte', () => new ByteTokenizer()]]);

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
export function tokenizerFromJSON(json: unknown): Tokenizer {
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
  return factory(rec);
}
