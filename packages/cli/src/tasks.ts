/**
 * The CLI side of the encoder-only and encoder-decoder architectures: `--arch` → model family and config,
 * `--task` → the batch source, and task metrics for `eval` and the training log.
 */
import {
  type BatchSource,
  ByteSpecialTokenizer,
  brownPosPairs,
  type EncDecConfig,
  encodePairs,
  getModelPreset,
  HFTokenizer,
  loadPairsFile,
  MASKED_LM_ROLES,
  MaskedLMDataset,
  requireSpecials,
  SEQ2SEQ_ROLES,
  Seq2SeqDataset,
  SPAN_ROLES,
  SpanCorruptionDataset,
  type SpecialRole,
  StrataError,
  TextDataset,
  type Tokenizer,
  type TrainConfig,
  withAddedTokens,
} from '@strata/core';
import type { ParsedArgs } from './args.js';
import { UsageError } from './args.js';
import { type DataSpec, datasetFor, loadData } from './run-training.js';

/** The architectures `--arch` accepts. */
export const ARCHITECTURES = ['decoder-only', 'encoder-only', 'encoder-decoder'] as const;
/** One of {@link ARCHITECTURES}. */
export type Arch = (typeof ARCHITECTURES)[number];

/** The training tasks of the new architectures (`--task`). */
export const TASKS = ['mlm', 'span', 'pos', 'pairs'] as const;

/** What a run of the new architectures trains on; recorded in the checkpoint as `training.task`. */
export interface TaskSpec {
  kind: (typeof TASKS)[number];
  /** The pairs file (`pairs`). */
  path?: string;
  /** Brown sample files read for `pos` (default: all). */
  maxFiles?: number;
}

/** The built-in family of an architecture: decoder-only keeps `--model` (gpt, ngpt, …). */
export function familyForArch(args: ParsedArgs): { arch: Arch; family: string } {
  const preset = args.preset !== undefined ? getModelPreset(String(args.preset)) : undefined;
  if (preset && args.arch !== undefined && args.arch !== preset.architecture)
    throw new UsageError(
      `--preset ${preset.name} is ${preset.architecture}; drop --arch ${String(args.arch)} (or pick another preset)`,
    );
  const arch = (args.arch as Arch | undefined) ?? preset?.architecture ?? 'decoder-only';
  const model = String(args.model ?? 'gpt');
  if (preset && model !== 'gpt')
    throw new UsageError(`--preset ${preset.name} builds the ${preset.family} family; drop --model ${model}`);
  if (arch === 'decoder-only') return { arch, family: model };
  if (model !== 'gpt')
    throw new UsageError(`--model ${model} is a decoder-only family; drop --model to train --arch ${arch}`);
  return { arch, family: arch === 'encoder-only' ? 'encoder' : 'encdec' };
}

/**
 * Rewrites the GPT-shaped raw config of `modelConfigFromArgs` for an encoder-decoder: `--layers` sets both
 * stacks unless `--encoder-layers`/`--decoder-layers` say otherwise, `--context` sets both lengths unless
 * `--source-length`/`--target-length` do.
 */
export function archModelConfig(
  arch: Arch,
  args: ParsedArgs,
  raw: Record<string, unknown>,
): Record<string, unknown> {
  const out = { ...raw };
  for (const flag of ['encoder-layers', 'decoder-layers', 'source-length', 'target-length'])
    if (args[flag] !== undefined && arch !== 'encoder-decoder')
      throw new UsageError(`--${flag} applies to --arch encoder-decoder only`);
  if (arch !== 'encoder-decoder') return out;
  const layers = out.nLayers;
  const context = out.contextLength;
  delete out.nLayers;
  delete out.contextLength;
  const set = (key: string, ...values: unknown[]) => {
    const v = values.find((x) => x !== undefined);
    if (v !== undefined) out[key] = v;
  };
  set('nEncoderLayers', args['encoder-layers'], out.nEncoderLayers, layers);
  set('nDecoderLayers', args['decoder-layers'], out.nDecoderLayers, layers);
  set('sourceLength', args['source-length'], out.sourceLength, context);
  set('targetLength', args['target-length'], out.targetLength, context);
  return out;
}

