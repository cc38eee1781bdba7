import { join, resolve } from 'node:path';
import { loadCheckpoint, StrataError } from '@strata/core';
import { type ParsedArgs, UsageError } from '../args.js';
import {
  compareLogits,
  compareWeights,
  fmtDelta,
  interopFormat,
  lockOut,
  probeIds,
  removeFiles,
  writeTokenizerFiles,
} from '../interop.js';
import { resolveCheckpointDir } from '../run-training.js';
import { setupRuntime } from '../setup.js';

export { exportSpec } from '../specs.js';

/**
 * `strata export`: writes a checkpoint in another framework's layout, then reads the written files back with
 * the format's reader and compares weights and logits on a probe batch (exit 1, files removed, when they
 * differ by more than the tolerance).
 */
export async function run(args: ParsedArgs): Promise<number> {
  await setupRuntime(args);
  const format = interopFormat(args.format);
  if (!args.out) throw new UsageError('--out DIR is required (the folder to write the exported model to)');
  const out = String(args.out);
  const { checkpointDir } = await resolveCheckpointDir(String(args.checkpoint ?? ''));
  const lock = lockOut(out, args.force === true);
  const loaded = await loadCheckpoint(checkpointDir).catch((e) => {
    lock.release();
    throw e;
  });
  const model = loaded.model;
  try {
    await format.write(model, out);
    const tok = writeTokenizerFiles(loaded.tokenizer, out);
    const written = [
      join(out, 'model.safetensors'),
      join(out, 'config.json'),
      join(out, 'generation_config.json'),
      ...tok.files,
    ];
    // Verification: an independent reader of the written files (the format's importer) rebuilds the model.
    const back = await format.read(out, {});
    try {
      const ids = probeIds(model, Number(args['probe-batch'] ?? 4));
      const { maxAbsDelta, maxAbsLogit } = compareLogits(model, back, ids);
      const weights = await compareWeights(format, model, out);
      const tol = args.tolerance !== undefined ? Number(args.tolerance) : 1e-5 * Math.max(1, maxAbsLogit);
      const ok = maxAbsDelta <= tol;
      const report = {
        event: 'export',
        ok,
        format: format.name,
        checkpoint: resolve(checkpointDir),
        out: resolve(out),
        maxAbsDeltaLogits: maxAbsDelta,
        maxAbsLogit,
        tolerance: tol,
        maxAbsDeltaWeights: weights,
        probe: `${ids.length}×${ids[0]!.length} random tokens`,
        ...(tok.note ? { note: tok.note } : {}),
      };
      if (args.json) process.stdout.write(`${JSON.stringify(report)}\n`);
      else
        process.stdout.write(
          `exported ${model.family} → ${format.name}: ${out}\n` +
            `max |Δlogits| ${fmtDelta(maxAbsDelta)} (max |logit| ${maxAbsLogit.toFixed(3)}; tolerance ${fmtDelta(tol)}) on ${report.probe}, read back from the written files\n` +
            `max |Δweights| ${fmtDelta(weights)} over every tensor of the layout\n` +
            (tok.note ? `note: ${tok.note}\n` : ''),
        );
      if (!ok) {
        removeFiles(written);
        throw new StrataError(
          'E_CHECKPOINT',
          `export verification failed: max |Δlogits| ${fmtDelta(maxAbsDelta)} exceeds the tolerance ${fmtDelta(tol)}; the written files were removed`,
        );
      }
      return 0;
    } finally {
      back.dispose();
    }
  } finally {
    lock.release();
    model.dispose();
  }
}
