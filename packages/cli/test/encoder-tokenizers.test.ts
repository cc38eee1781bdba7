/**
 * The encoder tasks (`--task mlm|span|pairs|pos`) with a subword `--tokenizer` (needs `npm run build`): a BPE
 * trained here with the special tokens the tasks need, GPT-2's BPE with them appended, and the refusal of a
 * tokenizer that lacks one. Tiny models, a few steps.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gpt2Tokenizer, loadBrownCorpus, loadTokenizerFile, readMetrics } from '@strata/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDirOf } from '../src/commands/compare.js';
import { GPT2_SENTINELS, taskModelIds, taskTokenizerFor } from '../src/tasks.js';
import { jsonLines, strataRun, TINY_MODEL } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'strata-enc-tok-'));
process.env.STRATA_CACHE_DIR = join(dir, 'cache');
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const text = join(dir, 'small.txt');
const bpe = join(dir, 'bpe.json');
const RUN = [...TINY_MODEL, '--eval-every', '2', '--json'];
/** `strata train --arch ARCH --tokenizer TOK --data DATA` (2 steps, tiny model) with `extra` flags, into `out`. */
const train = (arch: string, tok: string, out: string, extra: string[] = [], data = text) =>
  strataRun([
    'train',
    '--arch',
    arch,
    '--tokenizer',
    tok,
    '--data',
    data,
    ...RUN,
    '--steps',
    '2',
    ...extra,
    '--out',
    out,
  ]);
/** The first JSON line of `strata CMD --checkpoint RUN --json ARGS`. */
const jsonOf = async (cmd: string, run: string, ...args: string[]) =>
  jsonLines((await strataRun([cmd, '--checkpoint', run, '--json', '--backend', 'wasm', ...args])).stdout)[0]!;
const config = (run: string) => JSON.parse(readFileSync(join(run, 'checkpoint', 'config.json'), 'utf8'));

beforeAll(async () => {
  writeFileSync(text, loadBrownCorpus({ maxFiles: 6 }).text);
  // <pad> <mask> <bos> <eos> (ids 0-3, the default specials) and 4 sentinels (4-7)
  const r = await strataRun([
    'tokenizer',
    'train',
    '--data',
    text,
    '--vocab-size',
    '400',
    '--sentinels',
    '4',
    '--out',
    bpe,
  ]);
  expect(r.code, r.stderr).toBe(0);
}, 120_000);

