import {
  AttentionEntropyStats,
  type Batch,
  detectFormat,
  evaluateLoss,
  evaluateTask,
  loadCheckpoint,
  loadTextSource,
  parseTrainConfig,
  StrataError,
  type Tokenizer,
  tokenizeSource,
} from '@strata/core';
import * as tf from '@tensorflow/tfjs-core';
import type { ParsedArgs } from '../args.js';
import {
  checkTokenizerFitsModel,
  type DataSpec,
  dataSpecFromArg,
  datasetFor,
  locateData,
  resolveCheckpointDir,
} from '../run-training.js';
import { setupRuntime } from '../setup.js';
import { type TaskSpec, taskSource } from '../tasks.js';

/** `strata eval`: loss and perplexity of a checkpoint on held-out or given data. */
export async function run(args: ParsedArgs): Promise<number> {
  const backend = await setupRuntime(args);
  const { checkpointDir } = await resolveCheckpointDir(String(args.checkpoint ?? ''));
  const context = args.context as number | undefined;
  const { model, config, state, tokenizer } = await loadCheckpoint(checkpointDir, {
    ...(context !== undefined ? { contextLength: context } : {}),
  });
  try {
    if (args['attention-entropy'] && !model.attentionEntropy)
      throw new StrataError(
        'E_CONFIG',
        `--attention-entropy needs GAU layers (model.block "gau"); the ${model.family} model family has none`,
      );
    const savedTask = (config.training as { task?: TaskSpec } | undefined)?.task;
    if (savedTask)
      return await evalTask(args, model, config, savedTask, checkpointDir, backend.name, tokenizer);
    const batchSize = args['batch-size'] as number;
    const maxBatches = args.batches as number;
    const seqLen = model.config.contextLength;
    let batches: Batch[];
    let what: string;
    if (args.data) {
      const recorded = (config.training as { data?: DataSpec } | undefined)?.data;
      checkTokenizerFitsModel(
        tokenizer,
        model.config.vocabSize,
        recorded,
        `eval --data ${String(args.data)}`,
      );
      const spec = dataSpecFromArg(args.data, 0, args);
      const tokens =
        spec.kind === 'files' && (tokenizer.kind !== 'byte' || (await detectFormat(spec.path)) !== 'text')
          ? (
              await tokenizeSource(
                {
                  path: spec.path,
                  ...(spec.textField !== undefined ? { textField: spec.textField } : {}),
                  ...(spec.textColumn !== undefined ? { textColumn: spec.textColumn } : {}),
                },
                tokenizer,
              )
            ).tokens
          : tokenizer.encode((await loadTextSource(String(args.data))).text);
      batches = sequentialBatches(tokens, batchSize, seqLen, maxBatches);
      what = String(args.data);
    } else {
      const { data: recorded = { kind: 'brown' }, ...saved } = (config.training ?? {}) as {
        data?: DataSpec;
      };
      const spec = locateData(
        recorded,
        checkpointDir,
        'pass --data PATH to evaluate on a text file or folder instead',
      );
      const training = parseTrainConfig(saved);
      const ds = await datasetFor(spec, training, tokenizer);
      batches = ds.valBatches(batchSize, seqLen, maxBatches);
      what = 'held-out validation split';
      const trained = state?.dataFingerprint;
      if (typeof trained === 'string' && trained !== ds.datasetFingerprint())
        process.stderr.write(
          `note: the data at ${spec.kind === 'files' ? spec.path : spec.kind} changed since training (fingerprint ${ds.datasetFingerprint()}, trained on ${trained}); its "held-out" split may overlap what the model was trained on\n`,
        );
    }
    if (batches.length === 0)
      throw new StrataError('E_DATA', `not enough text to form one batch of ${batchSize}×${seqLen} tokens`);
    if (args['attention-entropy'])
      return await attentionEntropy(args, model, batches, {
        checkpoint: checkpointDir,
        data: what,
        backend: backend.name,
      });
    const res = await evaluateLoss(model, batches, batchSize);
    const out = {
      checkpoint: checkpointDir,
      data: what,
      loss: res.loss,
      perplexity: res.perplexity,
      // bits per token; per byte only for the byte tokenizer, whose tokens are bytes
      ...(tokenizer.kind === 'byte'
        ? { bitsPerByte: res.loss / Math.LN2 }
        : { bitsPerToken: res.loss / Math.LN2 }),
      tokens: res.tokens,
      contextLength: seqLen,
      backend: backend.name,
    };
    if (args.json) process.stdout.write(`${JSON.stringify(out)}\n`);
    else {
      process.stdout.write(
        `data:        ${what} (${res.tokens} tokens)\n${context !== undefined ? `context:     ${seqLen} tokens per sequence\n` : ''}loss:        ${res.loss.toFixed(4)} nats/token\nperplexity:  ${res.perplexity.toFixed(3)}\n${tokenizer.kind === 'byte' ? 'bits/byte: ' : 'bits/token:'}  ${(res.loss / Math.LN2).toFixed(4)}\nbackend:     ${backend.name}\n`,
      );
    }
    return 0;
  } finally {
    model.dispose();
  }
}

