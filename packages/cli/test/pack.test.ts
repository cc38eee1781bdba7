/**
 * The packages as users get them: `npm pack` every package, check that each tarball holds only what it needs,
 * install the tarballs into empty temporary projects (outside the repository: no workspace links) and run a
 * small program against each package alone, and the CLI from its tarball.
 *
 * Slow (npm installs; about a minute from a warm npm cache), so it only runs with `STRATA_PACK_TEST=1`
 * (`npm run test:pack`). The packages must be built first (`npx turbo run build`). Installs use the local npm
 * cache (`--offline`); when a dependency is not cached, the install is retried with `--prefer-offline`, which
 * may reach the registry.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const enabled = process.env.STRATA_PACK_TEST === '1';
const root = fileURLToPath(new URL('../../../', import.meta.url));
const PACKAGES = ['core', 'norms', 'ngpt', 'growth', 'cli'] as const;
type Pkg = (typeof PACKAGES)[number];

interface PackResult {
  name: string;
  version: string;
  filename: string;
  files: { path: string }[];
}

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';
let work = '';
const tarballs = new Map<Pkg, string>();
const packed = new Map<Pkg, PackResult>();
const installNotes: string[] = [];

function manifest(pkg: Pkg): Record<string, unknown> {
  return JSON.parse(readFileSync(join(root, 'packages', pkg, 'package.json'), 'utf8')) as Record<
    string,
    unknown
  >;
}

/** Creates an empty project in `dir` and installs `specs` (tarball paths and registry specs) into it. */
function install(dir: string, specs: string[]): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'package.json'),
    `${JSON.stringify({ name: 'strata-pack-consumer', version: '0.0.0', private: true, type: 'module' }, null, 2)}\n`,
  );
  const base = ['install', '--no-audit', '--no-fund', '--no-package-lock', '--loglevel=error'];
  const offline = spawnSync(npm, [...base, '--offline', '--prefer-offline', ...specs], {
    cwd: dir,
    encoding: 'utf8',
  });
  if (offline.status === 0) return;
  installNotes.push(
    `${dir}: offline install failed, retried with --prefer-offline: ${offline.stderr.slice(-400)}`,
  );
  const online = spawnSync(npm, [...base, '--prefer-offline', ...specs], { cwd: dir, encoding: 'utf8' });
  if (online.status !== 0) throw new Error(`npm install failed in ${dir}:\n${online.stderr}`);
}

