import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ByteSpecialTokenizer,
  brownPosPairs,
  type EncoderDecoder,
  encodePairs,
  evaluateTask,
  getModelFamily,
  initBackend,
  type LanguageModel,
  loadCheckpoint,
  loadPairsFile,
  MaskedLMDataset,
  parsePairs,
  parseTrainConfig,
  Seq2SeqDataset,
  SpanCorruptionDataset,
  saveCheckpoint,
  simplifyBrownTag,
  TextDataset,
  Trainer,
  tokenizerFromJSON,
} from '../src/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'strata-tasks-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
beforeAll(async () => {
  await initBackend('wasm');
});

const tok = new ByteSpecialTokenizer();
const TEXT = 'the quick brown fox jumps over the lazy dog. '.repeat(60);

describe('byte-special tokenizer', () => {
  it('has the byte ids, the specials and the sentinels, and round-trips through JSON', () => {
    expect(tok.vocabSize).toBe(276);
    expect([tok.padId, tok.maskId, tok.bosId, tok.eosId, tok.sentinelId(0), tok.sentinelId(15)]).toEqual([
      256, 257, 258, 259, 260, 275,
    ]);
    const ids = tok.encodeWithSpecials('a<mask>b<extra_id_2>é');
    expect(Array.from(ids)).toEqual([97, 257, 98, 262, 0xc3, 0xa9]);
    expect(tok.decode([...ids, 256])).toBe('a<mask>b<extra_id_2>é');
    const back = tokenizerFromJSON(JSON.parse(JSON.stringify(tok.toJSON())));
    expect(back.vocabSize).toBe(276);
    expect(() => tokenizerFromJSON({ kind: 'byte-special', specials: ['<x>'] })).toThrow(/specials/);
  });
});

describe('masked-LM batches', () => {
  it('mask ~15 % of positions (≥ 1 per row): 80 % <mask>, targets -1 elsewhere, inputs kept elsewhere', () => {
    const ds = new MaskedLMDataset(new TextDataset(TEXT, tok, { seed: 1 }), tok);
    let chosen = 0;
    let masked = 0;
    let total = 0;
    for (let s = 0; s < 20; s++) {
      const raw = ds.text.trainBatch(s, 8, 32).x;
      const b = ds.trainBatch(s, 8, 32);
      for (let r = 0; r < 8; r++) expect(b.y.subarray(r * 32, (r + 1) * 32).some((v) => v >= 0)).toBe(true);
      for (let i = 0; i < b.x.length; i++) {
        total++;
        if (b.y[i]! >= 0) {
          chosen++;
          expect(b.y[i]).toBe(raw[i]);
          if (b.x[i] === tok.maskId) masked++;
        } else expect(b.x[i]).toBe(raw[i]);
      }
    }
    expect(chosen / total).toBeGreaterThan(0.12);
    expect(chosen / total).toBeLessThan(0.19);
    expect(masked / chosen).toBeGreaterThan(0.72);
    expect(masked / chosen).toBeLessThan(0.88);
    // Stateless: the same step gives the same batch.
    expect(ds.trainBatch(3, 8, 32)).toEqual(ds.trainBatch(3, 8, 32));
  });
});

describe('span corruption', () => {
  it('source with sentinels + target spans reconstruct the window exactly', () => {
    const shape = { sourceLength: 40, targetLength: 16, padId: 256, bosId: 258, eosId: 259 };
    const sc = new SpanCorruptionDataset(new TextDataset(TEXT, tok, { seed: 2 }), tok, shape);
    const text = new TextDataset(TEXT, tok, { seed: 2 });
    for (let s = 0; s < 5; s++) {
      const b = sc.trainBatch(s, 4);
      const raw = text.trainBatch(s, 4, 40).x;
      for (let r = 0; r < 4; r++) {
        const src = Array.from(b.x.subarray(r * 56, r * 56 + 40)).filter((v) => v !== 256);
        const tgt = Array.from(b.y.subarray(r * 16, (r + 1) * 16)).filter((v) => v >= 0);
        expect(tgt[tgt.length - 1]).toBe(259);
        expect(b.x[r * 56 + 40]).toBe(258);
        // Replace each sentinel of the source by the tokens that follow it in the target.
        const spans = new Map<number, number[]>();
        let cur = -1;
        for (const v of tgt.slice(0, -1)) {
          if (tok.isSpecial(v)) {
            cur = v;
            spans.set(v, []);
          } else spans.get(cur)!.push(v);
        }
        const rebuilt = src.flatMap((v) => (tok.isSpecial(v) ? spans.get(v)! : [v]));
        expect(rebuilt).toEqual(Array.from(raw.subarray(r * 40, (r + 1) * 40)));
        expect([...spans.values()].reduce((a, sp) => a + sp.length, 0)).toBe(6); // round(0.15 · 40)
      }
    }
  });

  it('refuses a target length too short for the corruption', () => {
    const shape = { sourceLength: 64, targetLength: 8, padId: 256, bosId: 258, eosId: 259 };
    expect(() => new SpanCorruptionDataset(new TextDataset(TEXT, tok), tok, shape)).toThrow(
      /set --target-length to at least 14/,
    );
  });
});

