import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  acquireDirLock,
  ByteTokenizer,
  dirEntriesExceptLock,
  type LanguageModel,
  loadCheckpoint,
  StrataError,
  saveCheckpoint,
  TextDataset,
} from '@strata/core';
import {
  type DepthSpec,
  type GrowOptions,
  type GrowthReport,
  type GrowthSpec,
  growModel,
  LR_SCALE_PREFIX,
  makeProbe,
  optimizerTensors,
} from '@strata/growth';
import { type ParsedArgs, UsageError } from '../args.js';
import { type DataSpec, dataRecord, loadData, locateData, resolveCheckpointDir } from '../run-training.js';
import { setupRuntime } from '../setup.js';

export { growSpec } from '../specs.js';

function num(args: ParsedArgs, k: string): number | undefined {
  return args[k] === undefined ? undefined : Number(args[k]);
}

/** Builds the {@link GrowthSpec} from the flags. */
export function growthSpecFromArgs(args: ParsedArgs): GrowthSpec {
  const insertAt =
    args['insert-at'] !== undefined
      ? String(args['insert-at'])
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '')
          .map((s) => {
            const n = Number(s);
            if (!Number.isInteger(n)) throw new UsageError(`--insert-at must list block indices, got "${s}"`);
            return n;
          })
      : undefined;
  const given = [args.depth, args.layers, insertAt].filter((x) => x !== undefined).length;
  if (given > 1) throw new UsageError('give one of --depth, --layers, --insert-at');
  const placement = (args.placement as DepthSpec['placement']) ?? 'interleave';
  let depth: GrowthSpec['depth'];
  if (insertAt) depth = { insertAt };
  else if (args.layers !== undefined) depth = { layers: Number(args.layers), placement };
  else if (args.depth !== undefined) depth = { factor: Number(args.depth), placement };
  const spec: Record<string, unknown> = {
    width: num(args, 'width'),
    heads: num(args, 'heads'),
    headDim: num(args, 'head-dim'),
    ffn: num(args, 'ffn'),
    depth,
    noise: num(args, 'noise') ?? 0,
    seed: num(args, 'seed') ?? 0,
    allowApprox: args['allow-approx'] === true,
    map: (args.map as GrowthSpec['map']) ?? 'auto',
    nonInteger: (args['non-integer'] as GrowthSpec['nonInteger']) ?? 'auto',
  };
  for (const k of Object.keys(spec)) if (spec[k] === undefined) delete spec[k];
  return spec as GrowthSpec;
}

/** The probe batch: sequences of the checkpoint's validation split, or random tokens when there is no data. */
async function probeBatch(
  model: LanguageModel,
  training: { data?: DataSpec; valFraction?: number; seed?: number },
  batch: number,
  seed: number,
  checkpointDir: string,
): Promise<{ ids: number[][]; what: string }> {
  const T = Math.min(model.config.contextLength, 64);
  try {
    const tokenizer = new ByteTokenizer();
    const spec = locateData(training.data ?? { kind: 'brown' }, checkpointDir, '');
    const ds = new TextDataset(await loadData(spec), tokenizer, {
      valFraction: training.valFraction ?? 0.1,
      seed: training.seed ?? 1,
    });
    const b = ds.valBatches(batch, T, 1)[0];
    if (b && model.config.vocabSize >= 256) {
      const ids = Array.from({ length: batch }, (_, r) => Array.from(b.x.subarray(r * T, (r + 1) * T)));
      return { ids, what: `${batch}×${T} tokens of the validation split` };
    }
  } catch {
    // no data available: random tokens
  }
  return {
    ids: makeProbe(model.config.vocabSize, T, batch, seed + 1),
    what: `${batch}×${T} random tokens (the training data was not available)`,
  };
}

function fmt(x: number): string {
  return x === 0 ? '0' : x.toExponential(2);
}