/** Task metrics of an encoder-only or encoder-decoder checkpoint (masked-LM; seq2seq). */
async function evalTask(
  args: ParsedArgs,
  model: Awaited<ReturnType<typeof loadCheckpoint>>['model'],
  config: Awaited<ReturnType<typeof loadCheckpoint>>['config'],
  saved: TaskSpec,
  checkpointDir: string,
  backendName: string,
  tokenizer: Tokenizer,
): Promise<number> {
  const batchSize = args['batch-size'] as number;
  const maxBatches = args.batches as number;
  const {
    data: savedData = { kind: 'brown' },
    task: _t,
    ...rest
  } = (config.training ?? {}) as {
    data?: DataSpec;
    task?: TaskSpec;
  };
  const training = parseTrainConfig(rest);
  let task = saved;
  let data: DataSpec = savedData;
  let what = 'held-out validation split';
  if (args.data) {
    const path = String(args.data);
    if (saved.kind === 'pairs' || saved.kind === 'pos') task = { kind: 'pairs', path };
    else data = { kind: 'files', path };
    what = path;
  }
  // --data is evaluated almost whole: all of it but one example (or one chunk of text) is held out.
  const source = await taskSource(
    task,
    data,
    model.config,
    { valFraction: args.data ? 0.999 : training.valFraction, seed: training.seed },
    tokenizer,
  );
  const batches = source.valBatches(batchSize, model.config.contextLength, maxBatches);
  if (batches.length === 0)
    throw new StrataError('E_DATA', `${what}: not enough data to form one batch of ${batchSize}`);
  if (args['attention-entropy'])
    return await attentionEntropy(args, model, batches, {
      checkpoint: checkpointDir,
      data: what,
      backend: backendName,
    });
  const m = await evaluateTask(model, batches, batchSize);
  const out = {
    checkpoint: checkpointDir,
    data: what,
    task: task.kind,
    loss: m.loss,
    perplexity: Math.exp(m.loss),
    accuracy: m.accuracy,
    ...(m.exactMatch !== undefined ? { exactMatch: m.exactMatch, examples: m.examples } : {}),
    tokens: m.tokens,
    contextLength: model.config.contextLength,
    backend: backendName,
  };
  if (args.json) process.stdout.write(`${JSON.stringify(out)}\n`);
  else {
    const scored = task.kind === 'mlm' ? 'masked tokens' : 'target tokens';
    process.stdout.write(
      `data:        ${what} (${m.tokens} ${scored})\ntask:        ${task.kind}\nloss:        ${m.loss.toFixed(4)} nats/token\naccuracy:    ${(100 * m.accuracy).toFixed(2)} % of ${scored}\n` +
        (m.exactMatch !== undefined
          ? `exact match: ${(100 * m.exactMatch).toFixed(2)} % of ${m.examples} examples (greedy decoding)\n`
          : '') +
        `backend:     ${backendName}\n`,
    );
  }
  return 0;
}