describe('pairs files', () => {
  it('parse TSV and JSONL; malformed rows fail naming the file and line', () => {
    expect(parsePairs('a\tb\n\nc\td\n', 'x.tsv')).toEqual([
      { source: 'a', target: 'b' },
      { source: 'c', target: 'd' },
    ]);
    expect(parsePairs('{"source":"a","target":"b"}\n', 'x.jsonl')).toEqual([{ source: 'a', target: 'b' }]);
    expect(() => parsePairs('a\tb\nno tab here\n', 'p.tsv')).toThrow(
      /p.tsv:2: expected 2 tab-separated columns \(source<TAB>target\), got 1/,
    );
    expect(() => parsePairs('a\tb\tc\n', 'p.tsv')).toThrow(/p.tsv:1: .* got 3/);
    expect(() => parsePairs('\tb\n', 'p.tsv')).toThrow(/p.tsv:1: empty source column/);
    expect(() => parsePairs('{"source":"a"}\n', 'p.jsonl')).toThrow(
      /p.jsonl:1: expected an object with string fields/,
    );
    expect(() => parsePairs('{oops\n', 'p.jsonl')).toThrow(/p.jsonl:1: invalid JSON/);
    expect(() => parsePairs('\n\n', 'p.tsv')).toThrow(/no pairs found/);
    const f = join(tmp, 'pairs.tsv');
    writeFileSync(f, 'hello\tworld\n');
    expect(loadPairsFile(f)).toEqual([{ source: 'hello', target: 'world' }]);
    expect(() => loadPairsFile(join(tmp, 'missing.tsv'))).toThrow(/cannot read the pairs file \(ENOENT\)/);
  });

  it('a pair longer than the model fails naming it', () => {
    const shape = { sourceLength: 4, targetLength: 8, padId: 256, bosId: 258, eosId: 259 };
    expect(() =>
      encodePairs(
        [
          { source: 'ab', target: 'c' },
          { source: 'abcdef', target: 'x' },
        ],
        tok,
        shape,
      ),
    ).toThrow(/pairs, pair 2: the source has 6 tokens, more than the model's sourceLength 4/);
    expect(
      encodePairs(
        [
          { source: 'abcdef', target: 'x' },
          { source: 'ab', target: 'c' },
        ],
        tok,
        shape,
        { skipLong: true },
      ),
    ).toHaveLength(1);
  });
});

describe('Brown POS task', () => {
  it('pairs each sentence with its simplified tag sequence', () => {
    const pairs = brownPosPairs({ maxFiles: 1 });
    expect(pairs.length).toBeGreaterThan(50);
    const first = pairs[0]!;
    expect(first.source.startsWith('The Fulton County Grand Jury said Friday')).toBe(true);
    expect(first.target.startsWith('at np nn jj nn vbd nr')).toBe(true);
    for (const p of pairs.slice(0, 30)) expect(p.source.split(' ').length).toBe(p.target.split(' ').length);
    expect(simplifyBrownTag('np-tl')).toBe('np');
    expect(simplifyBrownTag('vbz+rb')).toBe('vbz');
    expect(simplifyBrownTag('.')).toBe('.');
  });
});

function encDec(seed = 1): EncoderDecoder {
  const fam = getModelFamily('encdec');
  return fam.create(
    fam.parseConfig({
      dModel: 16,
      nHeads: 2,
      nEncoderLayers: 1,
      nDecoderLayers: 1,
      sourceLength: 12,
      targetLength: 8,
    }),
    { seed },
  ) as EncoderDecoder;
}

/** A copy task: the target is the reversed source (few symbols, learnable in a few dozen steps). */
function copyData(shape: EncoderDecoder['config']): Seq2SeqDataset {
  const pairs = [];
  for (let i = 0; i < 40; i++) {
    const s = 'abcde'.slice(i % 5) + 'abcde'.slice(0, i % 5);
    pairs.push({ source: s.slice(0, 3 + (i % 3)), target: [...s.slice(0, 3 + (i % 3))].reverse().join('') });
  }
  return new Seq2SeqDataset(encodePairs(pairs, tok, shape), shape, { seed: 1, description: 'copy' });
}

describe('training the new architectures', () => {
  it('an encoder-decoder learns (loss falls, accuracy rises); resuming from a checkpoint is exact', async () => {
    const config = parseTrainConfig({
      steps: 40,
      batchSize: 8,
      seqLen: 20,
      lr: 1e-2,
      warmupSteps: 0,
      evalBatches: 2,
    });
    const model = encDec();
    const data = copyData(model.config);
    const before = await evaluateTask(model, data.valBatches(8, 20, 2), 8);
    const tr = new Trainer(model, data, config);
    for (let i = 0; i < 20; i++) await tr.step();
    const dir = join(tmp, 'ckpt');
    await saveCheckpoint(dir, model, {
      tokenizer: tok.toJSON(),
      optimizer: await tr.optimizer.exportState(),
      state: { ...tr.state },
    });
    for (let i = 0; i < 20; i++) await tr.step();
    const after = await evaluateTask(model, data.valBatches(8, 20, 2), 8);
    expect(after.loss).toBeLessThan(before.loss - 1);
    expect(after.accuracy).toBeGreaterThan(before.accuracy);
    expect(after.exactMatch).toBeDefined();
    const want = await model.params.read();
    // Resume: a fresh process would load the checkpoint and continue for the same 20 steps.
    const loaded = await loadCheckpoint(dir, { optimizer: true });
    expect(loaded.model.family).toBe('encdec');
    const tr2 = new Trainer(loaded.model, data, config, {
      ...(loaded.optimizer ? { optimizer: loaded.optimizer } : {}),
      ...(loaded.state ? { state: loaded.state } : {}),
    });
    while (tr2.state.step < 40) await tr2.step();
    const got = await loaded.model.params.read();
    for (const [name, w] of want) expect(Array.from(got.get(name)!), name).toEqual(Array.from(w));
    tr.dispose();
    tr2.dispose();
    model.dispose();
    loaded.model.dispose();
  });

  it('gradient accumulation slices the packed rows and their (fewer) targets per micro-batch', async () => {
    const model = encDec(4);
    const data = copyData(model.config);
    const cfg = parseTrainConfig({
      steps: 2,
      batchSize: 4,
      gradAccum: 2,
      seqLen: 20,
      lr: 1e-3,
      warmupSteps: 0,
    });
    const tr = new Trainer(model, data, cfg);
    const m = await tr.step();
    expect(Number.isFinite(m.loss)).toBe(true);
    expect(m.loss).toBeGreaterThan(0);
    tr.dispose();
    model.dispose();
  });

  it('an encoder-only model trains with masked-LM and reports accuracy on the masked positions', async () => {
    const fam = getModelFamily('encoder');
    const model: LanguageModel = fam.create(
      fam.parseConfig({ dModel: 16, nHeads: 2, nLayers: 1, contextLength: 16 }),
      { seed: 2 },
    );
    const data = new MaskedLMDataset(new TextDataset(TEXT, tok, { seed: 3 }), tok);
    const config = parseTrainConfig({ steps: 30, batchSize: 8, seqLen: 16, lr: 1e-2, warmupSteps: 0 });
    const before = await evaluateTask(model, data.valBatches(8, 16, 2), 8);
    const tr = new Trainer(model, data, config, undefined, { recompute: true });
    for (let i = 0; i < 30; i++) await tr.step();
    const after = await evaluateTask(model, data.valBatches(8, 16, 2), 8);
    expect(after.tokens).toBeLessThan(8 * 16 * 2 * 0.3);
    expect(after.loss).toBeLessThan(before.loss - 1);
    expect(after.accuracy).toBeGreaterThan(0.2);
    expect(after.exactMatch).toBeUndefined();
    tr.dispose();
    model.dispose();
  });
});
