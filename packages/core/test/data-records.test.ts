import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { describe, expect, it } from 'vitest';
import {
  ByteTokenizer,
  detectFormat,
  gpt2Tokenizer,
  pieces,
  readRecords,
  TextDataset,
  tokenizeSource,
} from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'strata-records-'));
const file = (name: string, content: string | Uint8Array) => {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
};
const all = async (it: AsyncIterable<string>) => {
  const out: string[] = [];
  for await (const s of it) out.push(s);
  return out;
};
const parquet = (columns: { name: string; data: unknown[]; type?: string }[], rowGroupSize?: number) =>
  new Uint8Array(
    parquetWriteBuffer({
      columnData: columns as Parameters<typeof parquetWriteBuffer>[0]['columnData'],
      ...(rowGroupSize ? { rowGroupSize } : {}),
    }),
  );

describe('JSON Lines', () => {
  it('streams the text field, skipping blank lines (CRLF and a BOM are fine)', async () => {
    const p = file(
      'ok.jsonl',
      '\ufeff{"text": "one", "id": 1}\r\n\r\n{"text": "two\\nlines"}\n{"body": "x", "text": ""}\n',
    );
    expect(await all(readRecords(p, 'jsonl'))).toEqual(['one', 'two\nlines', '']);
    expect(await all(readRecords(p, 'jsonl', { textField: 'body' })).catch((e) => String(e))).toMatch(
      /ok\.jsonl:1: no "body" field \(fields: "text", "id"\); choose the field with --text-field/,
    );
  });

  it('names the file and line of malformed input', async () => {
    const bad = file('bad.jsonl', '{"text": "a"}\n{"text": "b"\n');
    await expect(all(readRecords(bad, 'jsonl'))).rejects.toThrow(/bad\.jsonl:2: not valid JSON/);
    const arr = file('arr.jsonl', '["text"]\n');
    await expect(all(readRecords(arr, 'jsonl'))).rejects.toThrow(/arr\.jsonl:1: expected a JSON object/);
    const num = file('num.jsonl', '{"text": "a"}\n{"text": 3}\n');
    await expect(all(readRecords(num, 'jsonl'))).rejects.toThrow(
      /num\.jsonl:2: field "text" is number, not a string/,
    );
  });
});

describe('Parquet', () => {
  it('streams a string column row group by row group, and a folder of shards in order', async () => {
    const texts = Array.from({ length: 25 }, (_, i) => `row ${i} é 漢`);
    const p = file(
      'a.parquet',
      parquet(
        [
          { name: 'id', data: texts.map((_, i) => i), type: 'INT32' },
          { name: 'text', data: texts, type: 'STRING' },
        ],
        10,
      ),
    );
    expect(await all(readRecords(p, 'parquet'))).toEqual(texts);
    const shards = join(dir, 'shards');
    mkdirSync(shards);
    writeFileSync(
      join(shards, 'part-1.parquet'),
      parquet([{ name: 'content', data: ['b'], type: 'STRING' }]),
    );
    writeFileSync(
      join(shards, 'part-0.parquet'),
      parquet([{ name: 'content', data: ['a', null], type: 'STRING' }]),
    );
    expect(await detectFormat(shards)).toBe('parquet');
    expect(await all(readRecords(shards, 'parquet', { textColumn: 'content' }))).toEqual(['a', 'b']);
  });

  it('names a missing column, a column of the wrong type, and a file that is not Parquet', async () => {
    const p = file(
      'b.parquet',
      parquet([
        { name: 'n', data: [1, 2], type: 'INT32' },
        { name: 'body', data: ['x', 'y'], type: 'STRING' },
      ]),
    );
    await expect(all(readRecords(p, 'parquet'))).rejects.toThrow(
      /b\.parquet: no column "text" \(columns: "n", "body"\)/,
    );
    await expect(all(readRecords(p, 'parquet', { textColumn: 'n' }))).rejects.toThrow(
      /column "n" holds INT32 values, not strings/,
    );
    const fake = file('fake.parquet', 'text,with,commas\n1,2,3\n');
    await expect(all(readRecords(fake, 'parquet'))).rejects.toThrow(/fake\.parquet: not a Parquet file/);
    const cut = parquet([{ name: 'text', data: ['x'], type: 'STRING' }]);
    const trunc = file('trunc.parquet', cut.subarray(0, cut.length - 10));
    await expect(all(readRecords(trunc, 'parquet'))).rejects.toThrow(/trunc\.parquet/);
  });
});

describe('tokenizeSource and its cache', () => {
  it('byte tokens equal the documents joined by a blank line (as TextDataset encodes text)', async () => {
    const p = file('docs.jsonl', '{"text": "héllo"}\n{"text": "wörld 👍"}\n');
    const t = await tokenizeSource({ path: p }, new ByteTokenizer(), { cacheDir: false });
    expect(Buffer.from(t.tokens).toString('utf8')).toBe('héllo\n\nwörld 👍');
    expect(t.documents).toBe(2);
  });

  it('separates documents with GPT-2 <|endoftext|>; the second run reads the cache (atomic file)', async () => {
    const cacheDir = join(dir, 'cache');
    const p = file('c.jsonl', '{"text": "Hello world"}\n{"text": " Hello world"}\n');
    const gpt2 = gpt2Tokenizer();
    const first = await tokenizeSource({ path: p }, gpt2, { cacheDir });
    expect(first.cached).toBe(false);
    expect(Array.from(first.tokens)).toEqual([15496, 995, 50256, 18435, 995]);
    expect(readdirSync(cacheDir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const second = await tokenizeSource({ path: p }, gpt2, { cacheDir });
    expect(second.cached).toBe(true);
    expect(second.key).toBe(first.key);
    expect(Array.from(second.tokens)).toEqual(Array.from(first.tokens));
    expect(second.tokens).toBeInstanceOf(Uint16Array);
    // another tokenizer, or changed data, is another entry
    const bytes = await tokenizeSource({ path: p }, new ByteTokenizer(), { cacheDir });
    expect(bytes.cached).toBe(false);
    writeFileSync(p, '{"text": "Hello"}\n');
    const changed = await tokenizeSource({ path: p }, gpt2, { cacheDir });
    expect(changed.cached).toBe(false);
    expect(Array.from(changed.tokens)).toEqual([15496]);
    // a corrupt entry is ignored and rewritten
    writeFileSync(changed.cacheFile!, 'garbage');
    const again = await tokenizeSource({ path: p }, gpt2, { cacheDir });
    expect(again.cached).toBe(false);
    expect(Array.from(again.tokens)).toEqual([15496]);
    const ds = new TextDataset({ tokens: first.tokens, documents: 2 }, gpt2, { valFraction: 0.2 });
    expect(ds.stats().totalTokens).toBe(5);
  });

  it('cuts long documents only where GPT-2 ids do not change', () => {
    const text = `${'word '.repeat(300_000)}\nNext line\n\nafter blank\n${'x'.repeat(10)}`;
    const parts = [...pieces(text)];
    expect(parts.join('')).toBe(text);
    expect(parts.length).toBeGreaterThan(1);
    const gpt2 = gpt2Tokenizer();
    const whole = Array.from(gpt2.encode(text));
    const joined = parts.flatMap((s) => Array.from(gpt2.encode(s)));
    expect(joined).toEqual(whole);
  });
});