/** Runs `node program.mjs` in `dir` and returns stdout; fails with the output when the exit code is not 0. */
function runProgram(dir: string, name: string, source: string): string {
  writeFileSync(join(dir, name), source);
  const r = spawnSync(process.execPath, [name], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${name} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Runs a command without blocking the test worker's event loop (long synchronous runs time out its RPC). */
function runAsync(
  cmd: string,
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv },
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** A 1-layer model small enough to train 2 steps from a tarball install in seconds. */
const TINY_PACK_MODEL = [
  '--d-model',
  '16',
  '--layers',
  '1',
  '--heads',
  '2',
  '--context',
  '16',
  '--batch-size',
  '2',
  '--eval-batches',
  '1',
];

function tgz(...pkgs: Pkg[]): string[] {
  return pkgs.map((p) => tarballs.get(p)!);
}

describe.skipIf(!enabled)('npm pack + install from tarballs (STRATA_PACK_TEST=1)', () => {
  beforeAll(() => {
    for (const pkg of PACKAGES)
      if (!existsSync(join(root, 'packages', pkg, 'dist', 'index.js')))
        throw new Error(`packages/${pkg}/dist is missing: run \`npx turbo run build\` first`);
    work = mkdtempSync(join(tmpdir(), 'strata-pack-'));
    const dest = join(work, 'tarballs');
    mkdirSync(dest);
    for (const pkg of PACKAGES) {
      const out = execFileSync(npm, ['pack', '--json', '--loglevel=error', '--pack-destination', dest], {
        cwd: join(root, 'packages', pkg),
        encoding: 'utf8',
      });
      const result = (JSON.parse(out) as PackResult[])[0]!;
      packed.set(pkg, result);
      tarballs.set(pkg, join(dest, result.filename));
    }
  }, 120_000);
  afterAll(() => {
    if (installNotes.length) console.warn(installNotes.join('\n'));
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('each tarball holds dist, README/CHANGELOG/LICENSE and package.json only, with every entry point', () => {
    for (const pkg of PACKAGES) {
      const files = packed.get(pkg)!.files.map((f) => f.path);
      const unexpected = files.filter(
        (f) => !/^(dist\/.+|package\.json|README\.md|CHANGELOG\.md|LICENSE(\.md|\.txt)?)$/.test(f),
      );
      expect(unexpected, `${pkg}: files that should not ship`).toEqual([]);
      const forbidden = files.filter((f) =>
        /(^|\/)(src|test|tests|__tests__)\/|\.tsbuildinfo$|\.test\.[jt]s$/.test(f),
      );
      expect(forbidden, `${pkg}: sources, tests or build info`).toEqual([]);
      // Source maps point at ../src, which is not published: they would only be dead weight.
      const maps = files.filter((f) => f.endsWith('.map'));
      expect(
        maps.length,
        `${pkg}: ${maps.length} source maps whose sources are not published (add "!dist/**/*.map" to "files")`,
      ).toBe(0);
      // Nor comments that point to maps: a debugger or bundler would look for them and warn.
      const mapComments = files.filter(
        (f) =>
          /\.(js|d\.ts)$/.test(f) &&
          readFileSync(join(root, 'packages', pkg, f), 'utf8').includes('sourceMappingURL='),
      );
      expect(mapComments, `${pkg}: files with a sourceMappingURL comment`).toEqual([]);
      expect(files, `${pkg}: no LICENSE in the tarball`).toContain('LICENSE');
      const m = manifest(pkg);
      const entries = new Set<string>();
      const walk = (v: unknown) => {
        if (typeof v === 'string') entries.add(v.replace(/^\.\//, ''));
        else if (v && typeof v === 'object') for (const x of Object.values(v)) walk(x);
      };
      walk(m.exports);
      walk(m.main);
      walk(m.types);
      walk(m.bin);
      for (const e of entries) expect(files, `${pkg}: entry point ${e} is not in the tarball`).toContain(e);
      expect(
        files.some((f) => f.endsWith('.d.ts')),
        `${pkg}: no type declarations`,
      ).toBe(true);
    }
  });

  it('@strata/core alone: builds a tiny GPT and trains 2 steps on wasm', () => {
    const dir = join(work, 'app-core');
    install(dir, [...tgz('core'), '@tensorflow/tfjs-core@4.22.0', '@tensorflow/tfjs-backend-wasm@4.22.0']);
    expect(existsSync(join(dir, 'node_modules', '@strata', 'norms'))).toBe(false);
    const out = runProgram(
      dir,
      'core.mjs',
      `import { TextDataset, Trainer, getModelFamily, initBackend, parseTrainConfig } from '@strata/core';
const backend = await initBackend('wasm');
const gpt = getModelFamily('gpt');
const model = gpt.create(gpt.parseConfig({ vocabSize: 256, contextLength: 16, dModel: 16, nLayers: 2, nHeads: 2 }), { seed: 1 });
const data = new TextDataset('the quick brown fox jumps over the lazy dog. '.repeat(40));
const trainer = new Trainer(model, data, parseTrainConfig({ steps: 2, batchSize: 4, seqLen: 16, warmupSteps: 1 }, 16));
const losses = [(await trainer.step()).loss, (await trainer.step()).loss];
if (!losses.every(Number.isFinite)) throw new Error('non-finite loss');
console.log(JSON.stringify({ backend: backend.name, losses }));
`,
    );
    const result = JSON.parse(out.trim().split('\n').pop()!) as { backend: string; losses: number[] };
    expect(result.backend).toBe('wasm');
    expect(result.losses).toHaveLength(2);
  });

  it('@strata/norms alone: registers the built-ins and finds deepnorm', () => {
    const dir = join(work, 'app-norms');
    install(dir, [...tgz('core', 'norms'), '@tensorflow/tfjs-core@4.22.0']);
    const out = runProgram(
      dir,
      'norms.mjs',
      `import { getNorm, listNorms } from '@strata/core';
import { deepNormAlpha, registerBuiltinNorms } from '@strata/norms';
registerBuiltinNorms();
const d = getNorm('deepnorm');
console.log(JSON.stringify({ name: d.name, alpha8: deepNormAlpha('decoder-only', { decoderLayers: 8 }), n: listNorms().length }));
`,
    );
    const r = JSON.parse(out.trim()) as { name: string; alpha8: number; n: number };
    expect(r.name).toBe('deepnorm');
    expect(r.alpha8).toBeCloseTo(2, 12);
    expect(r.n).toBeGreaterThanOrEqual(4);
  });

  it('@strata/ngpt alone: builds an nGPT, steps the re-projection, stays on the sphere', () => {
    const dir = join(work, 'app-ngpt');
    install(dir, [
      ...tgz('core', 'ngpt'),
      '@tensorflow/tfjs-core@4.22.0',
      '@tensorflow/tfjs-backend-cpu@4.22.0',
    ]);
    const out = runProgram(
      dir,
      'ngpt.mjs',
      `import { getModelFamily, initBackend } from '@strata/core';
import { registerNGPT, unitNormErrors } from '@strata/ngpt';
import * as tf from '@tensorflow/tfjs-core';
await initBackend('cpu');
registerNGPT();
const f = getModelFamily('ngpt');
const m = f.create(f.parseConfig({ vocabSize: 32, contextLength: 8, dModel: 16, nHeads: 2, nLayers: 1 }), { seed: 1 });
const logits = m.forward(tf.tensor2d([[1, 2, 3, 4]], [1, 4], 'int32'));
m.afterStep();
const worst = Math.max(...(await unitNormErrors(m.params)).values());
console.log(JSON.stringify({ shape: logits.shape, worst }));
`,
    );
    const r = JSON.parse(out.trim()) as { shape: number[]; worst: number };
    expect(r.shape).toEqual([1, 4, 32]);
    expect(r.worst).toBeLessThan(1e-5);
  });

  it('@strata/growth alone: grows a GPT and reports an exact transform', () => {
    const dir = join(work, 'app-growth');
    install(dir, [
      ...tgz('core', 'growth'),
      '@tensorflow/tfjs-core@4.22.0',
      '@tensorflow/tfjs-backend-cpu@4.22.0',
    ]);
    const out = runProgram(
      dir,
      'growth.mjs',
      `import { getModelFamily, initBackend } from '@strata/core';
import { growModel } from '@strata/growth';
await initBackend('cpu');
const gpt = getModelFamily('gpt');
const small = gpt.create(gpt.parseConfig({ vocabSize: 32, contextLength: 8, dModel: 8, nLayers: 1, nHeads: 2, initStd: 0.2 }), { seed: 1 });
const { model, report } = await growModel(small, { width: 2, depth: 2 });
console.log(JSON.stringify({ dModel: model.config.dModel, exact: report.exact, within: report.withinTolerance }));
`,
    );
    const r = JSON.parse(out.trim()) as { dModel: number; exact: boolean; within: boolean };
    expect(r).toEqual({ dModel: 16, exact: true, within: true });
  });

  it('@strata/cli from its tarball: `npx strata --help` and a 2-step `strata train` on the Brown corpus', () => {
    const dir = join(work, 'app-cli');
    install(dir, tgz('core', 'norms', 'ngpt', 'growth', 'cli'));
    const help = spawnSync(npx, ['--offline', 'strata', '--help'], { cwd: dir, encoding: 'utf8' });
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/Usage: strata <command>/);
    const version = spawnSync(npx, ['--offline', 'strata', '--version'], { cwd: dir, encoding: 'utf8' });
    expect(version.stdout.trim()).toBe(manifest('cli').version);
    const train = spawnSync(
      npx,
      ['--offline', 'strata', 'train', '--steps', '2', ...TINY_PACK_MODEL, '--out', 'run', '--json'],
      { cwd: dir, encoding: 'utf8', timeout: 180_000, env: { ...process.env, CI: 'true' } },
    );
    expect(train.status, `${train.stdout}\n${train.stderr}`).toBe(0);
    expect(existsSync(join(dir, 'run', 'checkpoint', 'model.safetensors'))).toBe(true);
    const backend = JSON.parse(readFileSync(join(dir, 'run', 'checkpoint', 'state.json'), 'utf8')).backend;
    expect(backend).toBe('wasm'); // a fresh install trains on wasm with no extra step
    const norms = spawnSync(npx, ['--offline', 'strata', 'norms', '--json'], { cwd: dir, encoding: 'utf8' });
    expect(norms.status, norms.stderr).toBe(0);
    expect(norms.stdout).toMatch(/deepnorm/);
  });

  it('a CLI installed apart from the project (as with npm i -g) runs a project-local plugin on one tfjs engine', async () => {
    // The CLI lives in app-cli (its own node_modules); the plugin's project installs its own @strata/core and
    // @tensorflow/tfjs-core. Without the CLI's resolution hooks, tfjs-core loads twice and prints "Platform
    // node has already been set", in the main thread and in the data-parallel worker.
    const cliBin = join(work, 'app-cli', 'node_modules', '@strata', 'cli', 'dist', 'bin.js');
    if (!existsSync(cliBin)) install(join(work, 'app-cli'), tgz('core', 'norms', 'ngpt', 'growth', 'cli'));
    const dir = join(work, 'app-plugin');
    install(dir, [...tgz('core'), '@tensorflow/tfjs-core@4.22.0']);
    writeFileSync(
      join(dir, 'acme-norm.mjs'),
      `import { defineNorm, opt } from '@strata/core';
import * as tf from '@tensorflow/tfjs-core';
export const halfPre = defineNorm({
  name: 'acme/half-pre',
  version: '1.0.0',
  description: 'Pre-LN with the branch multiplied by a constant',
  options: { c: opt.number({ default: 0.5, gt: 0, description: 'branch multiplier' }) },
  createSite(_ctx, opts, host) {
    const ln = host.norm('norm');
    return { forward: (x, branch) => tf.add(x, tf.mul(branch(ln(x)), opts.c)) };
  },
  createFinal: (_ctx, _opts, host) => host.norm('norm'),
});
`,
    );
    writeFileSync(join(dir, 'corpus.txt'), 'the quick brown fox jumps over the lazy dog. '.repeat(100));
    for (const workers of ['1', '2']) {
      const r = await runAsync(
        process.execPath,
        [
          cliBin,
          'train',
          '--plugin',
          './acme-norm.mjs',
          '--norm',
          'acme/half-pre',
          '--data',
          'corpus.txt',
          '--out',
          `run-${workers}`,
          '--steps',
          '2',
          ...TINY_PACK_MODEL,
          '--workers',
          workers,
          '--backend',
          'wasm',
          '--json',
        ],
        { cwd: dir, env: { ...process.env, CI: 'true' } },
      );
      expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
      expect(r.stderr, `--workers ${workers}`).not.toMatch(/has already been set/);
      expect(existsSync(join(dir, `run-${workers}`, 'checkpoint', 'model.safetensors'))).toBe(true);
    }
  });
});
