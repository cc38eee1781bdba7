import { beforeAll, describe, expect, it } from 'vitest';
import {
  ByteSpecialTokenizer,
  encodePairs,
  gpt2Tokenizer,
  HFTokenizer,
  MaskedLMDataset,
  ordinaryTokenIds,
  requireSpecials,
  SPAN_ROLES,
  SpanCorruptionDataset,
  specialTokenIds,
  TextDataset,
  tokenizerFromJSON,
  withAddedTokens,
} from '../src/index.js';

// The encoder tasks on a subword tokenizer: GPT-2's BPE with special tokens appended after its 50,257 ids.
const sentinels = Array.from({ length: 8 }, (_, k) => `<extra_id_${k}>`);
let gpt2: HFTokenizer;
let ext: HFTokenizer;
/** Lets the worker answer vitest between synchronous steps of a second or so (building a GPT-2 tokenizer). */
const breathe = () => new Promise((r) => setImmediate(r));
beforeAll(async () => {
  gpt2 = gpt2Tokenizer();
  await breathe();
  ext = withAddedTokens(gpt2, ['<pad>', '<mask>', '<bos>', ...sentinels]);
  await breathe();
});
const DOCS = [
  'The quick brown fox jumps over the lazy dog, and the dog does not mind at all.',
  'Grand juries said Friday an investigation produced no evidence that any irregularities took place.',
  'A déjà-vu of naïve café owners: 東京 and Zürich compete for the best coffee in the world.',
];
/** Documents joined by `<|endoftext|>` (as the token cache separates them for a tokenizer with `eos`). */
function docTokens(tok: HFTokenizer, times: number): Int32Array {
  const out: number[] = [];
  for (let i = 0; i < times; i++)
    for (const d of DOCS) out.push(...tok.encode(`${d} Round ${i}.`), tok.specials.eos!);
  return Int32Array.from(out);
}

/** A tiny WordLevel tokenizer.json with the given added special tokens (ids after the words). */
function wordLevel(specials: string[]): HFTokenizer {
  const words = ['[UNK]', 'a', 'b', 'c', 'd'];
  const vocab = Object.fromEntries(words.map((w, i) => [w, i]));
  return new HFTokenizer(
    JSON.stringify({
      version: '1.0',
      added_tokens: specials.map((content, i) => ({ id: words.length + i, content, special: true })),
      normalizer: null,
      pre_tokenizer: { type: 'Whitespace' },
      post_processor: null,
      decoder: null,
      model: { type: 'WordLevel', vocab, unk_token: '[UNK]' },
    }),
    { where: 'words.json', source: 'words.json' },
  );
}

describe('special tokens appended to GPT-2 (withAddedTokens)', () => {
  it('take ids 50257 on, resolve by role, leave ordinary text alone, and survive the checkpoint record', async () => {
    expect(ext.vocabSize).toBe(50257 + 3 + 8);
    expect(ext.specials).toEqual({
      bos: 50259, // <bos> is preferred to <|endoftext|>, so that the decoder's start differs from eos
      eos: 50256,
      pad: 50257,
      mask: 50258,
      sentinels: Array.from({ length: 8 }, (_, k) => 50260 + k),
    });
    const text = DOCS.join(' ');
    expect(Array.from(ext.encode(text))).toEqual(Array.from(gpt2.encode(text)));
    expect(ext.decode(ext.encode(text))).toBe(text);
    expect(Array.from(ext.encode('a<mask> b<extra_id_7>'))).toEqual([64, 50258, 275, 50267]);
    expect(ext.decode([50258, 50267, 50256])).toBe('<mask><extra_id_7><|endoftext|>');
    const rec = ext.toJSON();
    expect(rec).toMatchObject({
      kind: 'gpt2',
      vocabSize: 50268,
      added: ['<pad>', '<mask>', '<bos>', ...sentinels],
    });
    for (const files of [ext.files(), {}]) {
      // with its tokenizer.json, and without it (rebuilt from GPT-2's and the recorded added tokens)
      await breathe();
      const back = tokenizerFromJSON(JSON.parse(JSON.stringify(rec)), files);
      expect(back.vocabSize).toBe(ext.vocabSize);
      expect(back.specials).toEqual(ext.specials);
      expect(back.toJSON()).toEqual(rec);
    }
    expect(() => withAddedTokens(gpt2, ['<|endoftext|>'])).toThrow(/has that token already/);
  });

  it('counts every added and role token as special, and only those', () => {
    const special = specialTokenIds(ext);
    expect([...special].sort((a, b) => a - b)).toEqual(Array.from({ length: 12 }, (_, k) => 50256 + k));
    expect(ordinaryTokenIds(ext).length).toBe(50256);
    expect(Array.from(ordinaryTokenIds(new ByteSpecialTokenizer()))).toEqual(
      Array.from({ length: 256 }, (_, i) => i),
    );
  });
});

