/**
 * `strata export` / `strata import` / `strata train --init-from` end to end: a full-size GPT-2 vocabulary
 * (50,257) model in the Hugging Face layout with random weights, imported, evaluated, sampled and fine-tuned;
 * a fine-tuning run resumed; exports verified and refused.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeSafetensors, gpt2TokenizerJSON, Rng, type SafetensorsTensor } from '@strata/core';
import { describe, expect, it } from 'vitest';
import { jsonLines, strataRun, TINY_MODEL } from './helpers.js';

const V = 50257;
const d = 32;
const L = 2;
const T = 64;

/** A Hugging Face GPT-2 directory (save_pretrained layout) with random weights and resid_pdrop 0.1. */
function writeHFGPT2(dir: string): void {
  const rng = Rng.derive(7, 'hf-gpt2-50257');
  const t = (shape: number[], std = 0.05, mean = 0): SafetensorsTensor => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = mean + std * rng.normal();
    return { dtype: 'F32', shape, data };
  };
  const w = new Map<string, SafetensorsTensor>();
  w.set('transformer.wte.weight', t([V, d]));
  w.set('transformer.wpe.weight', t([T, d], 0.01));
  for (let i = 0; i < L; i++) {
    const h = `transformer.h.${i}`;
    w.set(`${h}.ln_1.weight`, t([d], 0.1, 1));
    w.set(`${h}.ln_1.bias`, t([d], 0.1));
    w.set(`${h}.attn.c_attn.weight`, t([d, 3 * d], 0.2));
    w.set(`${h}.attn.c_attn.bias`, t([3 * d], 0.1));
    w.set(`${h}.attn.c_proj.weight`, t([d, d], 0.2));
    w.set(`${h}.attn.c_proj.bias`, t([d], 0.1));
    w.set(`${h}.ln_2.weight`, t([d], 0.1, 1));
    w.set(`${h}.ln_2.bias`, t([d], 0.1));
    w.set(`${h}.mlp.c_fc.weight`, t([d, 4 * d], 0.2));
    w.set(`${h}.mlp.c_fc.bias`, t([4 * d], 0.1));
    w.set(`${h}.mlp.c_proj.weight`, t([4 * d, d], 0.2));
    w.set(`${h}.mlp.c_proj.bias`, t([d], 0.1));
  }
  w.set('transformer.ln_f.weight', t([d], 0.1, 1));
  w.set('transformer.ln_f.bias', t([d], 0.1));
  writeFileSync(join(dir, 'model.safetensors'), encodeSafetensors(w, { format: 'pt' }));
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({
      model_type: 'gpt2',
      architectures: ['GPT2LMHeadModel'],
      vocab_size: V,
      n_positions: T,
      n_embd: d,
      n_layer: L,
      n_head: 2,
      n_inner: null,
      activation_function: 'gelu_new',
      layer_norm_epsilon: 1e-5,
      resid_pdrop: 0.1,
      embd_pdrop: 0.1,
      attn_pdrop: 0.1,
      tie_word_embeddings: true,
    }),
  );
}

