import { existsSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  ByteSpecialTokenizer,
  ByteTokenizer,
  dirEntriesExceptLock,
  loadCheckpoint,
  loadTokenizerFile,
  StrataError,
  saveCheckpoint,
  type Tokenizer,
} from '@strata/core';
import { type ParsedArgs, UsageError } from '../args.js';
import { compareLogits, compareWeights, fmtDelta, interopFormat, lockOut, probeIds } from '../interop.js';
import { setupRuntime } from '../setup.js';

export { importSpec } from '../specs.js';

/**
 * `strata import`: reads a model in another framework's layout into a Strata checkpoint (`--out DIR2/checkpoint`),
 * then checks that the weights the layout reads from the source files are the checkpoint's (max |Δweights|)
 * and that the checkpoint, loaded from disk, computes the imported model's logits (max |Δlogits|).
 */
export async function run(args: ParsedArgs): Promise<number> {
  const backend = await setupRuntime(args);
  const format = interopFormat(args.format);
  if (!args.from)
    throw new UsageError('--from DIR is required (the folder with config.json and model.safetensors)');
  if (!args.out)
    throw new UsageError('--out DIR is required (the run directory to write the Strata checkpoint to)');
  const from = String(args.from);
  const out = String(args.out);
  if (!existsSync(from)) throw new StrataError('E_CHECKPOINT', `--from ${from}: no such directory`);
  const model = await format.read(from, args.dropout !== undefined ? { dropout: Number(args.dropout) } : {});
  let lock: ReturnType<typeof lockOut>;
  try {
    lock = lockOut(out, args.force === true);
  } catch (e) {
    model.dispose();
    throw e;
  }
  try {
    for (const name of dirEntriesExceptLock(out)) rmSync(join(out, name), { recursive: true, force: true });
    const weights = await compareWeights(format, model, from);
    const checkpoint = join(out, 'checkpoint');
    const vocab = model.config.vocabSize as number;
    // the source's tokenizer.json when it has one (checked against the vocabulary), else the byte tokenizers
    const hfTokenizer = join(from, 'tokenizer.json');
    const tokenizer: Tokenizer = existsSync(hfTokenizer)
      ? loadTokenizerFile(hfTokenizer)
      : (model.family === 'encoder' || model.family === 'encdec') && vocab > 256
        ? new ByteSpecialTokenizer(Math.max(0, vocab - 260))
        : new ByteTokenizer();
    if (tokenizer.vocabSize > vocab)
      throw new StrataError(
        'E_CONFIG',
        `${existsSync(hfTokenizer) ? hfTokenizer : `the ${tokenizer.kind} tokenizer`} has ${tokenizer.vocabSize} ids but the model's vocabulary is ${vocab}`,
      );
    const importedFrom = {
      format: format.name,
      path: resolve(from),
      maxAbsDeltaWeights: weights,
      importedAt: new Date().toISOString(),
    };
    await saveCheckpoint(checkpoint, model, {
      tokenizer: tokenizer.toJSON(),
      ...(tokenizer.files ? { tokenizerFiles: tokenizer.files() } : {}),
      state: { step: 0, trainSeconds: 0, skippedSteps: 0, importedFrom, backend: backend.name },
    });
    const reloaded = (await loadCheckpoint(checkpoint)).model;
    try {
      const ids = probeIds(model, Number(args['probe-batch'] ?? 4));
      const { maxAbsDelta, maxAbsLogit } = compareLogits(model, reloaded, ids);
      const tol = args.tolerance !== undefined ? Number(args.tolerance) : 1e-5 * Math.max(1, maxAbsLogit);
      const wTol = 1e-6;
      const ok = maxAbsDelta <= tol && weights <= wTol * Math.max(1, maxAbsLogit);
      const report = {
        event: 'import',
        ok,
        format: format.name,
        from: resolve(from),
        checkpoint: resolve(checkpoint),
        family: model.family,
        parameters: model.params.count(),
        tokenizer: tokenizer.kind,
        dropout: model.config.dropout ?? 0,
        maxAbsDeltaLogits: maxAbsDelta,
        maxAbsLogit,
        tolerance: tol,
        maxAbsDeltaWeights: weights,
        probe: `${ids.length}×${ids[0]!.length} random tokens`,
      };
      if (args.json) process.stdout.write(`${JSON.stringify(report)}\n`);
      else
        process.stdout.write(
          `imported ${format.name} → ${model.family} (${model.params.count().toLocaleString('en-US')} parameters, dropout ${String(report.dropout)}): ${checkpoint}\n` +
            `max |Δweights| ${fmtDelta(weights)} between the source tensors and the checkpoint, through the layout\n` +
            `max |Δlogits| ${fmtDelta(maxAbsDelta)} (max |logit| ${maxAbsLogit.toFixed(3)}; tolerance ${fmtDelta(tol)}) on ${report.probe}, checkpoint reloaded from disk\n` +
            `next:         strata eval --checkpoint ${out}   |   strata train --init-from ${out} --data FILE --out DIR\n`,
        );
      if (!ok) {
        rmSync(checkpoint, { recursive: true, force: true });
        throw new StrataError(
          'E_CHECKPOINT',
          `import verification failed (max |Δlogits| ${fmtDelta(maxAbsDelta)}, max |Δweights| ${fmtDelta(weights)}); the checkpoint was removed`,
        );
      }
      return 0;
    } finally {
      reloaded.dispose();
    }
  } finally {
    lock.release();
    model.dispose();
  }
}
