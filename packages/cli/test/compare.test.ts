import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  analyzeSweeps,
  bandOf,
  defaultLrGrid,
  extensionLr,
  flopsAt,
  jobArgs,
  markStalled,
  parseLrList,
  type RunSummary,
  resolveTarget,
  runDirOf,
  variantsFromArgs,
} from '../src/commands/compare.js';
import { growthArmOf } from '../src/commands/compare-growth.js';
import { informativeRange } from '../src/plots.js';
import { strataAsync, strataRun, TINY_MODEL } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'strata-compare-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const run = (
  variant: string,
  lr: number,
  seed: number,
  finalValLoss: number,
  status: RunSummary['status'] = 'ok',
): RunSummary => ({
  variant,
  lr,
  seed,
  status,
  steps: 100,
  initialValLoss: 3.45,
  finalValLoss: status === 'diverged' ? Number.NaN : finalValLoss,
  finalTrainLoss: finalValLoss,
  msPerStep: 10,
  trainSeconds: 1,
  tokensPerStep: 256,
  flopsPerToken: 1000,
  params: 100,
  dModel: 32,
  runDir: '',
});

describe('compare: variants and grids', () => {
  it('builds variants from --norms, --models and --variant (with its own --lrs)', () => {
    const v = variantsFromArgs({
      norms: 'post-ln,deepnorm',
      models: 'ngpt',
      variant: ['fast=--norm pre-ln --lr 3e-3 --layers 2', 'tuned=--norm pre-ln --lrs 4e-3,1e-3'],
    });
    expect(v.map((x) => x.label)).toEqual(['post-ln', 'deepnorm', 'ngpt', 'fast', 'tuned']);
    expect(v[3]!.args).toEqual({ norm: 'pre-ln', lr: 0.003, layers: 2 });
    expect(v[4]!.lrs).toEqual([1e-3, 4e-3]);
    expect(() => variantsFromArgs({})).toThrow(/at least one variant/);
    expect(() => variantsFromArgs({ norms: 'a,a' })).toThrow(/used twice/);
    expect(() => variantsFromArgs({ variant: ['x=--lr fast'] })).toThrow(/--lr must be a number/);
    expect(() => variantsFromArgs({ variant: ['a/b=--lr 1'] })).toThrow(/may only contain/);
  });

  it('parses learning-rate lists and rejects bad ones with the flag named', () => {
    expect(parseLrList('4e-3, 1e-3,2e-3')).toEqual([1e-3, 2e-3, 4e-3]);
    expect(() => parseLrList('1e-3,x')).toThrow(/--lrs must be a comma-separated list of positive numbers/);
    expect(() => parseLrList('1e-3,-1')).toThrow(/positive/);
    expect(() => parseLrList('1e-3,1e-3')).toThrow(/twice/);
    expect(defaultLrGrid(2e-3)).toEqual([5e-4, 1e-3, 2e-3, 4e-3]);
  });

  it("a run's flags are shared ⊕ variant ⊕ {lr, seed}, without compare's own flags", () => {
    const a = jobArgs(
      { layers: 4, lrs: '1,2', seeds: '1,2', out: 'x', jobs: 2, json: true, steps: 10 },
      { label: 'v', args: { norm: 'deepnorm', layers: 8 } },
      1e-3,
      2,
    );
    expect(a).toEqual({ layers: 8, steps: 10, norm: 'deepnorm', lr: 1e-3, seed: 2 });
    expect(runDirOf('o', 'v', 1e-3, 2)).toBe(join('o', 'runs', 'v', 'lr1.000e-3', 's2'));
  });
});

