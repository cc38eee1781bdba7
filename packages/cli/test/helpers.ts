import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Path of the built CLI entry (the tests run what users run; `npm test` builds first). */
export const BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url));

/** Runs `strata args...` to completion. */
export function strata(
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; nodeArgs?: string[] } = {},
) {
  const r = spawnSync(process.execPath, [...(options.nodeArgs ?? []), BIN, ...args], {
    cwd: options.cwd,
    env: { ...process.env, CI: 'true', ...options.env },
    encoding: 'utf8',
    timeout: 300_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Runs `strata args...` to completion without blocking the test worker's event loop (long runs under
 * `spawnSync` starve vitest's worker RPC and fail with "Timeout calling onTaskUpdate").
 */
export function strataRun(
  args: string[],
  options: { cwd?: string } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd,
      env: { ...process.env, CI: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Starts `strata args...` in the background. */
export function strataAsync(args: string[], options: { cwd?: string } = {}) {
  return spawn(process.execPath, [BIN, ...args], {
    cwd: options.cwd,
    env: { ...process.env, CI: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Parses JSON lines, ignoring other lines. */
export function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Flags of a tiny but real model run (2 layers, d_model 32, context 16, batch 4, wasm). */
export const TINY_MODEL: readonly string[] = [
  '--d-model',
  '32',
  '--layers',
  '2',
  '--heads',
  '2',
  '--context',
  '16',
  '--batch-size',
  '4',
  '--eval-batches',
  '2',
  '--backend',
  'wasm',
];
