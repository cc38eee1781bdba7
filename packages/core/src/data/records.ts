/**
 * Record formats of training text: JSON Lines (one object per line, the text in a field) and Parquet (the
 * format Hugging Face datasets are stored in; the text in a column). Both are streamed: one line, or one
 * Parquet row group, is in memory at a time, so files larger than memory can be read.
 *
 * @module
 */
import { createReadStream } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import { extname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import { StrataError } from '../errors.js';

/** A data format of `--data`: plain text (files or folders), JSON Lines, or Parquet. */
export type DataFormat = 'text' | 'jsonl' | 'parquet';

/** Options of {@link readRecords}. */
export interface RecordOptions {
  /** Field of each JSON Lines object that holds the text (default `"text"`). */
  textField?: string;
  /** Column of a Parquet file that holds the text (default `"text"`). */
  textColumn?: string;
}

const JSONL_EXT = new Set(['.jsonl', '.ndjson']);
const PARQUET_EXT = new Set(['.parquet']);
/** The 4-byte magic number at both ends of a Parquet file. */
const PARQUET_MAGIC = 'PAR1';

/**
 * The format of a data path: `.jsonl`/`.ndjson` files are JSON Lines, `.parquet` files Parquet, a folder
 * holding `.parquet` (or `.jsonl`) files and no other text is read as those shards; anything else is text.
 */
export async function detectFormat(path: string): Promise<DataFormat> {
  const ext = extname(path).toLowerCase();
  if (JSONL_EXT.has(ext)) return 'jsonl';
  if (PARQUET_EXT.has(ext)) return 'parquet';
  const st = await stat(path).catch(() => undefined);
  if (st?.isDirectory()) {
    const files = await shardFiles(path);
    if (files.parquet.length > 0) return 'parquet';
    if (files.jsonl.length > 0 && files.other === 0) return 'jsonl';
  }
  return 'text';
}

async function shardFiles(dir: string): Promise<{ parquet: string[]; jsonl: string[]; other: number }> {
  const out = { parquet: [] as string[], jsonl: [] as string[], other: 0 };
  const walk = async (d: string) => {
    const entries = await readdir(d, { withFileTypes: true });
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const full = join(d, e.name);
      if (e.isDirectory()) await walk(full);
      else if (e.isFile()) {
        const ext = extname(e.name).toLowerCase();
        if (PARQUET_EXT.has(ext)) out.parquet.push(full);
        else if (JSONL_EXT.has(ext)) out.jsonl.push(full);
        else out.other++;
      }
    }
  };
  await walk(dir);
  const order = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  out.parquet.sort(order);
  out.jsonl.sort(order);
  return out;
}

/** The files of a JSON Lines or Parquet path (the file, or a folder's shards in sorted order). */
export async function recordFiles(path: string, format: 'jsonl' | 'parquet'): Promise<string[]> {
  const abs = resolve(path);
  const st = await stat(abs).catch(() => undefined);
  if (!st) throw new StrataError('E_DATA', `data path does not exist: ${path}`);
  if (!st.isDirectory()) return [abs];
  const files = (await shardFiles(abs))[format];
  if (files.length === 0)
    throw new StrataError(
      'E_DATA',
      `data folder has no .${format === 'jsonl' ? 'jsonl' : 'parquet'} files: ${path}`,
    );
  return files;
}

/**
 * Streams the texts of a JSON Lines or Parquet file (or folder of shards), one record at a time. Empty
 * lines of JSON Lines are skipped; so are records whose text is `null` (Parquet) — an empty string is kept.
 *
 * @throws StrataError `E_DATA` with the file (and line) at fault: a malformed JSON line (`file:line`), a line
 *   that is not an object, a missing field or one that is not a string; a file that is not Parquet, a
 *   missing column (listing those there are) or one that does not hold strings.
 */
export async function* readRecords(
  path: string,
  format: 'jsonl' | 'parquet',
  options: RecordOptions = {},
): AsyncGenerator<string> {
  for (const file of await recordFiles(path, format)) {
    if (format === 'jsonl') yield* readJsonl(file, options.textField ?? 'text');
    else yield* readParquet(file, options.textColumn ?? 'text');
  }
}