describe('compare: analysis', () => {
  it('picks each variant its own best rate by mean over seeds; a diverged seed disqualifies a rate', () => {
    const runs = [
      // a: 1e-3 → mean 1.0; 2e-3 → mean 0.8 but one seed diverged; 4e-3 → mean 0.9
      run('a', 1e-3, 1, 1.0),
      run('a', 1e-3, 2, 1.0),
      run('a', 2e-3, 1, 0.7),
      run('a', 2e-3, 2, 0, 'diverged'),
      run('a', 4e-3, 1, 0.85),
      run('a', 4e-3, 2, 0.95),
      // b: best at the low edge
      run('b', 1e-3, 1, 0.5),
      run('b', 1e-3, 2, 0.6),
      run('b', 2e-3, 1, 0.9),
      run('b', 2e-3, 2, 0.9),
    ];
    const [a, b] = analyzeSweeps(runs, { a: [1e-3, 2e-3, 4e-3], b: [1e-3, 2e-3] });
    expect(a!.bestLr).toBe(4e-3);
    expect(a!.bestAtEdge).toBe('high');
    expect(a!.cells.find((c) => c.lr === 2e-3)).toMatchObject({ runs: 2, diverged: 1, mean: 0.7 });
    expect(a!.cells.find((c) => c.lr === 4e-3)!.mean).toBeCloseTo(0.9, 12);
    expect(a!.trainingLrs).toEqual([1e-3, 4e-3]);
    expect(b!.bestLr).toBe(1e-3);
    expect(b!.bestAtEdge).toBe('low');
    // one grid step past the edge: ×2 spacing → 8e-3 above a, 5e-4 below b
    expect(extensionLr(a!)).toBeCloseTo(8e-3, 12);
    expect(extensionLr(b!)).toBeCloseTo(5e-4, 12);
    // an interior best needs no extension
    const inner = analyzeSweeps([run('c', 1, 1, 2), run('c', 2, 1, 1), run('c', 4, 1, 3)], {
      c: [1, 2, 4],
    })[0]!;
    expect(inner.bestAtEdge).toBeNull();
    expect(extensionLr(inner)).toBeNull();
  });

  it('marks runs stuck near chance as stalled and resolves --target-from at the best rate', () => {
    const runs = [
      run('post-ln', 1e-3, 1, 3.13),
      run('deepnorm', 1e-3, 1, 0.89),
      run('deepnorm', 2e-3, 1, 0.8),
    ];
    markStalled(runs, Math.log(32));
    expect(runs.map((r) => r.status)).toEqual(['stalled', 'ok', 'ok']);
    const sweeps = analyzeSweeps(runs, { 'post-ln': [1e-3], deepnorm: [1e-3, 2e-3] });
    expect(resolveTarget({ 'target-from': 'deepnorm' }, sweeps)).toBeCloseTo(0.8, 12);
    expect(resolveTarget({ 'target-loss': 1.5 }, sweeps)).toBe(1.5);
    expect(() => resolveTarget({ 'target-from': 'nope' }, sweeps)).toThrow(/no finished run/);
  });

  it('bands are the mean and min–max over runs at each step, with the runs counted', () => {
    const b = bandOf([
      [
        [0, 3],
        [10, 1],
      ],
      [
        [0, 5],
        [10, 2],
        [20, 1],
      ],
    ]);
    expect(b).toEqual([
      { x: 0, mean: 4, lo: 3, hi: 5, n: 2 },
      { x: 10, mean: 1.5, lo: 1, hi: 2, n: 2 },
      { x: 20, mean: 1, lo: 1, hi: 1, n: 1 },
    ]);
    // the y range skips the first 5 % of x so the initial loss does not squeeze the informative part
    const [lo, hi] = informativeRange([{ label: 'a', points: b }])!;
    expect(lo).toBeLessThan(1);
    expect(hi).toBeLessThan(2.2);
    expect(hi).toBeGreaterThan(1.5);
  });
});

