import {
  loadCheckpoint,
  lrScaleLifetime,
  type OptimizerState,
  parseTrainConfig,
  type TrainConfig,
} from '@strata/core';
import type { ParsedArgs } from '../args.js';
import { growthStep } from '../phase.js';
import { formatDuration } from '../progress.js';
import { describeSchedule, resolveCheckpointDir } from '../run-training.js';
import { setupRuntime } from '../setup.js';

/** `strata info`: architecture, parameter counts per component, backend and training state. */
export async function run(args: ParsedArgs): Promise<number> {
  const backend = await setupRuntime(args);
  const { checkpointDir } = await resolveCheckpointDir(String(args.checkpoint ?? ''));
  const { model, config, state, optimizer } = await loadCheckpoint(checkpointDir, { optimizer: true });
  const phase = phaseInfo((config.training ?? {}) as Record<string, unknown>, optimizer, growthStep(state));
  try {
    const components = model.components();
    const total = model.params.count();
    const scales = (await model.scaleSummary?.()) ?? null;
    // The schedule the run used: the saved training config with today's defaults for fields it predates.
    let schedule: TrainConfig | undefined;
    if (config.training) {
      const {
        data: _data,
        task: _task,
        initFrom: _init,
        ...saved
      } = config.training as Record<string, unknown>;
      try {
        schedule = parseTrainConfig(saved);
      } catch {
        schedule = undefined;
      }
    }
    if (args.json) {
      process.stdout.write(
        `${JSON.stringify({ checkpoint: checkpointDir, family: model.family, config: model.config, components, parameters: total, backend: backend.name, state: state ?? null, training: config.training ?? null, phase, schedule: schedule ?? null, scales })}\n`,
      );
      return 0;
    }
    const lines: string[] = [
      `checkpoint  ${checkpointDir}`,
      `format      ${config.format} v${config.formatVersion}, family ${config.family} v${config.familyVersion}`,
      '',
    ];
    lines.push(...model.summary());
    const tk = config.tokenizer as { kind?: unknown; vocabSize?: unknown; source?: unknown; added?: unknown };
    const added = Array.isArray(tk.added) ? tk.added.map(String) : [];
    if (tk.kind !== 'byte' && tk.kind !== 'byte-special')
      lines.push(
        `tokenizer ${String(tk.kind)}: ${String(tk.vocabSize ?? '?')} ids (tokenizer.json${typeof tk.source === 'string' ? `, from ${tk.source}` : ''})` +
          (added.length
            ? `; added ${added.length > 4 ? `${added.slice(0, 3).join(' ')} … ${added[added.length - 1]} (${added.length})` : added.join(' ')}`
            : ''),
      );
    lines.push('', 'parameters per component:');
    const w = Math.max(...components.map((c) => c.component.length));
    for (const c of components)
      lines.push(
        `  ${c.component.padEnd(w)}  ${c.params.toLocaleString('en-US').padStart(12)}  ${((100 * c.params) / total).toFixed(1).padStart(5)}%`,
      );
    lines.push(`  ${'total'.padEnd(w)}  ${total.toLocaleString('en-US').padStart(12)}`);
    lines.push(
      '',
      `backend     ${backend.name} (${backend.pkg}, tfjs ${backend.tfjsVersion})${backend.device ? `; device ${backend.device}` : ''}`,
    );
    if (state) {
      const tr = (config.training ?? {}) as {
        steps?: number;
        batchSize?: number;
        seqLen?: number;
        data?: { kind: string; path?: string };
        task?: { kind: string; path?: string };
      };
      lines.push(
        `training    step ${state.step}${tr.steps ? `/${tr.steps}` : ''}, ${formatDuration(state.trainSeconds ?? 0)} of training` +
          (state.lastValLoss !== undefined
            ? `, last validation loss ${Number(state.lastValLoss).toFixed(4)}`
            : ''),
      );
      if (tr.batchSize)
        lines.push(
          `            batch ${tr.batchSize} × ${tr.seqLen} tokens; data ${tr.task?.kind === 'pairs' ? tr.task.path : tr.task?.kind === 'pos' ? 'Brown POS tags' : tr.data?.kind === 'files' ? tr.data.path : 'Brown corpus'}; saved on ${String(state.backend ?? '?')} at ${String(state.savedAt ?? '?')}`,
        );
      lines.push(`schedule    ${phase.description}`);
      if (phase.lrScale) lines.push(`lr scale    ${phase.lrScale.description}`);
      if (tr.task)
        lines.push(
          `            task ${tr.task.kind}${tr.task.path ? ` (${tr.task.path})` : ''}; tokenizer ${String(config.tokenizer.kind)}`,
        );
    } else lines.push('training    (no run state: weights only)');
    const init = (config.training as { initFrom?: Record<string, unknown> } | undefined)?.initFrom;
    if (init)
      lines.push(
        `init from   ${String(init.origin)} checkpoint ${String(init.checkpoint)}${typeof init.step === 'number' ? ` (step ${init.step})` : ''}${init.source ? ` from ${String(init.source)}` : ''}; ${init.keptOptimizer ? 'Adam moments kept' : 'fresh optimizer state'}`,
      );
    const imported = (state as { importedFrom?: Record<string, unknown> } | undefined)?.importedFrom;
    if (imported)
      lines.push(
        `imported    from ${String(imported.format)} ${String(imported.path)} (max |Δweights| ${String(imported.maxAbsDeltaWeights)} through the layout)`,
      );
    if (schedule) lines.push(`schedule    ${describeSchedule(schedule)}`);
    if (scales) {
      const f = (x: number) => x.toFixed(4).padStart(9);
      lines.push('', 'scaling values (effective; mean, min, max over all layers):');
      const kw = Math.max(...Object.keys(scales).map((k) => k.length));
      for (const [k, v] of Object.entries(scales))
        lines.push(
          `  ${k.padEnd(kw)}  mean ${f(v.mean)}  min ${f(v.min)}  max ${f(v.max)}  (${v.count} values)`,
        );
    }
    process.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  } finally {
    model.dispose();
  }
}