async function* readJsonl(file: string, field: string): AsyncGenerator<string> {
  const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  let n = 0;
  try {
    for await (const raw of lines) {
      n++;
      const line = n === 1 && raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw;
      if (line.trim() === '') continue;
      let obj: unknown;
      try {
        obj = JSON.parse(line);
      } catch (e) {
        throw new StrataError('E_DATA', `${file}:${n}: not valid JSON (${(e as Error).message})`);
      }
      if (!obj || typeof obj !== 'object' || Array.isArray(obj))
        throw new StrataError(
          'E_DATA',
          `${file}:${n}: expected a JSON object with a "${field}" field, got ${Array.isArray(obj) ? 'an array' : JSON.stringify(obj)}`,
        );
      const v = (obj as Record<string, unknown>)[field];
      if (v === undefined) {
        const keys = Object.keys(obj)
          .slice(0, 8)
          .map((k) => JSON.stringify(k));
        throw new StrataError(
          'E_DATA',
          `${file}:${n}: no "${field}" field (fields: ${keys.join(', ') || 'none'}); choose the field with --text-field`,
        );
      }
      if (typeof v !== 'string')
        throw new StrataError(
          'E_DATA',
          `${file}:${n}: field "${field}" is ${v === null ? 'null' : typeof v}, not a string`,
        );
      yield v;
    }
  } finally {
    lines.close();
  }
}

async function checkParquetMagic(file: string): Promise<void> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    const head = Buffer.alloc(4);
    const tail = Buffer.alloc(4);
    if (size >= 12) {
      await handle.read(head, 0, 4, 0);
      await handle.read(tail, 0, 4, size - 4);
    }
    if (size < 12 || head.toString('latin1') !== PARQUET_MAGIC || tail.toString('latin1') !== PARQUET_MAGIC)
      throw new StrataError('E_DATA', `${file}: not a Parquet file (no PAR1 magic at its start and end)`);
  } finally {
    await handle.close();
  }
}

async function* readParquet(file: string, column: string): AsyncGenerator<string> {
  await checkParquetMagic(file);
  const buffer = await asyncBufferFromFile(file);
  let metadata: Awaited<ReturnType<typeof parquetMetadataAsync>>;
  try {
    metadata = await parquetMetadataAsync(buffer);
  } catch (e) {
    throw new StrataError('E_DATA', `${file}: unreadable Parquet metadata (${(e as Error).message})`);
  }
  const top = metadata.schema.slice(1).filter((el, i, all) => isTopLevel(all, i));
  const el = top.find((s) => s.name === column);
  if (!el) {
    const names = top.map((s) => JSON.stringify(s.name)).join(', ');
    throw new StrataError(
      'E_DATA',
      `${file}: no column "${column}" (columns: ${names}); choose it with --text-column`,
    );
  }
  const isString =
    el.type === 'BYTE_ARRAY' &&
    (el.converted_type === 'UTF8' || el.logical_type?.type === 'STRING' || el.converted_type === 'JSON');
  if (!isString)
    throw new StrataError(
      'E_DATA',
      `${file}: column "${column}" holds ${el.type ?? 'nested'}${el.converted_type ? `/${el.converted_type}` : ''} values, not strings`,
    );
  let start = 0;
  for (const group of metadata.row_groups) {
    const end = start + Number(group.num_rows);
    let rows: Record<string, unknown>[];
    try {
      rows = await parquetReadObjects({
        file: buffer,
        metadata,
        columns: [column],
        rowStart: start,
        rowEnd: end,
      });
    } catch (e) {
      throw new StrataError(
        'E_DATA',
        `${file}: cannot read rows ${start}–${end - 1} (${(e as Error).message})`,
      );
    }
    for (const row of rows) {
      const v = row[column];
      if (typeof v === 'string') yield v;
    }
    start = end;
  }
}

/** True when schema element `i` of `all` (the schema without its root) is a top-level column. */
function isTopLevel(all: { num_children?: number }[], i: number): boolean {
  // Walk the flattened tree: top-level elements are those not inside a group's children.
  let pos = 0;
  while (pos < all.length) {
    if (pos === i) return true;
    pos = skip(all, pos);
    if (pos > i) return false;
  }
  return false;
}

function skip(all: { num_children?: number }[], pos: number): number {
  const n = all[pos]?.num_children ?? 0;
  let next = pos + 1;
  for (let k = 0; k < n; k++) next = skip(all, next);
  return next;
}