describe('strata compare (end to end)', () => {
  const out = join(tmp, 'grid');
  const argv = [
    'compare',
    '--norms',
    'post-ln,deepnorm',
    '--lrs',
    '1e-5,3e-5',
    '--extend-grid',
    '1',
    '--seeds',
    '1,2',
    '--data',
    'markov:16',
    '--model-opt',
    'vocabSize=16',
    '--layers',
    '2',
    '--d-model',
    '16',
    '--heads',
    '2',
    '--context',
    '8',
    '--batch-size',
    '8',
    '--steps',
    '8',
    '--eval-every',
    '4',
    '--eval-batches',
    '2',
    '--diagnostics',
    '2',
    '--target-from',
    'deepnorm',
    '--backend',
    'wasm',
    '--out',
    out,
  ];

  it('trains variants × rates × seeds, extends a grid whose best rate is at its edge, and reports with bands', async () => {
    const r = await strataRun(argv);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as {
      variants: { variant: string; lrs: number[]; bestLr: number; bestAtEdge: string | null }[];
      runs: RunSummary[];
    };
    // 1e-5 and 3e-5 learn too slowly in 8 steps, so the best is the top rate: one step ×3 is added (9e-5)
    for (const v of summary.variants) expect(v.lrs).toEqual([1e-5, 3e-5, 9e-5]);
    expect(summary.runs).toHaveLength(2 * 3 * 2);
    expect(summary.runs.every((x) => Number.isFinite(x.finalValLoss) && x.flopsPerToken > 0)).toBe(true);
    const report = readFileSync(join(out, 'report.md'), 'utf8');
    expect(report).toMatch(/## Best learning rate per variant/);
    expect(report).toMatch(
      /\| post-ln \| 9\.00e-5 ⚠ at the high edge of the grid \| \d\.\d{4} ± \d\.\d{4} \[/,
    );
    expect(report).toMatch(/## Cost to reach validation loss/);
    expect(report).toMatch(/\| deepnorm \| \d\/2 \| /);
    for (const f of [
      'val-steps',
      'val-tokens',
      'val-flops',
      'val-time',
      'train-steps',
      'lr-sensitivity',
      'delta-f-best',
      'delta-f-shared',
      'grad-ratio-best',
      'ln-input-shared',
      'grad-blocks-step1-best',
    ])
      for (const ext of ['svg', 'csv', 'vl.json'])
        expect(existsSync(join(out, `${f}.${ext}`)), `${f}.${ext}`).toBe(true);
    const svg = readFileSync(join(out, 'val-steps.svg'), 'utf8');
    expect(svg).toContain('post-ln (lr 9.0e-5, n=2)');
    expect(readFileSync(join(out, 'lr-sensitivity.csv'), 'utf8').split('\n')[0]).toBe(
      'variant,x,mean,lo,hi,runs,diverged,stalled,label',
    );
  });

  it('resumes: finished runs are not redone, a missing one is trained, other flags are refused', async () => {
    const dirs = ['post-ln', 'deepnorm'].map((v) => runDirOf(out, v, 3e-5, 1));
    const before = dirs.map((d) => statSync(join(d, 'result.json')).mtimeMs);
    const lost = runDirOf(out, 'deepnorm', 1e-5, 2);
    rmSync(join(lost, 'result.json'));
    const r = await strataRun(argv);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/11 already finished/);
    expect(existsSync(join(lost, 'result.json'))).toBe(true);
    expect(dirs.map((d) => statSync(join(d, 'result.json')).mtimeMs)).toEqual(before);
    const changed = await strataRun(
      argv.map((a) => (a === '16' ? '24' : a)).map((a, i, arr) => (arr[i - 1] === '--d-model' ? '24' : a)),
    );
    expect(changed.code).toBe(1);
    expect(changed.stderr).toMatch(/trained with other flags .*--d-model: 16 → 24/);
  });

  it('refuses a non-empty folder that is not a comparison, and --replot redraws from the kept runs', async () => {
    writeFileSync(join(tmp, 'file.txt'), 'x');
    const r = await strataRun([...argv.slice(0, -1), tmp]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/holds no compare\.json; pass --force/);
    rmSync(join(out, 'val-steps.svg'));
    const re = await strataRun(['compare', '--replot', out, '--target-loss', '2.7']);
    expect(re.code, re.stderr).toBe(0);
    expect(existsSync(join(out, 'val-steps.svg'))).toBe(true);
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toMatch(/Cost to reach validation loss 2\.7000/);
    // without target flags, --replot keeps the comparison's own target (--target-from deepnorm)
    expect((await strataRun(['compare', '--replot', out])).code).toBe(0);
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toMatch(/the mean final loss of deepnorm/);
  });

  it('compares encoder-decoder models on a task the way `strata train` builds them (--arch, --task)', async () => {
    const dir = join(tmp, 'encdec');
    const r = await strataRun([
      'compare',
      '--arch',
      'encoder-decoder',
      '--task',
      'pos',
      '--norms',
      'pre-ln,deepnorm',
      '--lrs',
      '3e-3',
      '--seeds',
      '1',
      '--extend-grid',
      '0',
      '--d-model',
      '16',
      '--layers',
      '1',
      '--heads',
      '2',
      '--source-length',
      '24',
      '--target-length',
      '24',
      '--batch-size',
      '4',
      '--steps',
      '4',
      '--eval-every',
      '2',
      '--eval-batches',
      '1',
      '--backend',
      'wasm',
      '--out',
      dir,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const cfg = JSON.parse(
      readFileSync(join(runDirOf(dir, 'deepnorm', 3e-3, 1), 'checkpoint', 'config.json'), 'utf8'),
    ) as { family: string; model: { norm: { name: string } } };
    expect(cfg.family).toBe('encdec');
    expect(cfg.model.norm.name).toBe('deepnorm');
    expect(readFileSync(join(dir, 'report.md'), 'utf8')).toMatch(/\| deepnorm \| 3\.00e-3/);
  });

  it('locks its folder: a second comparison on it fails naming the holder, and SIGTERM stops the grid with 143', async () => {
    const dir = join(tmp, 'locked');
    const args = [...argv.slice(0, -1), dir];
    const first = strataAsync(args.map((a, i, all) => (all[i - 1] === '--steps' ? '400' : a)));
    const lockFile = join(dir, '.strata.lock');
    for (let i = 0; i < 600 && !existsSync(lockFile); i++) await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(lockFile)).toBe(true);
    const second = await strataRun(args);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/E_LOCKED.*pid \d+/);
    first.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => first.on('close', r));
    expect(code).toBe(143);
    expect(existsSync(lockFile)).toBe(false);
  });
});

describe('‖ΔF‖ across a resume (strata train)', () => {
  it('a resumed run measures the model update from θ_0, as the uninterrupted run does', async () => {
    const flags = [
      ...TINY_MODEL,
      '--data',
      'markov:16',
      '--model-opt',
      'vocabSize=16',
      '--diagnostics',
      '2',
      '--schedule',
      'constant',
      '--warmup',
      '0',
      '--eval-every',
      '4',
      '--json',
    ];
    const whole = join(tmp, 'df-whole');
    const split = join(tmp, 'df-split');
    expect((await strataRun(['train', ...flags, '--steps', '8', '--out', whole])).code).toBe(0);
    expect((await strataRun(['train', ...flags, '--steps', '4', '--out', split])).code).toBe(0);
    const r = await strataRun(['train', '--resume', split, '--steps', '8', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const deltaF = (dir: string) =>
      readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { step?: number; diagnostics?: { deltaF: number } })
        .filter((x) => x.diagnostics)
        .map((x) => [x.step, x.diagnostics!.deltaF]);
    const a = deltaF(whole);
    const b = deltaF(split);
    expect(b.map((x) => x[0])).toEqual(a.map((x) => x[0]));
    for (let i = 0; i < a.length; i++) expect(b[i]![1]).toBeCloseTo(a[i]![1]!, 4);
  });
});

describe('compare: growth arms (--grow-at, --grow)', () => {
  it('reads a growth arm from a variant and refuses bad ones naming the flag', () => {
    const [v] = variantsFromArgs({
      variant: ["g=--d-model 16 --grow-at 0.25 --grow '--width 2 --noise 0.02'"],
    });
    const arm = growthArmOf(v!.args, 'g');
    expect(arm?.at).toBe(0.25);
    expect(arm?.spec).toMatchObject({ width: 2, noise: 0.02 });
    expect(growthArmOf({ norm: 'pre-ln' })).toBeUndefined();
    expect(() => growthArmOf({ 'grow-at': 1.5, grow: '--width 2' }, 'g')).toThrow(
      /--grow-at must be a fraction/,
    );
    expect(() => growthArmOf({ 'grow-at': 0.1 }, 'g')).toThrow(/needs both --grow-at/);
    expect(() => growthArmOf({ 'grow-at': 0.1, grow: '--noise 0.1' }, 'g')).toThrow(/grows nothing/);
    expect(() => growthArmOf({ 'grow-at': 0.1, grow: '--width 2 --out x' }, 'g')).toThrow(
      /may not set --out/,
    );
    expect(() => growthArmOf({ rewarm: 5 }, 'g')).toThrow(/--rewarm applies to the grown phase/);
    expect(() => growthArmOf({ 'grown-lr': 0.5 }, 'g')).toThrow(/--grown-lr applies to the grown phase/);
    expect(() => growthArmOf({ 'grow-at': 0.1, grow: '--width 2', 'grown-lr': 0 }, 'g')).toThrow(
      /--grown-lr must be a positive factor/,
    );
    expect(growthArmOf({ 'grow-at': 0.1, grow: '--width 2', 'grown-lr': 0.25 }, 'g')?.grownLr).toBe(0.25);
    expect(growthArmOf({ 'grow-at': 0.1, grow: '--width 2' }, 'g')?.grownLr).toBe(1);
  });

  it('counts FLOPs at the small model’s cost up to the growth step, at the grown model’s after it', () => {
    const r = { tokensPerStep: 10, flopsPerToken: 100, growth: { step: 4, smallFlopsPerToken: 25 } } as never;
    expect(flopsAt(r, 3)).toBe(3 * 10 * 25);
    expect(flopsAt(r, 4)).toBe(4 * 10 * 25);
    expect(flopsAt(r, 6)).toBe(10 * (4 * 25 + 2 * 100));
    expect(flopsAt({ tokensPerStep: 10, flopsPerToken: 100 }, 6)).toBe(6000);
  });

  it('trains small, grows exactly, trains on in a new phase, at the FLOPs of the scratch arm', async () => {
    const out = join(tmp, 'growth-grid');
    const r = await strataRun([
      'compare',
      '--variant',
      'scratch=--d-model 16 --d-ff 32',
      '--variant',
      "grown=--d-model 8 --d-ff 16 --grow-at 0.5 --grow '--width 2 --noise 0.01' --grown-lr 0.5",
      '--lrs',
      '3e-3',
      '--seeds',
      '1',
      '--extend-grid',
      '0',
      '--data',
      'markov:16',
      '--model-opt',
      'vocabSize=16',
      '--layers',
      '2',
      '--heads',
      '2',
      '--context',
      '8',
      '--batch-size',
      '4',
      '--steps',
      '8',
      '--warmup',
      '2',
      '--eval-every',
      '4',
      '--eval-batches',
      '2',
      '--backend',
      'wasm',
      '--out',
      out,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const { runs } = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { runs: RunSummary[] };
    const scratch = runs.find((x) => x.variant === 'scratch')!;
    const grown = runs.find((x) => x.variant === 'grown')!;
    // the grown model is the scratch architecture: same parameters and FLOPs per token
    expect(grown.params).toBe(scratch.params);
    expect(grown.flopsPerToken).toBe(scratch.flopsPerToken);
    const g = grown.growth!;
    // half the budget on the small model: S = 0.5·8·C_big/C_small steps, then 8 − 4 grown steps
    expect(g.step).toBe(Math.round((0.5 * 8 * grown.flopsPerToken) / g.smallFlopsPerToken));
    expect(grown.steps).toBe(g.step + 4);
    expect(g.maxAbsDeltaLogits).toBeLessThan(1e-4);
    // equal compute to within the rounding of S
    expect(Math.abs(flopsAt(grown, grown.steps) / flopsAt(scratch, scratch.steps) - 1)).toBeLessThan(0.05);
    const metrics = readFileSync(join(grown.runDir, 'grown', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event?: string; step?: number; reason?: string; lr?: number });
    // --grown-lr 0.5: the new phase re-warms (the run's --warmup 2) to half the run's rate
    expect(metrics.find((m) => m.event === 'phase')).toMatchObject({
      step: g.step,
      reason: 'growth',
      lr: 1.5e-3,
    });
    expect(metrics.find((m) => m.event === undefined && m.step === g.step + 1)?.lr).toBeCloseTo(7.5e-4, 12);
    expect(g.grownLr).toBe(0.5);
    expect(metrics.filter((m) => m.event === undefined && typeof m.step === 'number').at(-1)?.step).toBe(
      grown.steps,
    );
    const report = readFileSync(join(out, 'report.md'), 'utf8');
    expect(report).toMatch(/## Growth arms/);
    expect(report).toMatch(/\| grown \| \d+ \| 4 \| 0\.5 × lr \|/);
    expect(report).not.toMatch(/budgets differ/);
  });
});
