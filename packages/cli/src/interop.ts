/**
 * The formats of `strata export` and `strata import`, and the checks both run on the spot: logits of the two
 * sides on a probe batch (max |Δlogits|, as `strata grow` reports it) and the weights read back from the
 * written files (max |Δweights|).
 *
 * @module
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GPTConfig } from '@strata/core';
import {
  acquireDirLock,
  byteLevelAlphabet,
  dirEntriesExceptLock,
  exportHFGPT2,
  exportLayout,
  fromExternalTensors,
  hfGPT2Layout,
  hfLlamaFormat,
  importHFGPT2,
  importLayout,
  type LanguageModel,
  type LayoutFormat,
  readSafetensorsFile,
  StrataError,
  specialAddedToken,
  type TensorMapping,
  type Tokenizer,
  torchscaleFormat,
} from '@strata/core';
import { makeProbe } from '@strata/growth';
import { nvidiaNGPTFormat } from '@strata/ngpt';
import * as tf from '@tensorflow/tfjs-core';

/** A format of `strata export` / `strata import`. */
export interface InteropFormat {
  /** Name on the command line. */
  name: string;
  /** What it is, for help and reports. */
  description: string;
  /** Writes the model into `dir` (weights and config files). */
  write(model: LanguageModel, dir: string): Promise<void>;
  /** Reads a directory of this format into a Strata model (dropout 0 unless given). */
  read(dir: string, options: { dropout?: number }): Promise<LanguageModel>;
  /** Tensor layout of a model of this format (for the weight check). */
  layout(model: LanguageModel): TensorMapping[];
}

function fromLayout(format: LayoutFormat, description: string): InteropFormat {
  return {
    name: format.name,
    description,
    write: async (model, dir) => {
      await exportLayout(format, model, dir);
    },
    read: (dir, options) => importLayout(format, dir, options),
    layout: (model) => format.layout(model.family, model.config),
  };
}

/** The formats, by name. */
export const INTEROP_FORMATS: Readonly<Record<string, InteropFormat>> = {
  'hf-gpt2': {
    name: 'hf-gpt2',
    description: 'Hugging Face GPT2LMHeadModel (config.json + model.safetensors)',
    write: async (model, dir) => {
      await exportHFGPT2(model, dir);
    },
    read: (dir, options) => importHFGPT2(dir, { dropout: options.dropout ?? 0 }),
    layout: (model) =>
      hfGPT2Layout(model.config as GPTConfig).map((s) => ({
        name: s.hfName,
        shape: s.hfShape,
        strata: s.strataName,
        strataShape: s.strataShape,
        ...(s.transposed ? { transpose: true } : {}),
      })),
  },
  'hf-llama': fromLayout(
    hfLlamaFormat,
    'Hugging Face LlamaForCausalLM (config.json, generation_config.json, model.safetensors)',
  ),
  torchscale: fromLayout(
    torchscaleFormat,
    'torchscale Decoder/Encoder state dict (model.safetensors) + DecoderConfig/EncoderConfig kwargs (config.json)',
  ),
  ngpt: fromLayout(
    nvidiaNGPTFormat,
    'NVIDIA nGPT model.py state dict (model.safetensors) + GPTConfig (config.json)',
  ),
};

/** The format named by `--format`, or a usage error listing them. */
export function interopFormat(name: unknown): InteropFormat {
  const f = INTEROP_FORMATS[String(name)];
  if (!f)
    throw new StrataError(
      'E_USAGE',
      `--format ${String(name)}: unknown format; formats: ${Object.keys(INTEROP_FORMATS).join(', ')}`,
    );
  return f;
}

/**
 * A probe batch of random tokens (`batch` × min(context, 32); an encoder-decoder: the source plus up to 16
 * decoder tokens), the same for both sides of a check.
 */
export function probeIds(model: LanguageModel, batch: number, seed = 1): number[][] {
  const c = model.config as { contextLength: number; sourceLength?: number; targetLength?: number };
  // an encoder-decoder row packs the whole source and 1..targetLength decoder tokens
  const T =
    c.sourceLength !== undefined
      ? c.sourceLength + Math.min(c.targetLength ?? 1, 16)
      : Math.min(c.contextLength, 32);
  return makeProbe(model.config.vocabSize as number, T, batch, seed);
}

/** max |a − b| and max |a| of two models' logits on `ids`. */
export function compareLogits(
  a: LanguageModel,
  b: LanguageModel,
  ids: number[][],
): { maxAbsDelta: number; maxAbsLogit: number } {
  return tf.tidy(() => {
    const x = tf.tensor2d(ids, [ids.length, ids[0]!.length], 'int32');
    const la = a.forward(x);
    const lb = b.forward(x);
    const delta = tf.max(tf.abs(tf.sub(la, lb))).dataSync()[0]!;
    const scale = tf.max(tf.abs(la)).dataSync()[0]!;
    return { maxAbsDelta: delta, maxAbsLogit: scale };
  });
}