function summaryLines(report: GrowthReport, probe: string, toleranceAbs: number): string[] {
  const d0 = report.from;
  const d1 = report.to;
  const lines = [
    `grew ${report.family}${report.strategy ? `/${report.strategy}` : ''}: d_model ${d0.dModel}→${d1.dModel}, heads ${d0.nHeads}→${d1.nHeads} (head dim ${d0.headDim}→${d1.headDim}), d_ff ${d0.dFF}→${d1.dFF}, layers ${d0.nLayers}→${d1.nLayers}; parameters ${report.parameters.before.toLocaleString('en-US')} → ${report.parameters.after.toLocaleString('en-US')}`,
  ];
  for (const t of report.transforms) {
    lines.push(
      `  ${t.name.padEnd(6)} ${t.exactness.padEnd(6)} max |Δlogits| ${fmt(t.maxAbsDeltaLogits).padEnd(9)} ${t.description}`,
    );
    for (const r of t.reasons) lines.push(`           not exact: ${r}`);
    for (const n of t.notes) lines.push(`           ${n}`);
  }
  lines.push(
    `max |Δlogits| ${fmt(report.maxAbsDeltaLogits)} (max |logit| ${report.maxAbsLogit.toFixed(3)}; tolerance ${fmt(toleranceAbs)}) on ${probe}`,
    `probe loss    ${report.lossBefore.toFixed(6)} before → ${report.lossAfter.toFixed(6)} after`,
  );
  if (report.optimizer) {
    const o = report.optimizer;
    lines.push(
      `optimizer     step ${o.step} kept; Adam moments grown as m/(n·s), v/(n·s)²; ${o.freshEntries.toLocaleString('en-US')} new entries start at zero (first update ≈ ${o.freshFirstUpdate.toFixed(2)}× lr)`,
    );
    if (o.lrScaleMin !== 1 || o.lrScaleMax !== 1) {
      lines.push(
        `              per-entry LR multipliers ${o.lrScaleMin.toPrecision(3)}…${o.lrScaleMax.toPrecision(3)} saved as ${LR_SCALE_PREFIX}* (see the Growth guide, "Optimizer state"); they return to 1 over the re-warm of \`strata train --resume\` (--lr-scale)`,
      );
    }
  } else lines.push('optimizer     none in the checkpoint (the grown model can be trained, not resumed)');
  return lines;
}

/**
 * The training record of a checkpoint copied to another folder: a data path relative to the old checkpoint
 * is re-expressed relative to the new one (the absolute path is kept).
 */
function rebaseTrainingRecord(
  training: Record<string, unknown>,
  from: string,
  to: string,
): Record<string, unknown> {
  const data = training.data as DataSpec | undefined;
  if (data?.kind !== 'files') return training;
  try {
    return { ...training, data: dataRecord(locateData(data, from, ''), to) };
  } catch {
    return training; // the data is gone: keep the record as it was
  }
}

/** `strata grow`: grow a checkpoint and write the grown one. */
export async function run(args: ParsedArgs): Promise<number> {
  const backend = await setupRuntime(args);
  const json = Boolean(args.json);
  if (!args.out) throw new UsageError('--out DIR is required (the run directory of the grown model)');
  const out = String(args.out);
  const spec = growthSpecFromArgs(args);
  const lock = acquireDirLock(out, { label: `--out ${out}` });
  try {
    if (dirEntriesExceptLock(out).length > 0 && !args.force) {
      throw new StrataError(
        'E_IO',
        `--out ${out} already exists and is not empty; pass --force to overwrite it`,
      );
    }
    return await growInto(args, out, spec, backend.name, json);
  } finally {
    lock.release();
  }
}