describe('masked-LM batches on a subword tokenizer', () => {
  it("masks with the tokenizer's <mask>, replaces with ordinary tokens only, never chooses <|endoftext|>", async () => {
    const tok = withAddedTokens(gpt2, ['<mask>']);
    await breathe();
    const mask = tok.specials.mask!;
    expect(mask).toBe(50257);
    const ds = new MaskedLMDataset(
      new TextDataset({ tokens: docTokens(tok, 30), documents: 90 }, tok, { seed: 3 }),
      tok,
    );
    expect(ds.maskId).toBe(mask);
    let chosen = 0;
    let masked = 0;
    let random = 0;
    let eosSeen = 0;
    for (let s = 0; s < 30; s++) {
      const raw = ds.text.trainBatch(s, 8, 32).x;
      const b = ds.trainBatch(s, 8, 32);
      for (let i = 0; i < b.x.length; i++) {
        if (raw[i] === 50256) eosSeen++;
        expect(raw[i]).not.toBe(mask); // the text itself never holds the mask token
        if (b.y[i]! < 0) {
          expect(b.x[i]).toBe(raw[i]);
          continue;
        }
        chosen++;
        expect(b.y[i]).toBe(raw[i]);
        // a separator is chosen only as a row's forced last position
        if (raw[i] === 50256) expect(i % 32).toBe(31);
        if (b.x[i] === mask) masked++;
        else if (b.x[i] !== raw[i]) {
          random++;
          expect(b.x[i]).toBeLessThan(50256); // a random replacement is an ordinary token
        }
      }
      // restoring the chosen positions gives back the window's text exactly
      const restored = Array.from(b.x, (v, i) => (b.y[i]! >= 0 ? b.y[i]! : v));
      expect(tok.decode(restored)).toBe(tok.decode(raw));
    }
    expect(eosSeen).toBeGreaterThan(20);
    expect(masked / chosen).toBeGreaterThan(0.7);
    expect(random / chosen).toBeGreaterThan(0.04);
    expect(random / chosen).toBeLessThan(0.16);
  });

  it('refuses a tokenizer without <mask>, naming the role, the tokenizer and how to get one', () => {
    const text = new TextDataset({ tokens: docTokens(gpt2, 2) }, gpt2);
    expect(() => new MaskedLMDataset(text, gpt2)).toThrow(
      /^masked-language modelling needs the special token mask \(<mask>\), which the gpt2 tokenizer \(GPT-2 .*\) lacks; train a tokenizer that has them \(strata tokenizer train .*\), or add <mask> to the added_tokens/,
    );
  });
});

