#!/usr/bin/env node
// Soak test: one long training run stopped again and again (SIGKILL, SIGTERM, SIGHUP, a closed stdout pipe) at
// random moments and resumed each time, checked against the same run left alone: every logged loss and the
// final weights must be identical, every stop must leave a loadable checkpoint, and a stale lock must never
// block the next resume. Prints a JSON summary (the reliability guide quotes it).
//   npm run build && node bench/soak.mjs [--steps 240] [--seed 7] [--out bench/results-soak.json]
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { steps: { type: 'string' }, seed: { type: 'string' }, out: { type: 'string' } },
});
const STEPS = Number(values.steps ?? 240);
let seed = Number(values.seed ?? 7);
const rand = () => {
  // mulberry32: reproducible stop moments for a given --seed
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const BIN = join(import.meta.dirname, '..', 'packages', 'cli', 'dist', 'bin.js');
const tmp = mkdtempSync(join(tmpdir(), 'strata-soak-'));
const corpus = join(tmp, 'corpus.txt');
writeFileSync(corpus, 'a stitch in time saves nine; the early bird catches the worm. '.repeat(400));
const env = { ...process.env, CI: 'true' };
const TINY = ['--d-model', '32', '--layers', '2', '--heads', '2', '--context', '16', '--batch-size', '4'];
const RUN = [
  ...TINY,
  ...['--eval-batches', '2', '--backend', 'wasm', '--data', corpus, '--steps', String(STEPS)],
  ...['--eval-every', '40', '--checkpoint-every', '7', '--dropout', '0.1'],
];
const cli = (args) => spawnSync(process.execPath, [BIN, ...args], { env, encoding: 'utf8' });
const metrics = (run) => {
  let text = '';
  try {
    text = readFileSync(join(run, 'metrics.jsonl'), 'utf8');
  } catch {
    return []; // stopped before its first step
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
};
const savedStep = (run) => {
  try {
    return JSON.parse(readFileSync(join(run, 'checkpoint', 'state.json'), 'utf8')).step;
  } catch {
    return 0;
  }
};

const t0 = performance.now();
const full = join(tmp, 'full');
const r0 = cli(['train', '--out', full, ...RUN]);
if (r0.status !== 0) throw new Error(`uninterrupted run failed: ${r0.stderr}`);
const fullSeconds = (performance.now() - t0) / 1000;

/** Runs `args` and stops it with `how` after `afterMs`; resolves with the exit code or signal. */
function stopAfter(args, how, afterMs) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', () => undefined);
    child.stderr.on('data', () => undefined);
    const timer = setTimeout(() => {
      if (how === 'PIPE') child.stdout.destroy();
      else child.kill(`SIG${how}`);
    }, afterMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

const run = join(tmp, 'soaked');
const stops = { KILL: 0, TERM: 0, HUP: 0, PIPE: 0 };
const codes = {};
let starts = 0;
let recomputed = 0;
let unloadable = 0;
let lockRefusals = 0;
const t1 = performance.now();
for (let attempt = 0; attempt < 200; attempt++) {
  const before = savedStep(run);
  const args = before > 0 ? ['train', '--resume', run] : ['train', '--out', run, '--force', ...RUN];
  const how = ['KILL', 'KILL', 'TERM', 'HUP', 'PIPE'][Math.floor(rand() * 5)];
  const res = await stopAfter(args, how, 1500 + rand() * 3000);
  starts++;
  const key = res.signal ?? String(res.code);
  codes[key] = (codes[key] ?? 0) + 1;
  if (res.code === 0) break;
  if (res.code === 1) {
    lockRefusals++;
    break;
  }
  stops[how]++;
  const after = savedStep(run);
  const logged = Math.max(0, ...metrics(run).map((m) => m.step ?? 0));
  recomputed += Math.max(0, logged - after);
  if (after > 0 && cli(['info', '--checkpoint', run]).status !== 0) unloadable++;
}
const soakSeconds = (performance.now() - t1) / 1000;
const a = metrics(full).filter((m) => typeof m.loss === 'number');
const b = metrics(run).filter((m) => typeof m.loss === 'number');
const sameLosses = a.length === b.length && a.every((m, i) => m.step === b[i].step && m.loss === b[i].loss);
const weights = (dir) => readFileSync(join(dir, 'checkpoint', 'model.safetensors'));
const sameWeights = weights(full).equals(weights(run));
const summary = {
  steps: STEPS,
  starts,
  stops,
  exitCodes: codes,
  stepsRecomputedAfterStops: recomputed,
  unloadableCheckpoints: unloadable,
  lockRefusals,
  sameLossesAtEveryStep: sameLosses,
  identicalFinalWeights: sameWeights,
  uninterruptedSeconds: Math.round(fullSeconds),
  soakSeconds: Math.round(soakSeconds),
  node: process.version,
};
console.log(JSON.stringify(summary, null, 2));
if (values.out) writeFileSync(values.out, `${JSON.stringify(summary, null, 2)}\n`);
rmSync(tmp, { recursive: true, force: true });
process.exitCode = sameLosses && sameWeights && unloadable === 0 && lockRefusals === 0 ? 0 : 1;