/**
 * `strata eval --attention-entropy`: each GAU layer's mean attention entropy over `batches` in buckets of the
 * number of visible keys n, next to `ln n` (uniform attention) and the slope of H on ln n; one JSON object
 * with `--json`, else a table.
 */
async function attentionEntropy(
  args: ParsedArgs,
  model: Awaited<ReturnType<typeof loadCheckpoint>>['model'],
  batches: readonly Batch[],
  meta: { checkpoint: string; data: string; backend: string },
): Promise<number> {
  const batchSize = args['batch-size'] as number;
  const stats = new AttentionEntropyStats();
  for (const b of batches) {
    const ids = tf.tensor2d(b.x, [batchSize, b.x.length / batchSize], 'int32');
    try {
      stats.add(await model.attentionEntropy!(ids));
    } finally {
      ids.dispose();
    }
  }
  const r = stats.report();
  const c = model.config as { attentionNorm?: string; softmaxPlusBase?: number };
  const norm = c.attentionNorm ?? 'softmax';
  const out = {
    checkpoint: meta.checkpoint,
    data: meta.data,
    contextLength: model.config.contextLength,
    attentionNorm: norm,
    ...(norm === 'softmax_plus' ? { softmaxPlusBase: c.softmaxPlusBase } : {}),
    batches: batches.length,
    ...r,
    backend: meta.backend,
  };
  // NaN (a layer with no distribution in a bucket: relu2's all-zero rows) becomes null in the JSON.
  if (args.json) {
    process.stdout.write(`${JSON.stringify(out)}\n`);
    return 0;
  }
  const f = (x: number) => (Number.isNaN(x) ? 'n/a' : x.toFixed(3)).padStart(8);
  const layerCols = Array.from({ length: r.layers }, (_, l) => `layer ${l}`.padStart(8)).join(' ');
  const lines = [
    `attention entropy (nats) of ${r.layers} GAU layer${r.layers === 1 ? '' : 's'}, ${norm}${norm === 'softmax_plus' ? ` (base ${c.softmaxPlusBase})` : ''}, context ${model.config.contextLength}: ${r.rows} query rows of ${meta.data} (${batches.length} batches)`,
    `${'keys n'.padEnd(12)}${'rows'.padStart(8)} ${'ln n'.padStart(8)} ${'mean H'.padStart(8)} ${layerCols}`,
    ...r.buckets.map(
      (b) =>
        `${(b.nMin === b.nMax ? `${b.nMin}` : `${b.nMin}–${b.nMax}`).padEnd(12)}${String(b.rows).padStart(8)} ${f(b.meanLogN)} ${f(b.meanEntropy)} ${b.layers.map(f).join(' ')}`,
    ),
    `${'slope dH/d ln n'.padEnd(20)} ${f(1)} ${f(r.slope.mean)} ${r.slope.layers.map(f).join(' ')}`,
  ];
  const empty = r.buckets.reduce((a, b) => a + b.emptyRows.reduce((x, y) => x + y, 0), 0);
  if (empty > 0)
    lines.push(`(${empty} layer-rows with all-zero relu2 weights have no distribution and are left out)`);
  lines.push(`backend: ${meta.backend}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

/** Non-overlapping windows over all of `tokens`, grouped into full batches (`y` is `x` shifted by one). */
export function sequentialBatches(
  tokens: ArrayLike<number>,
  batchSize: number,
  seqLen: number,
  maxBatches: number,
): Batch[] {
  const out: Batch[] = [];
  let pos = 0;
  while (out.length < maxBatches) {
    if (pos + batchSize * seqLen + 1 > tokens.length) break;
    const x = new Int32Array(batchSize * seqLen);
    const y = new Int32Array(batchSize * seqLen);
    for (let b = 0; b < batchSize; b++) {
      for (let t = 0; t < seqLen; t++) {
        x[b * seqLen + t] = tokens[pos + t]!;
        y[b * seqLen + t] = tokens[pos + t + 1]!;
      }
      pos += seqLen;
    }
    out.push({ x, y });
  }
  return out;
}
