import {
  ByteSpecialTokenizer,
  beamSearchSeq2Seq,
  describeTokenizer,
  EncoderDecoder,
  generate,
  type LanguageModel,
  loadCheckpoint,
  StrataError,
  type Tokenizer,
} from '@strata/core';
import * as tf from '@tensorflow/tfjs-core';
import type { ParsedArgs } from '../args.js';
import { UsageError } from '../args.js';
import { checkTokenizerFitsModel, type DataSpec, resolveCheckpointDir } from '../run-training.js';
import { setupRuntime } from '../setup.js';

/**
 * `strata generate`: stream sampled text to stdout (decoder-only); decode the prompt as a source with greedy
 * or beam search (encoder-decoder); fill the `<mask>` tokens of the prompt (encoder-only).
 */
export async function run(args: ParsedArgs): Promise<number> {
  await setupRuntime(args);
  const { checkpointDir } = await resolveCheckpointDir(String(args.checkpoint ?? ''));
  const { model, tokenizer, config } = await loadCheckpoint(checkpointDir);
  try {
    if (model instanceof EncoderDecoder) return await decodeSeq2Seq(model, tokenizer, args);
    if (args.beam !== undefined)
      throw new UsageError(
        '--beam applies to encoder-decoder checkpoints; this one is decoder-only or encoder-only',
      );
    if (model.family === 'encoder') return await fillMasks(model, tokenizer, args);
    checkTokenizerFitsModel(
      tokenizer,
      model.config.vocabSize,
      (config.training as { data?: DataSpec } | undefined)?.data,
      'generate',
    );
    const prompt = String(args.prompt ?? '');
    const decoder = tokenizer.decoder();
    // On a terminal, control bytes a model samples would move the cursor or change colours: show them escaped.
    const show = process.stdout.isTTY ? escapeControls : (text: string) => text;
    if (!args.json) process.stdout.write(show(prompt));
    const ids = await generate(model, Array.from(tokenizer.encode(prompt)), {
      maxTokens: args['max-tokens'] as number,
      temperature: args.temperature as number,
      topK: args['top-k'] as number,
      seed: args.seed as number,
      ...(args.json ? {} : { onToken: (id: number) => process.stdout.write(show(decoder.push(id))) }),
    });
    if (args.json)
      process.stdout.write(
        `${JSON.stringify({ prompt, completion: tokenizer.decode(ids), tokens: ids.length })}\n`,
      );
    else process.stdout.write(`${show(decoder.flush())}\n`);
    return 0;
  } finally {
    model.dispose();
  }
}

/**
 * The ids of a prompt with the literal names of special tokens (`<mask>`, `<extra_id_0>`) read as those
 * tokens: the byte-special tokenizer's {@link ByteSpecialTokenizer.encodeWithSpecials}; a tokenizer.json reads
 * its special tokens' text this way anyway.
 */
function encodePrompt(tokenizer: Tokenizer, prompt: string): number[] {
  return Array.from(
    tokenizer instanceof ByteSpecialTokenizer
      ? tokenizer.encodeWithSpecials(prompt)
      : tokenizer.encode(prompt),
  );
}

/** Encoder-decoder: the prompt is the source (`<extra_id_N>` etc. read as special tokens). */
async function decodeSeq2Seq(model: EncoderDecoder, tok: Tokenizer, args: ParsedArgs): Promise<number> {
  checkTokenizerFitsModel(tok, model.config.vocabSize, undefined, 'generate');
  const prompt = String(args.prompt ?? '');
  const source = encodePrompt(tok, prompt);
  if (source.length > model.config.sourceLength)
    throw new StrataError(
      'E_USAGE',
      `--prompt has ${source.length} tokens, more than the model's sourceLength ${model.config.sourceLength}`,
    );
  const beam = (args.beam as number | undefined) ?? 1;
  const maxLength = Math.min(args['max-tokens'] as number, model.config.targetLength);
  const [best] = await beamSearchSeq2Seq(model, source, { beam, maxLength });
  const text = tok.decode(best?.tokens ?? []);
  if (args.json)
    process.stdout.write(
      `${JSON.stringify({ source: prompt, output: text, tokens: best?.tokens.length ?? 0, logProb: best?.score ?? null, finished: best?.finished ?? false, beam })}\n`,
    );
  else process.stdout.write(`${text}\n`);
  return 0;
}

/** Encoder-only: replace each `<mask>` of the prompt by the model's most likely token. */
async function fillMasks(model: LanguageModel, tokenizer: Tokenizer, args: ParsedArgs): Promise<number> {
  const maskId = tokenizer.specials?.mask;
  if (maskId === undefined)
    throw new StrataError(
      'E_CHECKPOINT',
      `an encoder-only checkpoint fills <mask> tokens, but ${describeTokenizer(tokenizer)} has no mask token`,
    );
  checkTokenizerFitsModel(tokenizer, model.config.vocabSize, undefined, 'generate');
  const prompt = String(args.prompt ?? '');
  const ids = encodePrompt(tokenizer, prompt);
  const masks = ids.flatMap((id, i) => (id === maskId ? [i] : []));
  if (masks.length === 0)
    throw new UsageError(
      `an encoder-only model fills mask tokens: put at least one ${tokenizer.specialName?.(maskId) ?? '<mask>'} in --prompt`,
    );
  if (ids.length > model.config.contextLength)
    throw new StrataError(
      'E_USAGE',
      `--prompt has ${ids.length} tokens, more than the model's contextLength ${model.config.contextLength}`,
    );
  const pred = tf.tidy(() =>
    tf.argMax(model.forward(tf.tensor2d([ids], [1, ids.length], 'int32')), 2).dataSync(),
  );
  const filled = ids.map((id, i) => (masks.includes(i) ? pred[i]! : id));
  const text = tokenizer.decode(filled);
  if (args.json) process.stdout.write(`${JSON.stringify({ prompt, output: text, masks: masks.length })}\n`);
  else process.stdout.write(`${text}\n`);
  return 0;
}

/**
 * Escapes the characters a terminal would act on instead of showing: C0 controls other than newline and tab,
 * DEL, and C1 controls become `\xNN` (`\x1b[2J` is printed, not executed).
 */
export function escapeControls(text: string): string {
  let out = '';
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    const control = (c < 0x20 && ch !== '\n' && ch !== '\t') || (c >= 0x7f && c <= 0x9f);
    out += control ? `\\x${c.toString(16).padStart(2, '0')}` : ch;
  }
  return out;
}
