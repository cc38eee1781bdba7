import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, readFileSync } from 'node:fs';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  byteLevelAlphabet,
  detectFormat,
  HFTokenizer,
  loadBrownCorpus,
  loadTextSource,
  readRecords,
  StrataError,
  specialAddedToken,
} from '@strata/core';
import type { ParsedArgs } from '../args.js';
import { UsageError } from '../args.js';

/** Special tokens of a trained tokenizer by default: the names the byte-special tokenizer uses. */
export const DEFAULT_SPECIALS = ['<pad>', '<mask>', '<bos>', '<eos>'];

/** Checks that Hugging Face's `tokenizers` package (its Rust BPE trainer) can be loaded. */
function checkNative(): void {
  try {
    createRequire(import.meta.url).resolve('tokenizers');
  } catch (e) {
    throw new StrataError(
      'E_CONFIG',
      `strata tokenizer train uses Hugging Face's tokenizers package (its Rust BPE trainer), which is not installed: npm install tokenizers (${(e as Error).message.split('\n')[0]})`,
    );
  }
}

/** Writes the training text, one document after another, to `file`; returns the number of documents. */
async function writeCorpus(data: string | undefined, args: ParsedArgs, file: string): Promise<number> {
  const out = createWriteStream(file, { encoding: 'utf8' });
  const write = (s: string) =>
    new Promise<void>((ok, fail) => (out.write(s) ? ok() : out.once('drain', ok).once('error', fail)));
  let n = 0;
  try {
    if (data === undefined) {
      for (const doc of loadBrownCorpus().documents) await write(`${doc}\n\n`), n++;
    } else {
      const format = await detectFormat(data);
      if (format === 'text') {
        for (const doc of (await loadTextSource(data)).documents) await write(`${doc}\n\n`), n++;
      } else {
        const opts = {
          ...(args['text-field'] !== undefined ? { textField: String(args['text-field']) } : {}),
          ...(args['text-column'] !== undefined ? { textColumn: String(args['text-column']) } : {}),
        };
        for await (const doc of readRecords(data, format, opts)) await write(`${doc}\n\n`), n++;
      }
    }
  } finally {
    await new Promise<void>((ok) => out.end(ok));
  }
  return n;
}

/**
 * Renumbers a trained byte-level BPE the way Hugging Face's trainer lays out
 * `BpeTrainer(vocab_size, special_tokens, initial_alphabet=ByteLevel.alphabet())`: special tokens first,
 * then all 256 byte characters in code-point order, then one token per merge in merge order; the merges
 * are cut so that the vocabulary has `vocabSize` ids. The trainer is greedy, so the first merges of a longer
 * training are the merges of a shorter one.
 */
export function layoutTrainedBpe(
  trained: Record<string, unknown>,
  vocabSize: number,
  specials: readonly string[],
): { json: Record<string, unknown>; merges: number } {
  const model = trained.model as { merges: (string | [string, string])[] } & Record<string, unknown>;
  const pairs = model.merges.map((m) => (typeof m === 'string' ? (m.split(' ') as [string, string]) : m));
  const vocab: Record<string, number> = {};
  let next = 0;
  const add = (t: string) => {
    if (!(t in vocab)) vocab[t] = next++;
  };
  for (const s of specials) add(s);
  for (const c of [...byteLevelAlphabet()].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!)) add(c);
  const kept: [string, string][] = [];
  for (const [a, b] of pairs) {
    if (next >= vocabSize) break;
    if (!(a in vocab) || !(b in vocab)) continue; // cannot happen for a consistent training
    kept.push([a, b]);
    add(a + b);
  }
  const json = {
    ...trained,
    // GPT-2's decoder (the Node binding has no constructor for it; the format is the same)
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    added_tokens: specials.map((content) => specialAddedToken(vocab[content]!, content)),
    model: { ...model, vocab, merges: kept },
  };
  return { json, merges: kept.length };
}