/** The task of a new run: `--task`, else by architecture (`mlm`; `pairs` for a .tsv/.jsonl `--data`, else `span`). */
export function taskFromArgs(arch: Arch, args: ParsedArgs): TaskSpec | undefined {
  const given = args.task as TaskSpec['kind'] | undefined;
  if (arch === 'decoder-only') {
    if (given !== undefined)
      throw new UsageError(
        '--task applies to --arch encoder-only and encoder-decoder (a decoder-only model predicts the next token)',
      );
    return undefined;
  }
  const data = args.data === undefined ? undefined : String(args.data);
  const isPairs = data !== undefined && /\.(tsv|jsonl?)$/i.test(data);
  const kind = given ?? (arch === 'encoder-only' ? 'mlm' : isPairs ? 'pairs' : 'span');
  if (arch === 'encoder-only' && kind !== 'mlm')
    throw new UsageError(
      `--task ${kind} needs --arch encoder-decoder; an encoder-only model trains with --task mlm`,
    );
  if (arch === 'encoder-decoder' && kind === 'mlm')
    throw new UsageError(
      '--task mlm needs --arch encoder-only; an encoder-decoder trains with span, pos or pairs',
    );
  if (kind === 'pairs') {
    if (data === undefined)
      throw new UsageError('--task pairs needs --data FILE.tsv or FILE.jsonl (source/target pairs)');
    return { kind, path: data };
  }
  if (kind === 'pos' && data !== undefined)
    throw new UsageError('--task pos uses the tagged Brown corpus the project ships; drop --data');
  return { kind };
}

/** A batch source with the fingerprint `runTraining` checks on resume. */
export type TaskSource = BatchSource & { datasetFingerprint(): string };

function seq2seqShape(config: Record<string, unknown>): EncDecConfig {
  if (typeof config.sourceLength !== 'number')
    throw new StrataError('E_CONFIG', 'this task needs an encoder-decoder model (--arch encoder-decoder)');
  return config as EncDecConfig;
}

/** The tokenizer of the new architectures' tasks when no `--tokenizer` is given: bytes plus special tokens. */
export function taskTokenizer(): ByteSpecialTokenizer {
  return new ByteSpecialTokenizer();
}

/** The special-token roles a task needs (read off its dataset: masked-LM needs `<mask>` only). */
export function taskRoles(kind: TaskSpec['kind']): readonly SpecialRole[] {
  return kind === 'mlm' ? MASKED_LM_ROLES : kind === 'span' ? SPAN_ROLES : SEQ2SEQ_ROLES;
}

/** Sentinels appended to GPT-2's tokenizer for span corruption: T5's 100 (`<extra_id_0>` … `<extra_id_99>`). */
export const GPT2_SENTINELS = 100;

/**
 * The `--tokenizer` of a task run, checked for the special tokens the task needs ({@link taskRoles}).
 * GPT-2's tokenizer (only `<|endoftext|>`, which serves as `eos`) gets what it lacks appended after its
 * 50,257 ids, as Hugging Face's `add_special_tokens` does: `<mask>` (masked-LM); `<pad>`, `<bos>` (source →
 * target tasks) and T5's 100 sentinels (span). Any other tokenizer must have them already.
 *
 * @throws StrataError `E_CONFIG` naming the missing roles, the tokenizer and how to get them.
 */