/** The schedule phase and growth's per-entry learning-rate multipliers of a checkpoint, for `strata info`. */
export function phaseInfo(
  training: Readonly<Record<string, unknown>>,
  optimizer: OptimizerState | undefined,
  grownAt?: number,
): {
  phaseStart: number;
  description: string;
  lrScale?: { tensors: number; min: number; max: number; lifetime: number | 'keep'; description: string };
} {
  const phaseStart = typeof training.phaseStart === 'number' ? training.phaseStart : 0;
  const warmup = typeof training.warmupSteps === 'number' ? training.warmupSteps : 0;
  const steps = typeof training.steps === 'number' ? training.steps : undefined;
  const decay = training.decay === 'constant' ? 'constant' : 'cosine';
  const pending = grownAt !== undefined && phaseStart < grownAt;
  const description =
    `${phaseStart > 0 ? `phase from step ${phaseStart}: ` : ''}warmup ${warmup} steps, then ${decay}${steps !== undefined ? ` to step ${steps}` : ''}` +
    (pending ? `; grown at step ${grownAt}: --resume starts a new phase there (re-warm + cosine)` : '');
  let tensors = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const [name, t] of optimizer?.tensors ?? []) {
    if (!name.startsWith('lr_scale.')) continue;
    tensors++;
    for (const x of t.data) {
      min = Math.min(min, x);
      max = Math.max(max, x);
    }
  }
  if (!tensors) return { phaseStart, description };
  const raw = training.lrScaleSteps;
  const lifetime = lrScaleLifetime({
    lrScaleSteps: raw === 'keep' || typeof raw === 'number' ? raw : 'warmup',
    warmupSteps: warmup,
  });
  const when =
    lifetime === 'keep'
      ? 'kept for the whole run (--lr-scale keep)'
      : `return linearly to 1 over ${lifetime} steps after the phase start${raw === 'keep' || typeof raw === 'number' ? '' : ' (the re-warm; --lr-scale)'}, then dropped`;
  return {
    phaseStart,
    description,
    lrScale: {
      tensors,
      min,
      max,
      lifetime,
      description: `growth multipliers on ${tensors} tensors, ${min.toPrecision(3)}…${max.toPrecision(3)}; ${when}`,
    },
  };
}