/**
 * Trains a byte-level BPE (GPT-2's pre-tokenizer, decoder and post-processor) on text files with Hugging
 * Face's Rust trainer and lays it out with {@link layoutTrainedBpe}; returns the tokenizer.json text.
 *
 * @throws StrataError `E_CONFIG` when the `tokenizers` package is not installed.
 */
export async function trainByteLevelBpe(
  files: string[],
  vocabSize: number,
  specials: readonly string[],
): Promise<{ text: string; merges: number }> {
  checkNative();
  const tmp = await mkdtemp(join(tmpdir(), 'strata-bpe-'));
  try {
    const raw = join(tmp, 'trained.json');
    // In a child process: the trainer prints progress lines on stdout, which would mix with ours.
    const child = fileURLToPath(new URL('../bpe-train-child.js', import.meta.url));
    const r = spawnSync(process.execPath, [child, raw, ...files], {
      stdio: ['ignore', 'ignore', 'pipe'],
      encoding: 'utf8',
    });
    if (r.status !== 0)
      throw new StrataError(
        'E_DATA',
        `the BPE trainer failed (exit ${r.status ?? r.signal}): ${(r.stderr || '').trim().split('\n').slice(-1)[0] ?? ''}`,
      );
    const trained = JSON.parse(readFileSync(raw, 'utf8')) as Record<string, unknown>;
    const { json, merges } = layoutTrainedBpe(trained, vocabSize, specials);
    return { text: JSON.stringify(json), merges };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** `strata tokenizer train`: trains a byte-level BPE tokenizer on the data and writes its tokenizer.json. */
export async function run(args: ParsedArgs): Promise<number> {
  const out = args.out === undefined ? undefined : String(args.out);
  if (!out) throw new UsageError('--out FILE is required (where to write tokenizer.json)');
  const vocabSize = args['vocab-size'] as number | undefined;
  const specials = (args.special as string[] | undefined) ?? DEFAULT_SPECIALS;
  const sentinels = (args.sentinels as number | undefined) ?? 0;
  const allSpecials = [...specials, ...Array.from({ length: sentinels }, (_, k) => `<extra_id_${k}>`)];
  if (new Set(allSpecials).size !== allSpecials.length)
    throw new UsageError(`--special lists a token twice: ${allSpecials.join(' ')}`);
  const min = 256 + allSpecials.length + 1;
  if (vocabSize === undefined || vocabSize < min)
    throw new UsageError(
      `--vocab-size N is required and must be at least ${min} (256 byte tokens + ${allSpecials.length} special tokens + 1 merge)`,
    );
  checkNative(); // before reading the data: say early when the trainer is missing
  const data = args.data === undefined ? undefined : String(args.data);
  const json = Boolean(args.json);
  const t0 = performance.now();
  const tmp = await mkdtemp(join(tmpdir(), 'strata-bpe-'));
  try {
    const corpus = join(tmp, 'corpus.txt');
    const documents = await writeCorpus(data, args, corpus);
    const { text, merges } = await trainByteLevelBpe([corpus], vocabSize, allSpecials);
    const result = new HFTokenizer(text, { where: out }); // must load back with the reader training uses
    const path = resolve(out);
    const part = `${path}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(part, text);
    await rename(part, path);
    const seconds = (performance.now() - t0) / 1000;
    const summary = {
      out: path,
      vocabSize: result.vocabSize,
      merges,
      specials: allSpecials,
      documents,
      seconds: Math.round(seconds * 10) / 10,
    };
    if (json) process.stdout.write(`${JSON.stringify(summary)}\n`);
    else
      process.stdout.write(
        `tokenizer:  ${path}\nvocabulary: ${result.vocabSize} ids (${allSpecials.length} special, 256 bytes, ${merges} merges) from ${documents} documents in ${seconds.toFixed(1)} s\n`,
      );
    if (result.vocabSize < vocabSize)
      process.stderr.write(
        `note: the data supports only ${merges} merges (the trainer's limit is 30,000 tokens), so the vocabulary has ${result.vocabSize} ids, not ${vocabSize}\n`,
      );
    return 0;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