export function taskTokenizerFor(tokenizer: Tokenizer, kind: TaskSpec['kind']): Tokenizer {
  const roles = taskRoles(kind);
  if (tokenizer.kind === 'byte')
    throw new UsageError(
      `--task ${kind} needs special tokens, which the byte tokenizer has none of; drop --tokenizer byte (the tasks' default is byte-special: the bytes plus <pad> <mask> <bos> <eos> and 16 sentinels)`,
    );
  let tok = tokenizer;
  if (tok.kind === 'gpt2' && tok instanceof HFTokenizer) {
    const sp = tok.specials;
    const add: string[] = [];
    if (roles.includes('pad') && sp.pad === undefined) add.push('<pad>');
    if (roles.includes('mask') && sp.mask === undefined) add.push('<mask>');
    if (roles.includes('bos') && (sp.bos === undefined || sp.bos === sp.eos)) add.push('<bos>');
    if (roles.includes('sentinels') && !sp.sentinels?.length)
      for (let k = 0; k < GPT2_SENTINELS; k++) add.push(`<extra_id_${k}>`);
    tok = withAddedTokens(tok, add);
  }
  requireSpecials(tok, roles, `--task ${kind}`);
  return tok;
}

/**
 * The model options that follow a task's tokenizer: the vocabulary, and the special ids an encoder
 * (`padId`, `null` when the tokenizer has no `<pad>`) or an encoder-decoder (`padId`, `bosId`, `eosId`) uses.
 */
export function taskModelIds(tokenizer: Tokenizer, arch: Arch): Record<string, number | null> {
  const sp = tokenizer.specials ?? {};
  if (arch === 'encoder-only') return { padId: sp.pad ?? null };
  if (arch === 'encoder-decoder')
    return { padId: sp.pad ?? null, bosId: sp.bos ?? null, eosId: sp.eos ?? null };
  return {};
}

/**
 * Builds the batch source of `task` on `data` for a model with `config`, with `tokenizer` (default: the
 * byte-special tokenizer). The byte-special tokenizer reads text as before; any other goes through
 * {@link datasetFor} (its token cache, JSON Lines and Parquet).
 */
export async function taskSource(
  task: TaskSpec,
  data: DataSpec,
  config: Record<string, unknown>,
  training: Pick<TrainConfig, 'valFraction' | 'seed'>,
  tokenizer: Tokenizer = taskTokenizer(),
): Promise<TaskSource> {
  const tok = tokenizer;
  const split = { valFraction: training.valFraction, seed: training.seed };
  const vocab = config.vocabSize as number;
  if (vocab < tok.vocabSize)
    throw new StrataError(
      'E_CONFIG',
      `model.vocabSize (${vocab}) is smaller than the ${tok.kind} tokenizer's ${tok.vocabSize} ids the ${task.kind} task uses`,
    );
  const text = async (): Promise<TextDataset> =>
    tok.kind === 'byte-special'
      ? new TextDataset(await loadData(data), tok, split)
      : ((await datasetFor(data, training, tok)) as TextDataset);
  switch (task.kind) {
    case 'mlm':
      return new MaskedLMDataset(await text(), tok, {
        seed: training.seed,
      });
    case 'span':
      return new SpanCorruptionDataset(await text(), tok, seq2seqShape(config), {
        seed: training.seed,
      });
    case 'pos': {
      const shape = seq2seqShape(config);
      const pairs = brownPosPairs(task.maxFiles !== undefined ? { maxFiles: task.maxFiles } : {});
      return new Seq2SeqDataset(
        encodePairs(pairs, tok, shape, { skipLong: true, what: 'Brown POS' }),
        shape,
        {
          ...split,
          description: 'Brown POS tags',
        },
      );
    }
    case 'pairs': {
      const shape = seq2seqShape(config);
      const path = task.path ?? '';
      return new Seq2SeqDataset(encodePairs(loadPairsFile(path), tok, shape, { what: path }), shape, {
        ...split,
        description: path,
      });
    }
  }
}

/** One line describing a task, for logs and `info`. */
export function describeTask(task: TaskSpec, dataText: string): string {
  switch (task.kind) {
    case 'mlm':
      return `masked-LM on ${dataText}`;
    case 'span':
      return `span corruption on ${dataText}`;
    case 'pos':
      return 'Brown sentence → POS tags';
    case 'pairs':
      return `pairs from ${task.path}`;
  }
}