describe('strata import / export / train --init-from', () => {
  it('a 50,257-token GPT-2 in the HF layout: imported (dropout 0), evaluated, sampled, fine-tuned, resumed, exported back', async () => {
    const root = mkdtempSync(join(tmpdir(), 'strata-xport-'));
    const hf = join(root, 'hf');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(hf);
    writeHFGPT2(hf);
    writeFileSync(join(hf, 'tokenizer.json'), gpt2TokenizerJSON()); // GPT-2's BPE (50,257 ids)
    const data = join(root, 'data.txt');
    writeFileSync(data, 'The jury said it did find that the election was conducted. '.repeat(80));

    const imp = await strataRun([
      'import',
      '--format',
      'hf-gpt2',
      '--from',
      hf,
      '--out',
      join(root, 'imp'),
      '--json',
    ]);
    expect(imp.code, imp.stderr).toBe(0);
    const rep = jsonLines(imp.stdout).find((r) => r.event === 'import')!;
    expect(rep.ok).toBe(true);
    expect(rep.dropout).toBe(0); // resid_pdrop 0.1 is not training dropout
    expect(rep.tokenizer).not.toBe('byte'); // the source's tokenizer.json travels with the checkpoint
    expect(rep.maxAbsDeltaWeights).toBe(0);
    expect(rep.maxAbsDeltaLogits).toBe(0);
    expect(rep.parameters).toBe(V * d + T * d + L * (12 * d * d + 13 * d) + 2 * d);

    const ev = await strataRun([
      'eval',
      '--checkpoint',
      join(root, 'imp'),
      '--data',
      data,
      '--batches',
      '2',
      '--batch-size',
      '2',
    ]);
    expect(ev.code, ev.stderr).toBe(0);
    const loss = Number(/loss:\s+([\d.]+)/.exec(ev.stdout)?.[1]);
    expect(loss).toBeGreaterThan(0);
    expect(loss).toBeLessThan(2 * Math.log(V)); // a random model over 50,257 tokens: about ln V

    const gen = await strataRun([
      'generate',
      '--checkpoint',
      join(root, 'imp'),
      '--prompt',
      'The jury',
      '--max-tokens',
      '8',
      '--seed',
      '3',
    ]);
    expect(gen.code, gen.stderr).toBe(0);
    // sampled with GPT-2's BPE: 8 subword tokens of a random model decode to more than 8 bytes of text
    expect(gen.stdout.startsWith('The jury')).toBe(true);
    expect(gen.stdout.length).toBeGreaterThan('The jury'.length + 8);

    const ft = join(root, 'ft');
    const train = await strataRun([
      'train',
      '--init-from',
      join(root, 'imp'),
      '--data',
      data,
      '--lr',
      '1e-3',
      '--warmup',
      '0',
      '--steps',
      '2',
      '--batch-size',
      '2',
      '--seq-len',
      '16',
      '--eval-batches',
      '1',
      '--backend',
      'wasm',
      '--out',
      ft,
      '--json',
    ]);
    expect(train.code, train.stderr).toBe(0);
    const metrics = readFileSync(join(ft, 'metrics.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    const init = metrics.find((r) => r.event === 'init');
    expect(init).toMatchObject({ origin: 'imported', keptOptimizer: false, family: 'gpt' });
    expect(String(init.source)).toContain('hf-gpt2');
    // step 0 evaluates the imported weights (not a fresh init): the same loss as `strata eval` on this data split
    const cfg = JSON.parse(readFileSync(join(ft, 'checkpoint', 'config.json'), 'utf8'));
    expect(cfg.training.initFrom.checkpoint).toContain('imp');
    expect(cfg.training.lr).toBe(1e-3);
    expect(cfg.model.vocabSize).toBe(V);

    const res = await strataRun(['train', '--resume', ft, '--steps', '3', '--json']);
    expect(res.code, res.stderr).toBe(0);
    const after = JSON.parse(readFileSync(join(ft, 'checkpoint', 'config.json'), 'utf8'));
    expect(after.training.initFrom).toEqual(cfg.training.initFrom);
    expect(JSON.parse(readFileSync(join(ft, 'checkpoint', 'state.json'), 'utf8')).step).toBe(3);

    const info = await strataRun(['info', '--checkpoint', ft]);
    expect(info.stdout).toMatch(/init from\s+imported checkpoint .*from hf-gpt2/);

    const exp = await strataRun([
      'export',
      '--checkpoint',
      ft,
      '--format',
      'hf-gpt2',
      '--out',
      join(root, 'back'),
      '--json',
    ]);
    expect(exp.code, exp.stderr).toBe(0);
    expect(jsonLines(exp.stdout).find((r) => r.event === 'export')).toMatchObject({
      ok: true,
      maxAbsDeltaLogits: 0,
    });
    // the GPT-2 tokenizer.json went through the import, the fine-tuning run and the export unchanged
    expect(readFileSync(join(root, 'back', 'tokenizer.json'), 'utf8')).toBe(gpt2TokenizerJSON());
  }, 600_000);

  it('--init-from refuses architecture flags, keeps the optimizer on request, and export refuses a misfit', async () => {
    const root = mkdtempSync(join(tmpdir(), 'strata-xport-'));
    const base = join(root, 'base');
    const a = await strataRun([
      'train',
      ...TINY_MODEL,
      '--data',
      'markov:32',
      '--model-opt',
      'vocabSize=32',
      '--steps',
      '2',
      '--out',
      base,
      '--json',
    ]);
    expect(a.code, a.stderr).toBe(0);
    const bad = await strataRun([
      'train',
      '--init-from',
      base,
      '--layers',
      '4',
      '--d-model',
      '64',
      '--out',
      join(root, 'x'),
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('drop --d-model, --layers');
    const kept = await strataRun([
      'train',
      '--init-from',
      base,
      '--keep-optimizer',
      '--data',
      'markov:32',
      '--steps',
      '1',
      '--batch-size',
      '4',
      '--eval-batches',
      '1',
      '--dropout',
      '0.1',
      '--backend',
      'wasm',
      '--out',
      join(root, 'k'),
      '--json',
    ]);
    expect(kept.code, kept.stderr).toBe(0);
    const cfg = JSON.parse(readFileSync(join(root, 'k', 'checkpoint', 'config.json'), 'utf8'));
    expect(cfg.training.initFrom).toMatchObject({
      keptOptimizer: true,
      origin: 'trained',
      step: 2,
      overrides: { dropout: 0.1 },
    });
    expect(cfg.model.dropout).toBe(0.1);
    // the kept Adam step continues from the checkpoint's (2) rather than restarting at 0
    expect(JSON.parse(readFileSync(join(root, 'k', 'checkpoint', 'state.json'), 'utf8')).optimizerStep).toBe(
      3,
    );
    // a grown checkpoint: the fine-tuning run records its origin
    const grow = await strataRun([
      'grow',
      '--checkpoint',
      base,
      '--width',
      '2',
      '--out',
      join(root, 'grown'),
    ]);
    expect(grow.code, grow.stderr).toBe(0);
    const fg = await strataRun([
      'train',
      '--init-from',
      join(root, 'grown'),
      '--data',
      'markov:32',
      '--steps',
      '1',
      '--batch-size',
      '4',
      '--eval-batches',
      '1',
      '--backend',
      'wasm',
      '--out',
      join(root, 'fg'),
      '--json',
    ]);
    expect(fg.code, fg.stderr).toBe(0);
    const fgCfg = JSON.parse(readFileSync(join(root, 'fg', 'checkpoint', 'config.json'), 'utf8'));
    expect(fgCfg.training.initFrom).toMatchObject({ origin: 'grown', keptOptimizer: false, step: 2 });
    expect(fgCfg.model.dModel).toBe(64);
    const refused = await strataRun([
      'export',
      '--checkpoint',
      base,
      '--format',
      'hf-llama',
      '--out',
      join(root, 'l'),
    ]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /not Llama-shaped.*activation is "gelu".*normKind is "layernorm".*bias is true/,
    );
  }, 600_000);
});
