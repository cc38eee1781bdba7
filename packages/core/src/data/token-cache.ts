/**
 * Tokenizing a data source once: documents are read (streamed for JSON Lines and Parquet), encoded one at a
 * time into a compact typed array, and the result is cached on disk, keyed by a fingerprint of the data's
 * bytes and of the tokenizer, so a second run on the same data does not tokenize again.
 *
 * Cache location: `$STRATA_CACHE_DIR/tokens`, else `$XDG_CACHE_HOME/strata/tokens`, else
 * `~/.cache/strata/tokens`. Each entry is one file written to a temporary name and renamed into place, so
 * concurrent runs never read a partial entry (two runs tokenizing the same data both write the same bytes).
 *
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { StrataError } from '../errors.js';
import { loadBrownCorpus } from './brown.js';
import { loadTextSource } from './files.js';
import { type DataFormat, detectFormat, type RecordOptions, readRecords } from './records.js';
import type { TokenArray, Tokenizer } from './tokenizer.js';

/** Version of the cache file layout (part of every key). */
const CACHE_VERSION = 1;
const MAGIC = 'STRATATK';

/** Where a tokenized source comes from. */
export interface TokenSourceSpec {
  /** A file or folder; absent: the embedded Brown corpus. */
  path?: string;
  /** Its format (default: by extension, see {@link detectFormat}). */
  format?: DataFormat;
  /** JSON Lines field / Parquet column of the text. */
  textField?: string;
  /** Parquet column of the text (default `"text"`). */
  textColumn?: string;
}

/** Options of {@link tokenizeSource}. */
export interface TokenizeOptions {
  /** Cache folder, or `false` for no cache. Default: {@link defaultTokenCacheDir}. */
  cacheDir?: string | false;
  /** Called now and then while encoding, with the documents and tokens done so far. */
  onProgress?: (documents: number, tokens: number) => void;
}

/** A tokenized source. */
export interface TokenizedSource {
  /** All token ids, documents separated by {@link documentSeparator}. */
  tokens: TokenArray;
  /** Number of documents. */
  documents: number;
  /** What was read, for logs. */
  source: string;
  /** The cache key (`sha256:` + hex of the data and tokenizer fingerprints). */
  key: string;
  /** True when the tokens came from the cache. */
  cached: boolean;
  /** The cache file, when a cache is used. */
  cacheFile?: string;
}

/** The default cache folder (see the module documentation). */
export function defaultTokenCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.STRATA_CACHE_DIR) return join(resolve(env.STRATA_CACHE_DIR), 'tokens');
  const base = env.XDG_CACHE_HOME ? resolve(env.XDG_CACHE_HOME) : join(homedir(), '.cache');
  return join(base, 'strata', 'tokens');
}

/**
 * The tokens placed between two documents: the tokenizer's end-of-sequence token when it has one (as GPT-2
 * training data is separated by `<|endoftext|>`), else the encoding of a blank line `"\n\n"` (so the byte
 * tokenizer's tokens equal the bytes of the documents joined by `"\n\n"`).
 */
export function documentSeparator(tokenizer: Tokenizer): number[] {
  const kind = tokenizer.kind;
  const eos = kind === 'byte' || kind === 'byte-special' ? undefined : tokenizer.specials?.eos;
  return eos !== undefined ? [eos] : Array.from(tokenizer.encode('\n\n'));
}

/** A growing typed array of token ids, sized for the tokenizer's vocabulary. */
class TokenBuffer {
  private buf: TokenArray;
  length = 0;
  constructor(private readonly vocabSize: number) {
    this.buf = this.alloc(1 << 16);
  }
  private alloc(n: number): TokenArray {
    return this.vocabSize <= 256
      ? new Uint8Array(n)
      : this.vocabSize <= 65536
        ? new Uint16Array(n)
        : new Int32Array(n);
  }
  push(ids: ArrayLike<number>): void {
    if (this.length + ids.length > this.buf.length) {
      const next = this.alloc(Math.max(this.buf.length * 2, this.length + ids.length));
      next.set(this.buf.subarray(0, this.length));
      this.buf = next;
    }
    this.buf.set(ids, this.length);
    this.length += ids.length;
  }
  result(): TokenArray {
    return this.buf.slice(0, this.length);
  }
}

