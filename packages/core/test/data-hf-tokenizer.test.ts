import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ByteSpecialTokenizer,
  ByteTokenizer,
  gpt2Tokenizer,
  gpt2TokenizerJSON,
  HFTokenizer,
  loadBrownCorpus,
  resolveTokenizer,
  tokenizerFromJSON,
} from '../src/index.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

// Awkward text: combining marks, emoji with zero-width joiners and skin tones, CJK, right-to-left,
// control characters and NUL, characters outside the BMP, CRLF, a byte-order mark, trailing spaces.
const AWKWARD = [
  'e\u0301 n\u0303 a\u030a\u0323 Zalgo: Z\u0351\u0346\u036bA\u0352L\u0353G\u0354O',
  '👨‍👩‍👧‍👦 👍🏽 🏳️‍🌈 🇫🇷 ❤️‍🔥',
  '漢字かなカナ한국어 中文，标点。',
  'שלום עולם مرحبا بالعالم',
  'nul\u0000 bell\u0007 esc\u001b[2J del\u007f',
  '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𐍈 𝄞',
  'line1\r\nline2\n\n\tindent   trailing   ',
  '\ufeffBOM <|endoftext|> literal',
];

describe('GPT-2 tokenizer', () => {
  const gpt2 = gpt2Tokenizer();

  it('gives the ids of the Hugging Face GPT-2 tokenizer documentation', () => {
    // From the transformers docs (GPT2Tokenizer and the GPT-2 model examples).
    expect(Array.from(gpt2.encode('Hello world'))).toEqual([15496, 995]);
    expect(Array.from(gpt2.encode(' Hello world'))).toEqual([18435, 995]);
    expect(Array.from(gpt2.encode('Hello, my dog is cute'))).toEqual([15496, 11, 616, 3290, 318, 13779]);
    expect(Array.from(gpt2.encode('<|endoftext|>'))).toEqual([50256]);
    expect(gpt2.vocabSize).toBe(50257);
    expect(gpt2.specials.eos).toBe(50256);
    expect(gpt2.specials.bos).toBe(50256);
  });

  it("rebuilds OpenAI's vocab.bpe and encoder.json exactly (their published SHA-256)", () => {
    const json = JSON.parse(gpt2TokenizerJSON()) as {
      model: { vocab: Record<string, number>; merges: [string, string][] };
    };
    const bpe = `#version: 0.2\n${json.model.merges.map(([a, b]) => `${a} ${b}\n`).join('')}`;
    // The hashes tiktoken checks when it downloads the GPT-2 files (tiktoken_ext/openai_public.py).
    expect(sha(bpe)).toBe('1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5');
    const ascii = (s: string) =>
      JSON.stringify(s).replace(
        /[\u007f-\uffff]/g,
        (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
      );
    const entries = Object.entries(json.model.vocab).sort((a, b) => a[1] - b[1]);
    const encoder = `{${entries.map(([k, v]) => `${ascii(k)}: ${v}`).join(', ')}}`;
    expect(sha(encoder)).toBe('196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783');
  });

  it('round-trips the whole Brown corpus, document by document', { timeout: 600_000 }, () => {
    const { documents } = loadBrownCorpus();
    let tokens = 0;
    for (const doc of documents) {
      const ids = gpt2.encode(doc);
      tokens += ids.length;
      expect(gpt2.decode(ids)).toBe(doc);
    }
    expect(tokens).toBeGreaterThan(1_000_000);
  });

  it('round-trips awkward Unicode; lone surrogates become U+FFFD (as in UTF-8 encoding)', () => {
    for (const s of AWKWARD) expect(gpt2.decode(gpt2.encode(s))).toBe(s);
    expect(gpt2.decode(gpt2.encode('a\ud800b\udc00'))).toBe('a\ufffdb\ufffd');
    expect(new ByteTokenizer().decode(new ByteTokenizer().encode('a\ud800b'))).toBe('a\ufffdb');
  });

  it('decodes ids outside the vocabulary as U+FFFD and streams the same text as decode', () => {
    expect(gpt2.decode([15496, 99999, -1, 995])).toBe('Hello\ufffd\ufffd world');
    const ids = Array.from(gpt2.encode(AWKWARD.join(' ')));
    const d = gpt2.decoder();
    let streamed = '';
    for (const id of ids) streamed += d.push(id);
    streamed += d.flush();
    expect(streamed).toBe(gpt2.decode(ids));
    // a character split across tokens is held back until complete
    const split = gpt2.decoder();
    const parts = Array.from(gpt2.encode('👍')).map((id) => split.push(id));
    expect(parts.slice(0, -1).join('')).toBe('');
    expect(parts.join('') + split.flush()).toBe('👍');
  });

  it('is rebuilt from its record and tokenizer.json, and refuses an edited file', () => {
    const rec = gpt2.toJSON();
    expect(rec).toMatchObject({ kind: 'gpt2', vocabSize: 50257, file: 'tokenizer.json' });
    expect(rec.specials.eos).toEqual({ token: '<|endoftext|>', id: 50256 });
    const back = tokenizerFromJSON(rec, gpt2.files());
    expect(Array.from(back.encode('Hello world'))).toEqual([15496, 995]);
    const edited = gpt2.fileText.replace('"Ġt":256', '"Ġt":257');
    expect(() => tokenizerFromJSON(rec, { 'tokenizer.json': edited })).toThrow(/does not match/);
    expect(() => tokenizerFromJSON({ kind: 'hf', vocabSize: 10 }, {})).toThrow(/tokenizer\.json/);
  });
});

describe('Hugging Face tokenizer.json files', () => {
  it('reads a file and its tokenizer_config.json, and names a bad file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'strata-hf-'));
    const file = join(dir, 'tokenizer.json');
    writeFileSync(file, gpt2TokenizerJSON());
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ pad_token: '<|endoftext|>' }));
    const tok = resolveTokenizer(file);
    expect(tok.kind).toBe('hf');
    expect(tok.specials?.pad).toBe(50256);
    writeFileSync(join(dir, 'bad.json'), '{"version": "1.0"}');
    expect(() => resolveTokenizer(join(dir, 'bad.json'))).toThrow(/not a Hugging Face tokenizer\.json/);
    expect(() => resolveTokenizer(join(dir, 'missing.json'))).toThrow(/missing\.json: cannot read/);
    expect(() => resolveTokenizer('bpe')).toThrow(/byte, gpt2 or the path/);
    expect(readFileSync(file, 'utf8').length).toBeGreaterThan(1e6);
  });

  it('maps the byte-special tokenizer roles like a tokenizer.json with those names', () => {
    const b = new ByteSpecialTokenizer(2);
    expect(b.specials).toEqual({ pad: 256, mask: 257, bos: 258, eos: 259, sentinels: [260, 261] });
  });

  it('works with a WordLevel model too (not only BPE)', () => {
    const json = {
      version: '1.0',
      added_tokens: [{ id: 0, content: '[UNK]', special: true }],
      normalizer: null,
      pre_tokenizer: { type: 'Whitespace' },
      post_processor: null,
      decoder: null,
      model: { type: 'WordLevel', vocab: { '[UNK]': 0, hello: 1, world: 2 }, unk_token: '[UNK]' },
    };
    const tok = new HFTokenizer(JSON.stringify(json));
    expect(Array.from(tok.encode('hello world again'))).toEqual([1, 2, 0]);
    expect(tok.specials.unk).toBe(0);
    expect(tok.vocabSize).toBe(3);
  });
});