describe('encoder tasks with a trained BPE tokenizer', () => {
  it('masked-LM: the model pads with the tokenizer’s <pad>; eval, generate, info and resume use the checkpoint’s tokenizer', async () => {
    const out = join(dir, 'mlm');
    const r = await train('encoder-only', bpe, out);
    expect(r.code, r.stderr).toBe(0);
    const cfg = config(out);
    expect([cfg.model.vocabSize, cfg.model.padId]).toEqual([400, 0]);
    expect(cfg.tokenizer).toMatchObject({ kind: 'hf', vocabSize: 400, sentinels: 4 });
    expect(cfg.tokenizer.specials.mask).toEqual({ token: '<mask>', id: 1 });
    expect(readFileSync(join(out, 'checkpoint', 'tokenizer.json'), 'utf8')).toBe(readFileSync(bpe, 'utf8'));
    const ev = await jsonOf('eval', out);
    expect(ev).toMatchObject({ task: 'mlm' });
    expect(ev.accuracy).toBeGreaterThanOrEqual(0);
    const filled = await jsonOf('generate', out, '--prompt', 'The jury<mask> that');
    expect(filled.masks).toBe(1);
    expect(String(filled.output)).toMatch(/^The jury.* that$/);
    expect(String(filled.output)).not.toContain('<mask>');
    const info = await strataRun(['info', '--checkpoint', out, '--backend', 'wasm']);
    expect(info.stdout).toMatch(/task mlm; tokenizer hf/);
    const resumed = await strataRun([
      'train',
      '--resume',
      out,
      '--steps',
      '4',
      '--json',
      '--backend',
      'wasm',
    ]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(config(out).tokenizer).toEqual(cfg.tokenizer);
    expect(
      readMetrics(join(out, 'metrics.jsonl'))
        .filter((m) => typeof m.valAccuracy === 'number')
        .map((m) => m.step),
    ).toEqual([0, 2, 4]);
  }, 300_000);

  it('span corruption: <pad>/<bos>/<eos> ids and the sentinels come from the tokenizer; eval and decoding use it', async () => {
    const out = join(dir, 'span');
    const r = await train('encoder-decoder', bpe, out, ['--task', 'span']);
    expect(r.code, r.stderr).toBe(0);
    const cfg = config(out);
    expect([cfg.model.vocabSize, cfg.model.padId, cfg.model.bosId, cfg.model.eosId]).toEqual([400, 0, 2, 3]);
    const ev = await jsonOf('eval', out);
    expect(ev).toMatchObject({ task: 'span' });
    expect(ev.exactMatch).toBeGreaterThanOrEqual(0);
    const decoded = await jsonOf(
      'generate',
      out,
      '--prompt',
      'The jury<extra_id_0> that',
      '--max-tokens',
      '4',
    );
    expect(decoded).toMatchObject({ source: 'The jury<extra_id_0> that' });
    // a tokenizer with too few sentinels for the sources' spans is refused before training
    const long = await train('encoder-decoder', bpe, join(dir, 'long'), ['--context', '128']);
    expect(long.code).toBe(1);
    expect(long.stderr.trim()).toMatch(/makes 6 spans but the hf tokenizer \(.*bpe\.json\) has 4 sentinels/);
  }, 300_000);

  it('refuses a tokenizer that lacks a role the task needs, naming the role, the tokenizer and the fix', async () => {
    const plain = join(dir, 'plain.json');
    const t = await strataRun([
      'tokenizer',
      'train',
      '--data',
      text,
      '--vocab-size',
      '300',
      '--special',
      '<eos>',
      '--out',
      plain,
    ]);
    expect(t.code, t.stderr).toBe(0);
    const mlm = await train('encoder-only', plain, join(dir, 'no'));
    expect(mlm.code).toBe(1);
    expect(mlm.stderr.trim().split('\n')).toHaveLength(1);
    expect(mlm.stderr).toMatch(
      /--task mlm needs the special token mask \(<mask>\), which the hf tokenizer \(.*plain\.json\) lacks; .*strata tokenizer train/,
    );
    const span = await train('encoder-decoder', plain, join(dir, 'no'));
    expect(span.stderr).toMatch(
      /--task span needs the special tokens pad, bos, sentinels \(<pad>, <bos>, <extra_id_0>/,
    );
    const bytes = await train('encoder-only', 'byte', join(dir, 'no'));
    expect(bytes.stderr).toMatch(/--task mlm needs special tokens, .*drop --tokenizer byte/);
    const pinned = await train('encoder-only', bpe, join(dir, 'no'), ['--model-opt', 'padId=256']);
    expect(pinned.stderr).toMatch(/model\.padId 256 is not the hf tokenizer's pad \(0\)/);
  }, 300_000);

  it('compare passes --tokenizer to encoder arms', async () => {
    const out = join(dir, 'grid');
    const r = await strataRun([
      'compare',
      '--arch',
      'encoder-only',
      '--tokenizer',
      bpe,
      '--data',
      text,
      '--norms',
      'pre-ln',
      '--lrs',
      '2e-3',
      '--seeds',
      '1',
      '--extend-grid',
      '0',
      ...TINY_MODEL,
      '--steps',
      '2',
      '--eval-every',
      '2',
      '--out',
      out,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const cfg = config(runDirOf(out, 'pre-ln', 2e-3, 1));
    expect([cfg.model.vocabSize, cfg.model.padId, cfg.tokenizer.kind]).toEqual([400, 0, 'hf']);
  }, 300_000);
});

describe('encoder tasks with GPT-2’s tokenizer', () => {
  it('appends <pad> and <bos> for source → target pairs; the checkpoint keeps them for eval and decoding', async () => {
    const pairs = join(dir, 'pairs.tsv');
    writeFileSync(pairs, 'the cat\tle chat\na dog\tun chien\nthe house\tla maison\nmy friend\tmon ami\n');
    const out = join(dir, 'gpt2-pairs');
    const r = await train('encoder-decoder', 'gpt2', out, [], pairs);
    expect(r.code, r.stderr).toBe(0);
    const cfg = config(out);
    expect([cfg.model.vocabSize, cfg.model.padId, cfg.model.bosId, cfg.model.eosId]).toEqual([
      50259, 50257, 50258, 50256,
    ]);
    expect(cfg.tokenizer).toMatchObject({ kind: 'gpt2', vocabSize: 50259, added: ['<pad>', '<bos>'] });
    const ev = await jsonOf('eval', out);
    expect(ev).toMatchObject({ task: 'pairs' });
    expect(await jsonOf('generate', out, '--prompt', 'the cat', '--max-tokens', '3')).toMatchObject({
      beam: 1,
    });
    const info = await strataRun(['info', '--checkpoint', out, '--backend', 'wasm']);
    expect(info.stdout).toMatch(/tokenizer gpt2: 50259 ids .*; added <pad> <bos>/);
  }, 300_000);
});

describe('the tokenizer of a task (taskTokenizerFor)', () => {
  it('appends to GPT-2 only what each task lacks, and leaves a tokenizer that has everything as it is', async () => {
    // each tokenizer is built synchronously (about a second): let the worker answer vitest in between
    const breathe = () => new Promise((r) => setImmediate(r));
    const gpt2 = gpt2Tokenizer();
    await breathe();
    const mlm = taskTokenizerFor(gpt2, 'mlm');
    await breathe();
    expect([mlm.vocabSize, mlm.specials?.mask, mlm.toJSON().added]).toEqual([50258, 50257, ['<mask>']]);
    expect(taskModelIds(mlm, 'encoder-only')).toEqual({ padId: null });
    const span = taskTokenizerFor(gpt2, 'span');
    await breathe();
    expect(span.vocabSize).toBe(50257 + 2 + GPT2_SENTINELS);
    expect(span.specials?.sentinels).toEqual(Array.from({ length: 100 }, (_, k) => 50259 + k));
    expect(taskModelIds(span, 'encoder-decoder')).toEqual({ padId: 50257, bosId: 50258, eosId: 50256 });
    expect(taskTokenizerFor(gpt2, 'pos').toJSON().added).toEqual(['<pad>', '<bos>']);
    await breathe();
    expect(gpt2.vocabSize).toBe(50257); // the shared GPT-2 tokenizer is not changed
    const own = loadTokenizerFile(bpe);
    for (const kind of ['mlm', 'span', 'pairs', 'pos'] as const)
      expect(taskTokenizerFor(own, kind)).toBe(own);
  });
});
