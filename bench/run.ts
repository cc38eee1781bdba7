/**
 * Runs `strata bench` with every option, including those the CLI spec may not declare yet
 * (`--suite`, `--workers`, `--baseline`, `--recompute`, `--generate`, `--pytorch`).
 *
 *   npx tsx --tsconfig packages/cli/tsconfig.json bench/run.ts --backends wasm --suite reference,deep100 \
 *     --workers 1,2 --baseline --pytorch --out bench/results.json
 */
import { parseArgs } from 'node:util';
import { run } from '../packages/cli/src/commands/bench.js';

const { values } = parseArgs({
  options: {
    backends: { type: 'string' },
    suite: { type: 'string' },
    workers: { type: 'string' },
    steps: { type: 'string' },
    'cpu-steps': { type: 'string' },
    'd-model': { type: 'string' },
    layers: { type: 'string' },
    heads: { type: 'string' },
    context: { type: 'string' },
    'batch-size': { type: 'string' },
    norm: { type: 'string' },
    recompute: { type: 'string' },
    generate: { type: 'string' },
    baseline: { type: 'boolean' },
    pytorch: { type: 'boolean' },
    out: { type: 'string' },
    json: { type: 'boolean' },
  },
});
const num = (k: string) =>
  values[k as keyof typeof values] === undefined ? undefined : Number(values[k as keyof typeof values]);
const code = await run({
  backends: values.backends ?? 'wasm',
  suite: values.suite,
  workers: values.workers,
  steps: num('steps'),
  'cpu-steps': num('cpu-steps'),
  'd-model': num('d-model'),
  layers: num('layers'),
  heads: num('heads'),
  context: num('context'),
  'batch-size': num('batch-size'),
  norm: values.norm,
  recompute: values.recompute,
  generate: num('generate'),
  baseline: values.baseline,
  pytorch: values.pytorch,
  out: values.out,
  json: values.json,
});
process.exit(code);