describe('checkpoints with a subword tokenizer', () => {
  it('keep tokenizer.json beside config.json and load it back; a missing file is a clear error', async () => {
    const { saveCheckpoint, loadCheckpoint, tokenizerFingerprint, initBackend } = await import(
      '../src/index.js'
    );
    await initBackend('cpu');
    const { rmSync, copyFileSync } = await import('node:fs');
    const { tinyGPT } = await import('./helpers.js');
    const dir = mkdtempSync(join(tmpdir(), 'strata-ckpt-tok-'));
    const tok = new HFTokenizer(gpt2TokenizerJSON(), { kind: 'hf', source: '/somewhere/tokenizer.json' });
    const model = tinyGPT({ vocabSize: tok.vocabSize });
    const ckpt = join(dir, 'ckpt');
    await saveCheckpoint(ckpt, model, { tokenizer: tok.toJSON(), tokenizerFiles: tok.files() });
    model.dispose();
    expect(readFileSync(join(ckpt, 'tokenizer.json'), 'utf8')).toBe(tok.fileText);
    const loaded = await loadCheckpoint(ckpt);
    expect(loaded.tokenizer.kind).toBe('hf');
    expect(Array.from(loaded.tokenizer.encode('Hello world'))).toEqual([15496, 995]);
    // the cache key does not depend on where the file was read from
    expect(tokenizerFingerprint(loaded.tokenizer)).toBe(
      tokenizerFingerprint(new HFTokenizer(tok.fileText, { kind: 'hf', source: '/elsewhere.json' })),
    );
    loaded.model.dispose();
    copyFileSync(join(ckpt, 'tokenizer.json'), join(dir, 'kept.json'));
    rmSync(join(ckpt, 'tokenizer.json'));
    await expect(loadCheckpoint(ckpt)).rejects.toThrow(
      /config\.json: tokenizer "hf" is stored in tokenizer\.json beside config\.json, which is missing/,
    );
  }, 120_000);
});
