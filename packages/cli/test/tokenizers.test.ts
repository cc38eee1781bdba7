import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadBrownCorpus, loadTokenizerFile } from '@strata/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { layoutTrainedBpe } from '../src/commands/tokenizer.js';
import { jsonLines, strataRun, TINY_MODEL } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'strata-tok-cli-'));
// the runs' token cache stays inside the test folder
process.env.STRATA_CACHE_DIR = join(dir, 'cache');
const text = join(dir, 'small.txt');
const tokFile = join(dir, 'bpe.json');
/** `strata tokenizer train ARGS`. */
const trainTokenizer = (args: string[]) => strataRun(['tokenizer', 'train', ...args]);
const RUN = [...TINY_MODEL, '--steps', '2', '--eval-every', '2', '--json'];

beforeAll(async () => {
  writeFileSync(text, loadBrownCorpus({ maxFiles: 12 }).text);
  const r = await trainTokenizer([
    '--data',
    text,
    '--vocab-size',
    '700',
    '--sentinels',
    '2',
    '--out',
    tokFile,
  ]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
}, 300_000);

describe('strata tokenizer train', () => {
  it('writes a standard tokenizer.json: specials, the 256 bytes, then merges; it reads back identically', async () => {
    const json = JSON.parse(readFileSync(tokFile, 'utf8')) as {
      added_tokens: { id: number; content: string }[];
      model: { type: string; vocab: Record<string, number>; merges: [string, string][] };
      pre_tokenizer: { type: string };
    };
    expect(json.model.type).toBe('BPE');
    expect(json.pre_tokenizer.type).toBe('ByteLevel');
    expect(json.added_tokens.map((t) => [t.id, t.content])).toEqual([
      [0, '<pad>'],
      [1, '<mask>'],
      [2, '<bos>'],
      [3, '<eos>'],
      [4, '<extra_id_0>'],
      [5, '<extra_id_1>'],
    ]);
    const ids = Object.values(json.model.vocab).sort((a, b) => a - b);
    expect(ids).toEqual(Array.from({ length: 700 }, (_, i) => i));
    expect(json.model.merges.length).toBe(700 - 6 - 256);
    // every merge makes the token with the next id
    json.model.merges.forEach(([a, b], k) => {
      expect(json.model.vocab[a + b]).toBe(6 + 256 + k);
    });
    const tok = loadTokenizerFile(tokFile);
    expect(tok.vocabSize).toBe(700);
    expect(tok.specials).toMatchObject({ pad: 0, mask: 1, bos: 2, eos: 3, sentinels: [4, 5] });
    // round trip on the whole Brown corpus and on awkward Unicode never seen in training
    for (const doc of loadBrownCorpus().documents) expect(tok.decode(tok.encode(doc))).toBe(doc);
    const odd = 'e\u0301 👨‍👩‍👧 漢字 שלום \u0000\u001b 𝄞 \r\n';
    expect(tok.decode(tok.encode(odd))).toBe(odd);
    // a second, independent reader (Hugging Face's Rust library) encodes the file identically
    const native = (await import('tokenizers')) as unknown as {
      Tokenizer: {
        fromString(s: string): { encode(s: string, p: null, o: object): Promise<{ getIds(): number[] }> };
      };
    };
    const rust = native.Tokenizer.fromString(readFileSync(tokFile, 'utf8'));
    for (const sample of [loadBrownCorpus({ maxFiles: 1 }).text.slice(0, 20000), odd]) {
      const ids = (await rust.encode(sample, null, { addSpecialTokens: false })).getIds();
      expect(ids).toEqual(Array.from(tok.encode(sample)));
    }
  }, 600_000);

  it('cuts a longer training to the asked size (the trainer is greedy, so merges are a prefix)', () => {
    const trained = {
      model: { type: 'BPE', vocab: {}, merges: ['Ġ t', 'h e', 'Ġt he', 'i n'] },
    };
    const { json, merges } = layoutTrainedBpe(trained, 1 + 256 + 2, ['<eos>']);
    expect(merges).toBe(2);
    const vocab = (json.model as { vocab: Record<string, number> }).vocab;
    expect(vocab['<eos>']).toBe(0);
    expect(vocab.Ġt).toBe(257);
    expect(vocab.he).toBe(258);
    expect(vocab.Ġthe).toBeUndefined();
  });

  it('refuses bad arguments in one line', async () => {
    const r = await trainTokenizer(['--data', text, '--vocab-size', '100', '--out', join(dir, 'x.json')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--vocab-size N is required and must be at least 261/);
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, '{"text": "ok"}\n{oops\n');
    const b = await trainTokenizer(['--data', bad, '--vocab-size', '300', '--out', join(dir, 'y.json')]);
    expect(b.code).toBe(1);
    expect(b.stderr.trim()).toMatch(/^error \[E_DATA\]: .*bad\.jsonl:2: not valid JSON/);
    expect(existsSync(join(dir, 'y.json'))).toBe(false);
  }, 120_000);
});

describe('--tokenizer in train, eval and generate', () => {
  it('trains with a tokenizer.json, keeps it in the checkpoint, and reuses the token cache', async () => {
    const out = join(dir, 'run-bpe');
    const r = await strataRun(['train', '--tokenizer', tokFile, '--data', text, ...RUN, '--out', out]);
    expect(r.code).toBe(0);
    const ckpt = join(out, 'checkpoint');
    expect(readdirSync(ckpt)).toContain('tokenizer.json');
    expect(readFileSync(join(ckpt, 'tokenizer.json'), 'utf8')).toBe(readFileSync(tokFile, 'utf8'));
    const config = JSON.parse(readFileSync(join(ckpt, 'config.json'), 'utf8'));
    expect(config.model.vocabSize).toBe(700);
    expect(config.tokenizer).toMatchObject({ kind: 'hf', vocabSize: 700, file: 'tokenizer.json' });
    expect(config.tokenizer.specials.eos).toEqual({ token: '<eos>', id: 3 });
    const entries = readdirSync(join(dir, 'cache', 'tokens'));
    expect(entries.length).toBe(1);
    const before = readFileSync(join(dir, 'cache', 'tokens', entries[0]!));
    const e = await strataRun(['eval', '--checkpoint', out, '--json']);
    expect(e.code).toBe(0);
    const ev = jsonLines(e.stdout)[0]!;
    expect(ev.bitsPerToken).toBeGreaterThan(0);
    expect(readdirSync(join(dir, 'cache', 'tokens'))).toEqual(entries); // a cache hit: no new entry
    expect(readFileSync(join(dir, 'cache', 'tokens', entries[0]!))).toEqual(before);
    const g = await strataRun([
      'generate',
      '--checkpoint',
      out,
      '--prompt',
      'The jury',
      '--max-tokens',
      '5',
      '--json',
    ]);
    expect(g.code).toBe(0);
    expect(jsonLines(g.stdout)[0]).toMatchObject({ prompt: 'The jury', tokens: 5 });
    const info = await strataRun(['info', '--checkpoint', out]);
    expect(info.stdout).toMatch(/tokenizer hf: 700 ids \(tokenizer\.json, from .*bpe\.json\)/);
    const resumed = await strataRun(['train', '--resume', out, '--steps', '3', '--json']);
    expect(resumed.code).toBe(0);
  }, 600_000);

  it('eval --data and generate refuse a model whose vocabulary does not match its tokenizer', async () => {
    const out = join(dir, 'run-512');
    const r = await strataRun([
      'train',
      '--model-opt',
      'vocabSize=512',
      '--data',
      text,
      ...RUN,
      '--out',
      out,
    ]);
    expect(r.code).toBe(0);
    const e = await strataRun(['eval', '--checkpoint', out, '--data', text]);
    expect(e.code).toBe(1);
    expect(e.stderr.trim().split('\n')).toHaveLength(1);
    expect(e.stderr).toMatch(/tokenizer \(byte, 256 ids\) does not match its model's vocabulary of 512/);
    const g = await strataRun(['generate', '--checkpoint', out, '--prompt', 'x']);
    expect(g.code).toBe(1);
    expect(g.stderr).toMatch(/does not match its model's vocabulary of 512/);
    const bad = await strataRun([
      'train',
      '--tokenizer',
      'gpt2',
      '--model-opt',
      'vocabSize=1000',
      '--out',
      join(dir, 'z'),
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/vocabSize 1000 is smaller than the gpt2 tokenizer's 50257 ids/);
  }, 600_000);

  it('trains on JSON Lines with --text-field and on Parquet with --text-column', async () => {
    const docs = loadBrownCorpus({ maxFiles: 6 }).documents;
    const jsonl = join(dir, 'data.jsonl');
    writeFileSync(jsonl, docs.map((d) => JSON.stringify({ body: d })).join('\n'));
    const j = await strataRun([
      'train',
      '--data',
      jsonl,
      '--text-field',
      'body',
      ...RUN,
      '--out',
      join(dir, 'run-jsonl'),
    ]);
    expect(j.stderr).not.toMatch(/error/);
    expect(j.code).toBe(0);
    const { parquetWriteBuffer } = await import('hyparquet-writer');
    const pq = join(dir, 'data.parquet');
    writeFileSync(
      pq,
      new Uint8Array(parquetWriteBuffer({ columnData: [{ name: 'content', data: docs, type: 'STRING' }] })),
    );
    const p = await strataRun([
      'train',
      '--data',
      pq,
      '--text-column',
      'content',
      ...RUN,
      '--out',
      join(dir, 'run-pq'),
    ]);
    expect(p.code).toBe(0);
    const miss = await strataRun(['train', '--data', pq, ...RUN, '--out', join(dir, 'run-pq2')]);
    expect(miss.code).toBe(1);
    expect(miss.stderr).toMatch(/no column "text" \(columns: "content"\); choose it with --text-column/);
  }, 600_000);
});