/** Longest piece of a document encoded in one call (longer documents are cut at safe line breaks). */
const PIECE_CHARS = 1 << 20;

/**
 * Cuts a long text into pieces of about 2^20 (1,048,576) characters, each cut right after a line break
 * that follows a non-space character and precedes a letter or digit, where byte-level BPE pre-tokenizers
 * (GPT-2's) split anyway, so the ids equal those of the whole text. A text with no such break stays whole.
 */
export function* pieces(text: string): Generator<string> {
  let start = 0;
  while (text.length - start > PIECE_CHARS) {
    const re = /\S\n(?=[\p{L}\p{N}])/gu;
    re.lastIndex = start + PIECE_CHARS;
    const m = re.exec(text);
    if (!m) break;
    const cut = m.index + 2;
    yield text.slice(start, cut);
    start = cut;
  }
  yield text.slice(start);
}

async function hashFile(h: ReturnType<typeof createHash>, file: string): Promise<void> {
  await new Promise<void>((ok, fail) => {
    createReadStream(file)
      .on('data', (c) => h.update(c))
      .on('end', ok)
      .on('error', fail);
  });
}

async function listFiles(dir: string, out: string[]): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.name.startsWith('.')) continue;
    const full = join(dir, e.name);
    if (e.isDirectory()) await listFiles(full, out);
    else if (e.isFile()) out.push(full);
  }
}

/**
 * A fingerprint of the bytes of a data path (every non-hidden file of a folder, with its relative path),
 * `sha256:` + hex. Reading is streamed.
 */
export async function dataFingerprint(path: string): Promise<string> {
  const abs = resolve(path);
  const st = await stat(abs).catch(() => undefined);
  if (!st) throw new StrataError('E_DATA', `data path does not exist: ${path}`);
  const h = createHash('sha256');
  const files: string[] = [];
  if (st.isDirectory()) await listFiles(abs, files);
  else files.push(abs);
  files.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (const f of files) {
    h.update(`${relative(abs, f)}\0${(await stat(f)).size}\0`);
    await hashFile(h, f);
  }
  return `sha256:${h.digest('hex')}`;
}

/** A fingerprint of a tokenizer: its description (less where it came from) and files. */
export function tokenizerFingerprint(tokenizer: Tokenizer): string {
  const h = createHash('sha256');
  const { source: _where, ...description } = tokenizer.toJSON();
  h.update(JSON.stringify(description));
  for (const [name, text] of Object.entries(tokenizer.files?.() ?? {}).sort()) h.update(`\0${name}\0${text}`);
  return `sha256:${h.digest('hex')}`;
}

function encodeEntry(t: TokenizedSource): Uint8Array {
  const header = Buffer.from(
    JSON.stringify({
      version: CACHE_VERSION,
      dtype: t.tokens.constructor.name,
      count: t.tokens.length,
      documents: t.documents,
      source: t.source,
      key: t.key,
    }),
  );
  const pad = (8 - ((MAGIC.length + 4 + header.length) % 8)) % 8;
  const pre = Buffer.alloc(MAGIC.length + 4 + header.length + pad, 0x20);
  pre.write(MAGIC, 0, 'latin1');
  pre.writeUInt32LE(header.length + pad, MAGIC.length);
  header.copy(pre, MAGIC.length + 4);
  const body = new Uint8Array(t.tokens.buffer, t.tokens.byteOffset, t.tokens.byteLength);
  return Buffer.concat([pre, body]);
}