/** Grows the checkpoint named by `--checkpoint` into the (locked) folder `out`. */
async function growInto(
  args: ParsedArgs,
  out: string,
  spec: GrowthSpec,
  backendName: string,
  json: boolean,
): Promise<number> {
  const { checkpointDir, runDir } = await resolveCheckpointDir(String(args.checkpoint ?? ''));
  const loaded = await loadCheckpoint(checkpointDir, { optimizer: true });
  const small = loaded.model;
  let big: LanguageModel | undefined;
  try {
    const training = (loaded.config.training ?? {}) as {
      data?: DataSpec;
      valFraction?: number;
      seed?: number;
      beta1?: number;
      beta2?: number;
    };
    const probe = await probeBatch(
      small,
      training,
      Number(args['probe-batch'] ?? 4),
      spec.seed ?? 0,
      checkpointDir,
    );
    const options: GrowOptions = {
      ...(loaded.optimizer ? { optimizer: loaded.optimizer } : {}),
      probe: probe.ids,
      adam: { beta1: training.beta1 ?? 0.9, beta2: training.beta2 ?? 0.95 },
      deepnormAlpha: (args['deepnorm-alpha'] as 'keep' | 'absorb') ?? 'keep',
      depthInit: (args['depth-init'] as 'copy' | 'random') ?? 'copy',
      newMoments: (args['new-moments'] as 'zero' | 'seed-v') ?? 'zero',
    };
    const res = await growModel(small, spec, options);
    big = res.model;
    const report = res.report;
    const tolAbs =
      args.tolerance !== undefined ? Number(args.tolerance) : report.tolerance * report.maxAbsLogit;
    const within = report.maxAbsDeltaLogits <= tolAbs;
    const lines = summaryLines(report, probe.what, tolAbs);
    if (!json) process.stdout.write(`${lines.join('\n')}\n`);
    if (args.verify && !within) {
      if (json) process.stdout.write(`${JSON.stringify({ event: 'grow', ok: false, report })}\n`);
      throw new StrataError(
        'E_GROWTH',
        `--verify: max |Δlogits| ${fmt(report.maxAbsDeltaLogits)} exceeds the tolerance ${fmt(tolAbs)}; nothing was written`,
      );
    }
    // --force: clear the folder (keeping the lock this process holds on it).
    for (const name of dirEntriesExceptLock(out)) rmSync(join(out, name), { recursive: true, force: true });
    const checkpoint = join(out, 'checkpoint');
    const growth = {
      from: checkpointDir,
      // the step the grown model starts from: `strata train --resume` starts a new schedule phase here
      step: loaded.state?.step ?? 0,
      spec,
      maxAbsDeltaLogits: report.maxAbsDeltaLogits,
      exactness: report.exactness,
      lossBefore: report.lossBefore,
      lossAfter: report.lossAfter,
    };
    await saveCheckpoint(checkpoint, big, {
      tokenizer: loaded.config.tokenizer,
      ...(loaded.tokenizer.files ? { tokenizerFiles: loaded.tokenizer.files() } : {}),
      ...(loaded.config.training
        ? { training: rebaseTrainingRecord(loaded.config.training, checkpointDir, checkpoint) }
        : {}),
      ...(res.optimizer
        ? { optimizer: { step: res.optimizer.step, tensors: optimizerTensors(res.optimizer) } }
        : {}),
      ...(loaded.state
        ? {
            state: {
              ...loaded.state,
              grownFrom: checkpointDir,
              growth,
              backend: backendName,
              savedAt: new Date().toISOString(),
            },
          }
        : {}),
    });
    writeFileSync(join(out, 'growth.json'), `${JSON.stringify({ ...growth, report }, null, 2)}\n`);
    // Carry the small run's metrics over, so the loss curve of the continued run starts where it left off.
    const metrics = runDir ? join(runDir, 'metrics.jsonl') : undefined;
    if (metrics && existsSync(metrics)) {
      const record = { event: 'growth', ...growth };
      writeFileSync(
        join(out, 'metrics.jsonl'),
        `${readFileSync(metrics, 'utf8').replace(/\n?$/, '\n')}${JSON.stringify(record)}\n`,
      );
    }
    if (json) {
      process.stdout.write(`${JSON.stringify({ event: 'grow', ok: within, checkpoint, report })}\n`);
    } else {
      process.stdout.write(
        `checkpoint:   ${checkpoint}\nreport:       ${join(out, 'growth.json')}\n` +
          (loaded.optimizer && loaded.state
            ? `continue:     strata train --resume ${out} --steps N   (N > ${loaded.state.step}; a new phase: re-warm + cosine to N)\n`
            : ''),
      );
    }
    return 0;
  } finally {
    small.dispose();
    big?.dispose();
  }
}
