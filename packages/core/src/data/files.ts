/**
 * User-supplied training text: one file or a folder of text files.
 *
 * @module
 */
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { extname, join, relative, resolve } from 'node:path';
import { StrataError } from '../errors.js';
import type { TextSource } from './types.js';

/** File extensions taken from a folder (besides files without an extension). */
export const TEXT_EXTENSIONS: readonly string[] = [
  '.txt',
  '.md',
  '.text',
  '.csv',
  '.json',
  '.jsonl',
  '.html',
  '.xml',
  '.js',
  '.ts',
  '.py',
];

const ACCEPTED = new Set(TEXT_EXTENSIONS);
const SNIFF_BYTES = 8192;

/**
 * Loads training text from a file or a folder.
 *
 * - A file is read whatever its extension; it must be non-empty, text (no NUL byte and at most 30% control
 *   characters in its first 8 KB) and valid UTF-8. A leading byte-order mark is dropped and CRLF line
 *   endings become LF.
 * - A folder is searched recursively, in sorted order (by path, code-unit order, so the result does not
 *   depend on the platform or locale), for files with one of {@link TEXT_EXTENSIONS} or no extension;
 *   hidden files and folders (names starting with `.`) are skipped, and so are empty files and, for
 *   files without an extension, binary ones. Each file becomes one document.
 *
 * `text` is the documents joined by `"\n\n"`.
 *
 * @throws StrataError `E_DATA`, naming the path, when it does not exist, is empty, is a folder with no text
 * files, is binary, or is not valid UTF-8 (with the byte offset of the first invalid sequence).
 */
export async function loadTextSource(path: string): Promise<TextSource> {
  const abs = resolve(path);
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new StrataError('E_DATA', `data path does not exist: ${path}`, { cause: e });
    }
    throw new StrataError('E_DATA', `cannot read data path ${path}: ${(e as Error).message}`, { cause: e });
  }
  if (st.isDirectory()) return loadFolder(path, abs);
  if (!st.isFile()) throw new StrataError('E_DATA', `data path is neither a file nor a folder: ${path}`);
  const text = await readTextFile(path, abs, true);
  if (text === undefined || text.trim().length === 0) {
    throw new StrataError('E_DATA', `data file is empty: ${path}`);
  }
  return { text, documents: [text], source: abs };
}

async function loadFolder(path: string, abs: string): Promise<TextSource> {
  const files: string[] = [];
  const seen = new Set<string>();
  await walk(abs, files, seen);
  files.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const documents: string[] = [];
  let skipped = 0;
  for (const file of files) {
    const shown = join(path, relative(abs, file));
    const text = await readTextFile(shown, file, extname(file) !== '');
    if (text === undefined || text.trim().length === 0) {
      skipped++;
      continue;
    }
    documents.push(text);
  }
  if (documents.length === 0) {
    const what =
      files.length === 0
        ? 'contains no text files'
        : `contains no text: its ${files.length} candidate file(s) are empty or binary`;
    throw new StrataError(
      'E_DATA',
      `data folder ${what}: ${path} (accepted: ${TEXT_EXTENSIONS.join(' ')} and files without an extension; hidden files and folders are skipped)`,
    );
  }
  const note = skipped > 0 ? `, ${skipped} empty or binary skipped` : '';
  return {
    text: documents.join('\n\n'),
    documents,
    source: `${abs} (${documents.length} file${documents.length === 1 ? '' : 's'}${note})`,
  };
}

async function walk(dir: string, out: string[], seen: Set<string>): Promise<void> {
  const real = await realpath(dir);
  if (seen.has(real)) return; // a symlink cycle
  seen.add(real);
  const entries = await readdir(dir, { withFileTypes: true });
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    const full = join(dir, entry.name);
    let isDir = entry.isDirectory();
    let isFile = entry.isFile();
    if (entry.isSymbolicLink()) {
      try {
        const s = await stat(full);
        isDir = s.isDirectory();
        isFile = s.isFile();
      } catch {
        continue; // a dangling link
      }
    }
    if (isDir) await walk(full, out, seen);
    else if (isFile) {
      const ext = extname(entry.name).toLowerCase();
      if (ext === '' || ACCEPTED.has(ext)) out.push(full);
    }
  }
}

/**
 * Reads and validates one file. Returns `undefined` for an empty file, or for a binary one when
 * `strict` is false; throws `E_DATA` for binary (strict) or invalid UTF-8 content.
 */
async function readTextFile(shown: string, abs: string, strict: boolean): Promise<string | undefined> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(abs);
  } catch (e) {
    throw new StrataError('E_DATA', `cannot read data file ${shown}: ${(e as Error).message}`, { cause: e });
  }
  if (bytes.length === 0) return undefined;
  const binary = binaryReason(bytes);
  if (binary !== undefined) {
    if (!strict) return undefined;
    throw new StrataError('E_DATA', `data file is binary, not text (${binary}): ${shown}`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const offset = firstInvalidUtf8(bytes);
    throw new StrataError(
      'E_DATA',
      `data file is not valid UTF-8 (first invalid byte at offset ${offset}): ${shown}; convert it to UTF-8, e.g. iconv -f latin1 -t utf-8`,
    );
  }
  return text.includes('\r\n') ? text.replace(/\r\n/g, '\n') : text;
}

/** Why the first 8 KB of `bytes` look binary, or `undefined` when they look like text. */
export function binaryReason(bytes: Uint8Array): string | undefined {
  const n = Math.min(bytes.length, SNIFF_BYTES);
  let control = 0;
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!;
    if (b === 0) return `NUL byte at offset ${i}`;
    // control characters other than \t \n \v \f \r and ESC (used by ANSI colour codes), plus DEL
    if ((b < 32 && b !== 9 && b !== 10 && b !== 11 && b !== 12 && b !== 13 && b !== 27) || b === 127)
      control++;
  }
  if (n > 0 && control / n > 0.3) {
    return `${Math.round((100 * control) / n)}% control characters in the first ${n} bytes`;
  }
  return undefined;
}

/** Byte offset of the first invalid or truncated UTF-8 sequence in `bytes`, or -1 when it is all valid. */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  const n = bytes.length;
  let i = 0;
  while (i < n) {
    const b = bytes[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let min: number;
    if (b >= 0xc2 && b <= 0xdf) {
      need = 1;
      min = 0x80;
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      min = 0x800;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      min = 0x10000;
    } else {
      return i;
    }
    if (i + need >= n) return i; // truncated at the end of the input
    let cp = b & (0x3f >> need);
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k]!;
      if ((c & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += need + 1;
  }
  return -1;
}