describe('span corruption and pairs on a subword tokenizer', () => {
  let sp: HFTokenizer['specials'];
  let shape: { sourceLength: number; targetLength: number; padId: number; bosId: number; eosId: number };
  beforeAll(() => {
    sp = ext.specials;
    shape = { sourceLength: 40, targetLength: 16, padId: sp.pad!, bosId: sp.bos!, eosId: sp.eos! };
  });

  it("uses the tokenizer's sentinels, pad, bos and eos; source and target rebuild the window", () => {
    const text = new TextDataset({ tokens: docTokens(ext, 10), documents: 30 }, ext, { seed: 2 });
    const sc = new SpanCorruptionDataset(text, ext, shape);
    expect(sc.sentinels).toEqual(sp.sentinels);
    const sentinelSet = new Set(sp.sentinels);
    for (let s = 0; s < 5; s++) {
      const b = sc.trainBatch(s, 4);
      const raw = text.trainBatch(s, 4, 40).x;
      for (let r = 0; r < 4; r++) {
        const row = Array.from(b.x.subarray(r * 56, r * 56 + 40));
        const src = row.filter((v) => v !== sp.pad);
        const tgt = Array.from(b.y.subarray(r * 16, (r + 1) * 16)).filter((v) => v >= 0);
        expect(tgt[tgt.length - 1]).toBe(sp.eos);
        expect(b.x[r * 56 + 40]).toBe(sp.bos);
        // sentinels appear only where spans were cut, in order <extra_id_0>, <extra_id_1>, …
        const used = src.filter((v) => sentinelSet.has(v));
        expect(used).toEqual(sp.sentinels!.slice(0, used.length));
        expect(tgt.filter((v) => sentinelSet.has(v))).toEqual(used);
        const spans = new Map<number, number[]>();
        let cur = -1;
        for (const v of tgt.slice(0, -1)) {
          if (sentinelSet.has(v)) {
            cur = v;
            spans.set(v, []);
          } else spans.get(cur)!.push(v);
        }
        const rebuilt = src.flatMap((v) => (sentinelSet.has(v) ? spans.get(v)! : [v]));
        expect(rebuilt).toEqual(Array.from(raw.subarray(r * 40, (r + 1) * 40)));
        expect(ext.decode(rebuilt)).toBe(ext.decode(raw.subarray(r * 40, (r + 1) * 40)));
        expect(ext.decode(src)).toContain('<extra_id_0>');
      }
    }
  });

  it('refuses missing roles, shared ids and a model whose special ids are not the tokenizer’s', async () => {
    const text = new TextDataset({ tokens: docTokens(gpt2, 3) }, gpt2);
    expect(() => new SpanCorruptionDataset(text, gpt2, shape)).toThrow(
      /^span corruption needs the special tokens pad, sentinels \(<pad>, <extra_id_0>, <extra_id_1>, …\), which the gpt2 tokenizer .* lacks; train a tokenizer that has them \(strata tokenizer train --vocab-size N --sentinels 16/,
    );
    const words = wordLevel(['<pad>', '<eos>']);
    expect(() => requireSpecials(words, SPAN_ROLES, '--task span')).toThrow(
      /^--task span needs the special tokens bos, sentinels .* which the hf tokenizer \(words\.json\) lacks/,
    );
    // GPT-2 plus <pad> only: bos and eos are both <|endoftext|>
    await breathe();
    const padded = withAddedTokens(gpt2, ['<pad>']);
    expect(() => encodePairs([{ source: 'a', target: 'b' }], padded, shape, { what: 'p.tsv' })).toThrow(
      /^p\.tsv needs distinct pad, bos, eos tokens, but the gpt2 tokenizer .* uses id 50256 for both bos and eos; add a separate <bos>/,
    );
    expect(
      () =>
        new SpanCorruptionDataset(new TextDataset({ tokens: docTokens(ext, 3) }, ext), ext, {
          ...shape,
          padId: 256,
          bosId: 258,
        }),
    ).toThrow(/the model's padId 256, bosId 258 are not the gpt2 tokenizer .*'s \(pad 50257, bos 50259\)/);
    await breathe();
    const few = withAddedTokens(gpt2, ['<pad>', '<bos>', '<extra_id_0>']);
    const fewShape = { ...shape, padId: few.specials.pad!, bosId: few.specials.bos! };
    expect(
      () => new SpanCorruptionDataset(new TextDataset({ tokens: docTokens(few, 3) }, few), few, fewShape),
    ).toThrow(
      /makes 2 spans but the gpt2 tokenizer .* has 1 sentinels; .*strata tokenizer train --sentinels 2/,
    );
  });

  it('encodes pairs with the tokenizer, never adding special tokens to the text', () => {
    const [e] = encodePairs([{ source: 'The jury said', target: 'at nn vbd' }], ext, shape);
    expect(Array.from(e!.source)).toEqual(Array.from(gpt2.encode('The jury said')));
    expect(ext.decode(e!.target)).toBe('at nn vbd');
    const special = specialTokenIds(ext);
    expect([...e!.source, ...e!.target].some((v) => special.has(v))).toBe(false);
  });
});