/**
 * max |Δ| between the model's weights and the ones the format's layout reads back from the files in `dir`
 * (every tensor of the layout, including the ones written with a scale).
 */
export async function compareWeights(
  format: InteropFormat,
  model: LanguageModel,
  dir: string,
): Promise<number> {
  const st = await readSafetensorsFile(join(dir, 'model.safetensors'));
  const tensors = new Map(st.tensors);
  // hf-gpt2 files from the hub may lack the `transformer.` prefix
  const layout = format
    .layout(model)
    .map((r) =>
      tensors.has(r.name) || !r.name.startsWith('transformer.') || format.name !== 'hf-gpt2'
        ? r
        : { ...r, name: r.name.slice('transformer.'.length) },
    );
  const { values } = fromExternalTensors(layout, tensors, dir);
  const own = await model.params.read();
  let max = 0;
  for (const [name, v] of values) {
    const w = own.get(name)!;
    for (let i = 0; i < v.length; i++) max = Math.max(max, Math.abs(v[i]! - w[i]!));
  }
  return max;
}

/**
 * A Hugging Face `tokenizer.json` that reproduces Strata's byte tokenizer: id = UTF-8 byte. A byte-level BPE
 * with the 256 byte symbols of GPT-2's alphabet as its vocabulary (id b for byte b) and no merges, so every
 * byte is its own token; the ByteLevel pre-tokenizer (no prefix space, no regex split) and decoder turn text
 * into those symbols and back. `specials` (e.g. `<pad>`, `<mask>`) are added tokens with ids 256, 257, ….
 */
export function byteTokenizerJSON(specials: readonly string[] = []): Record<string, unknown> {
  const alphabet = byteLevelAlphabet();
  const vocab: Record<string, number> = {};
  alphabet.forEach((ch, b) => {
    vocab[ch] = b;
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((content, i) => specialAddedToken(256 + i, content)),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
}

/**
 * Writes the tokenizer files of an export: the checkpoint tokenizer's own `tokenizer.json` (a GPT-2, Hugging
 * Face or trained BPE tokenizer), else for the byte tokenizers a `tokenizer.json` from
 * {@link byteTokenizerJSON}, plus `tokenizer_config.json`. Returns the files written and a note when none
 * could be.
 */
export function writeTokenizerFiles(tokenizer: Tokenizer, out: string): { files: string[]; note?: string } {
  const target = join(out, 'tokenizer.json');
  const own = tokenizer.files?.()['tokenizer.json'];
  const record = tokenizer.toJSON();
  if (own !== undefined) writeFileSync(target, own);
  else if (record.kind === 'byte' || record.kind === 'byte-special') {
    let specials: string[] = [];
    if (record.kind === 'byte-special') {
      const sentinels = Number(record.sentinels ?? 0);
      specials = [
        ...((record.specials as string[] | undefined) ?? []),
        ...Array.from({ length: sentinels }, (_, i) => `<extra_id_${i}>`),
      ];
    }
    writeFileSync(target, `${JSON.stringify(byteTokenizerJSON(specials), null, 2)}\n`);
  } else
    return {
      files: [],
      note: `no tokenizer files written: the checkpoint's tokenizer "${String(record.kind)}" has no tokenizer.json`,
    };
  const cfg = join(out, 'tokenizer_config.json');
  writeFileSync(
    cfg,
    `${JSON.stringify({ tokenizer_class: 'PreTrainedTokenizerFast', clean_up_tokenization_spaces: false, model_max_length: 1_000_000_000 }, null, 2)}\n`,
  );
  return { files: [target, cfg] };
}

/** Locks `--out` (one process per folder) and refuses a non-empty one unless `force`. */
export function lockOut(out: string, force: boolean): ReturnType<typeof acquireDirLock> {
  const lock = acquireDirLock(out, { label: `--out ${out}` });
  if (dirEntriesExceptLock(out).length > 0 && !force) {
    lock.release();
    throw new StrataError(
      'E_IO',
      `--out ${out} already exists and is not empty; pass --force to overwrite it`,
    );
  }
  return lock;
}

/** Removes the files an export wrote (after a failed verification). */
export function removeFiles(files: readonly string[]): void {
  for (const f of files) rmSync(f, { force: true });
}

/** `0`, or `x` in exponent notation with 2 digits (as `strata grow` prints). */
export function fmtDelta(x: number): string {
  return x === 0 ? '0' : x.toExponential(2);
}
