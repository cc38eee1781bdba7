/**
 * Tokenizer throughput for `strata bench`: tokens per second of each tokenizer encoding (and decoding) the
 * same Brown corpus documents, with a round-trip check.
 */
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ByteTokenizer, gpt2Tokenizer, HFTokenizer, loadBrownCorpus, type Tokenizer } from '@strata/core';
import { DEFAULT_SPECIALS, trainByteLevelBpe } from './commands/tokenizer.js';

/** One tokenizer's figures. */
export interface TokenizerBenchRow {
  tokenizer: string;
  vocabSize: number;
  /** Characters and documents encoded. */
  chars: number;
  documents: number;
  tokens: number;
  /** Seconds to build the tokenizer (GPT-2: its tokenizer.json from js-tiktoken's ranks; bpe: training). */
  setupSeconds: number;
  encodeSeconds: number;
  encodeTokensPerSec: number;
  decodeTokensPerSec: number;
  charsPerToken: number;
  /** decode(encode(doc)) === doc for every document. */
  roundTrip: boolean;
  /** 1-minute load average before and after this row. */
  loadavg: [number, number];
}

/** The tokenizers `--tokenizers` accepts. */
export const BENCH_TOKENIZERS = ['byte', 'gpt2', 'bpe'] as const;

async function build(name: string, docs: string[]): Promise<Tokenizer | string> {
  if (name === 'byte') return new ByteTokenizer();
  if (name === 'gpt2') return gpt2Tokenizer();
  const dir = await mkdtemp(join(tmpdir(), 'strata-bench-bpe-'));
  try {
    const file = join(dir, 'corpus.txt');
    writeFileSync(file, docs.join('\n\n'));
    const { text } = await trainByteLevelBpe([file], 4096, DEFAULT_SPECIALS);
    return new HFTokenizer(text);
  } catch (e) {
    return `skipped (${(e as Error).message.split('\n')[0]})`;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Encodes the first `maxFiles` Brown documents with each tokenizer (byte; GPT-2; a 4,096-id BPE trained on
 * the same documents, when the `tokenizers` package is installed), document by document.
 */
export async function benchTokenizers(
  names: readonly string[],
  maxFiles: number,
  log: (s: string) => void,
): Promise<(TokenizerBenchRow | { tokenizer: string; status: string })[]> {
  const docs = loadBrownCorpus({ maxFiles }).documents;
  const chars = docs.reduce((a, d) => a + d.length, 0);
  const out: (TokenizerBenchRow | { tokenizer: string; status: string })[] = [];
  for (const name of names) {
    const load0 = loadavg()[0]!;
    const t0 = performance.now();
    const tok = await build(name, docs);
    if (typeof tok === 'string') {
      log(`tokenizer ${name}: ${tok}`);
      out.push({ tokenizer: name, status: tok });
      continue;
    }
    const t1 = performance.now();
    const encoded = docs.map((d) => tok.encode(d));
    const t2 = performance.now();
    const decoded = encoded.map((ids) => tok.decode(ids));
    const t3 = performance.now();
    const tokens = encoded.reduce((a, e) => a + e.length, 0);
    const row: TokenizerBenchRow = {
      tokenizer: name,
      vocabSize: tok.vocabSize,
      chars,
      documents: docs.length,
      tokens,
      setupSeconds: (t1 - t0) / 1000,
      encodeSeconds: (t2 - t1) / 1000,
      encodeTokensPerSec: tokens / ((t2 - t1) / 1000),
      decodeTokensPerSec: tokens / ((t3 - t2) / 1000),
      charsPerToken: chars / tokens,
      roundTrip: decoded.every((d, i) => d === docs[i]),
      loadavg: [load0, loadavg()[0]!],
    };
    log(
      `tokenizer ${name}: ${Math.round(row.encodeTokensPerSec).toLocaleString('en-US')} tokens/s encoding, ${row.charsPerToken.toFixed(2)} chars/token`,
    );
    out.push(row);
  }
  return out;
}

/** The tokenizer table of the bench report. */
export function formatTokenizerReport(
  rows: (TokenizerBenchRow | { tokenizer: string; status: string })[],
): string {
  const lines = [
    '',
    'tokenizer  vocab   tokens     chars/token  encode tokens/s  decode tokens/s  setup s  round trip  load',
  ];
  for (const r of rows) {
    if ('status' in r) {
      lines.push(`${r.tokenizer.padEnd(10)} ${r.status}`);
      continue;
    }
    lines.push(
      `${r.tokenizer.padEnd(10)} ${String(r.vocabSize).padEnd(7)} ${String(r.tokens).padEnd(10)} ${r.charsPerToken.toFixed(2).padEnd(12)} ${Math.round(r.encodeTokensPerSec).toLocaleString('en-US').padEnd(16)} ${Math.round(r.decodeTokensPerSec).toLocaleString('en-US').padEnd(16)} ${r.setupSeconds.toFixed(1).padEnd(8)} ${String(r.roundTrip).padEnd(11)} ${r.loadavg.map((x) => x.toFixed(1)).join('→')}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