function decodeEntry(bytes: Buffer, key: string): TokenizedSource | undefined {
  if (bytes.length < MAGIC.length + 4 || bytes.toString('latin1', 0, MAGIC.length) !== MAGIC)
    return undefined;
  const hlen = bytes.readUInt32LE(MAGIC.length);
  const start = MAGIC.length + 4 + hlen;
  let h: { version: number; dtype: string; count: number; documents: number; source: string; key: string };
  try {
    h = JSON.parse(bytes.toString('utf8', MAGIC.length + 4, start));
  } catch {
    return undefined;
  }
  if (h.version !== CACHE_VERSION || h.key !== key) return undefined;
  const Ctor = { Uint8Array, Uint16Array, Int32Array }[h.dtype as 'Uint8Array'];
  if (!Ctor || bytes.length - start !== h.count * Ctor.BYTES_PER_ELEMENT) return undefined;
  const copy = new Uint8Array(bytes.length - start);
  copy.set(bytes.subarray(start));
  return { tokens: new Ctor(copy.buffer), documents: h.documents, source: h.source, key, cached: true };
}

/**
 * Tokenizes a data source (the Brown corpus, text files or folders, JSON Lines, Parquet) with `tokenizer`,
 * documents separated by {@link documentSeparator}, using and filling the on-disk cache.
 *
 * @throws StrataError `E_DATA` for unreadable or malformed data (see {@link readRecords}), or data with no
 *   tokens.
 */
export async function tokenizeSource(
  spec: TokenSourceSpec,
  tokenizer: Tokenizer,
  options: TokenizeOptions = {},
): Promise<TokenizedSource> {
  const format = spec.path === undefined ? 'text' : (spec.format ?? (await detectFormat(spec.path)));
  const brown = spec.path === undefined ? loadBrownCorpus() : undefined;
  const dataKey = brown
    ? `sha256:${createHash('sha256').update(brown.text).digest('hex')}`
    : await dataFingerprint(spec.path!);
  const field =
    format === 'jsonl' ? (spec.textField ?? 'text') : format === 'parquet' ? (spec.textColumn ?? 'text') : '';
  const key = `sha256:${createHash('sha256')
    .update(
      `strata-tokens ${CACHE_VERSION}\0${dataKey}\0${format}\0${field}\0${tokenizerFingerprint(tokenizer)}`,
    )
    .digest('hex')}`;
  const dir = options.cacheDir === undefined ? defaultTokenCacheDir() : options.cacheDir;
  const file = dir === false ? undefined : join(dir, `${key.slice(7)}.tokens`);
  if (file) {
    const bytes = await readFile(file).catch(() => undefined);
    const hit = bytes ? decodeEntry(bytes, key) : undefined;
    if (hit) return { ...hit, cacheFile: file };
  }
  const buffer = new TokenBuffer(tokenizer.vocabSize);
  const separator = documentSeparator(tokenizer);
  let documents = 0;
  let source: string;
  const add = (doc: string) => {
    if (documents > 0) buffer.push(separator);
    for (const piece of pieces(doc)) buffer.push(tokenizer.encode(piece));
    documents++;
    if (options.onProgress && documents % 256 === 0) options.onProgress(documents, buffer.length);
  };
  if (format === 'text') {
    const text = brown ?? (await loadTextSource(spec.path!));
    for (const doc of text.documents) add(doc);
    source = text.source;
  } else {
    const opts: RecordOptions = format === 'jsonl' ? { textField: field } : { textColumn: field };
    for await (const doc of readRecords(spec.path!, format, opts)) add(doc);
    source = `${resolve(spec.path!)} (${format}, ${documents} records, ${format === 'jsonl' ? 'field' : 'column'} "${field}")`;
  }
  const tokens = buffer.result();
  if (tokens.length === 0) throw new StrataError('E_DATA', `${spec.path ?? 'the data'}: no text (0 tokens)`);
  const out: TokenizedSource = { tokens, documents, source, key, cached: false };
  if (file && dir !== false) {
    try {
      await mkdir(dir, { recursive: true });
      const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
      await writeFile(tmp, encodeEntry(out));
      await rename(tmp, file).catch(async (e) => {
        await rm(tmp, { force: true });
        throw e;
      });
      out.cacheFile = file;
    } catch (e) {
      // A cache that cannot be written (read-only home, full disk) only costs the next run time.
      process.emitWarning(`strata: token cache not written at ${file}: ${(e as Error).message}`);
    }
  }
  return out;
}
