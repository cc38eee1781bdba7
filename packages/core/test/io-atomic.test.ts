import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StrataError } from '../src/errors.js';
import { ioError, recoverDir, replaceDirAtomic, writeFileAtomic } from '../src/io/index.js';

const here = dirname(fileURLToPath(import.meta.url));
/** A pid that cannot exist (above Linux's PID_MAX_LIMIT), standing for a writer that crashed. */
const DEAD_PID = 99999999;

let root: string;
/** The child fixture, bundled to plain JavaScript once so each crash run starts in milliseconds. */
let child: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'strata-atomic-'));
  child = join(root, 'atomic-child.mjs');
  await build({
    entryPoints: [join(here, 'fixtures', 'atomic-child.ts')],
    outfile: child,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'silent',
  });
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});
let counter = 0;
const fresh = () => join(root, `case${++counter}`);

/** Writes version `n` as the child fixture does: a.txt = b.txt = n, big.bin = 64 KiB of n. */
async function writeVersionFiles(dir: string, n: number): Promise<void> {
  await writeFile(join(dir, 'a.txt'), String(n));
  await writeFile(join(dir, 'big.bin'), new Uint8Array(65536).fill(n % 256));
  await writeFile(join(dir, 'b.txt'), String(n));
}

/** Reads the version in `dir`, checking it is complete and not a mixture. */
async function readVersion(dir: string): Promise<number> {
  expect((await readdir(dir)).sort()).toEqual(['a.txt', 'b.txt', 'big.bin']);
  const a = Number(await readFile(join(dir, 'a.txt'), 'utf8'));
  expect(await readFile(join(dir, 'b.txt'), 'utf8')).toBe(String(a));
  const big = await readFile(join(dir, 'big.bin'));
  expect(big.length).toBe(65536);
  expect(big.every((x) => x === a % 256)).toBe(true);
  return a;
}

describe('writeFileAtomic', () => {
  it('creates and replaces a file without leaving temporaries', async () => {
    const dir = fresh();
    const path = join(dir, 'deep', 'f.json');
    await writeFileAtomic(path, 'one');
    await writeFileAtomic(path, new TextEncoder().encode('two'));
    expect(await readFile(path, 'utf8')).toBe('two');
    expect(await readdir(join(dir, 'deep'))).toEqual(['f.json']);
  });

  it('reports file-system failures as E_IO naming the path', async () => {
    const dir = fresh();
    await mkdir(dir);
    await writeFile(join(dir, 'file'), 'x');
    const path = join(dir, 'file', 'sub', 'f.json');
    await expect(writeFileAtomic(path, 'x')).rejects.toMatchObject({
      code: 'E_IO',
      message: expect.stringContaining(`cannot write ${path}:`),
    });
    // Replacing a directory with a file fails and leaves no temporary behind.
    await mkdir(join(dir, 'adir'));
    await expect(writeFileAtomic(join(dir, 'adir'), 'x')).rejects.toMatchObject({ code: 'E_IO' });
    expect((await readdir(dir)).sort()).toEqual(['adir', 'file']);
  });
});

describe('ioError', () => {
  it('turns errno codes into words', () => {
    const e = ioError(
      Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }),
      'write',
      'runs/x',
    );
    expect(e).toBeInstanceOf(StrataError);
    expect(e.code).toBe('E_IO');
    expect(e.message).toBe('cannot write runs/x: disk full (ENOSPC)');
    expect(ioError(Object.assign(new Error('x'), { code: 'EACCES' }), 'read', 'p').message).toBe(
      'cannot read p: permission denied (EACCES)',
    );
    expect(ioError(new Error('odd'), 'write', 'p').message).toBe('cannot write p: odd');
    const already = new StrataError('E_DATA', 'kept');
    expect(ioError(already, 'write', 'p')).toBe(already);
  });
});

describe('replaceDirAtomic', () => {
  it('creates, refuses to overwrite without the flag, and replaces with it', async () => {
    const dir = fresh();
    await replaceDirAtomic(dir, (tmp) => writeVersionFiles(tmp, 1));
    expect(await readVersion(dir)).toBe(1);
    const err = await replaceDirAtomic(dir, (tmp) => writeVersionFiles(tmp, 2)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StrataError);
    expect(err).toMatchObject({
      code: 'E_IO',
      message: `${dir} exists; pass overwrite: true (CLI: --force) to replace it`,
    });
    expect(await readVersion(dir)).toBe(1);
    await replaceDirAtomic(dir, (tmp) => writeVersionFiles(tmp, 2), { overwrite: true });
    expect(await readVersion(dir)).toBe(2);
    expect((await readdir(root)).filter((n) => n.startsWith(`.case${counter}.`))).toEqual([]);
  });

  it('turns a failing populate (e.g. a full disk) into E_IO and keeps the old directory', async () => {
    const dir = fresh();
    await replaceDirAtomic(dir, (tmp) => writeVersionFiles(tmp, 1));
    const full = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    const err = await replaceDirAtomic(
      dir,
      async (tmp) => {
        await writeFile(join(tmp, 'a.txt'), '2');
        throw full;
      },
      { overwrite: true },
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_IO', message: `cannot write ${dir}: disk full (ENOSPC)` });
    expect(await readVersion(dir)).toBe(1);
    expect((await readdir(root)).filter((n) => n.startsWith(`.case${counter}.`))).toEqual([]);
    // Errors that are not file-system errors (bugs) pass through unchanged.
    const bug = new TypeError('bug');
    await expect(replaceDirAtomic(dir, () => Promise.reject(bug), { overwrite: true })).rejects.toBe(bug);
  });
});

describe('recoverDir', () => {
  it('restores the .old copy left by a crash between the two renames', async () => {
    const dir = fresh();
    const base = `case${counter}`;
    const old = join(root, `.${base}.old-${DEAD_PID}-0badc0de`);
    const tmp = join(root, `.${base}.tmp-${DEAD_PID}-0badc0df`);
    await mkdir(old);
    await writeVersionFiles(old, 7);
    await mkdir(tmp);
    await writeVersionFiles(tmp, 8); // the complete new version that was never renamed in
    await recoverDir(dir);
    expect(await readVersion(dir)).toBe(7);
    expect((await readdir(root)).filter((n) => n.startsWith(`.${base}.`))).toEqual([]);
    // A later replace works normally.
    await replaceDirAtomic(dir, (t) => writeVersionFiles(t, 9), { overwrite: true });
    expect(await readVersion(dir)).toBe(9);
  });

  it('removes superseded leftovers of dead writers but never touches those of live ones', async () => {
    const dir = fresh();
    const base = `case${counter}`;
    await replaceDirAtomic(dir, (tmp) => writeVersionFiles(tmp, 1));
    const deadOld = join(root, `.${base}.old-${DEAD_PID}-00000001`);
    // The test runner's parent process stands for another writer that is still running.
    const liveTmp = join(root, `.${base}.tmp-${process.ppid}-00000002`);
    const liveOld = join(root, `.${base}.old-${process.ppid}-00000003`);
    const unrelated = join(root, `.${base}.notes`);
    for (const d of [deadOld, liveTmp, liveOld]) await mkdir(d);
    await writeFile(unrelated, 'x');
    await recoverDir(dir);
    expect(await readVersion(dir)).toBe(1);
    expect((await readdir(root)).filter((n) => n.startsWith(`.${base}.`)).sort()).toEqual(
      [liveOld, liveTmp, unrelated].map((p) => p.slice(root.length + 1)).sort(),
    );
    // With the directory gone, a live writer's .old copy is still not taken (its rename may be in flight).
    await rm(dir, { recursive: true });
    await recoverDir(dir);
    await expect(stat(dir)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it("repairs leftovers carrying this process's own pid that it is not writing (a container restarted as pid 1)", async () => {
    const dir = fresh();
    const base = `case${counter}`;
    await replaceDirAtomic(dir, (tmp) => writeVersionFiles(tmp, 4));
    // The previous incarnation (same pid) crashed between the two renames; the reproduction uses
    // a non-hex tag, which must be recognized too.
    const leftover = join(root, `.${base}.old-${process.pid}-x`);
    await rm(leftover, { recursive: true, force: true });
    const { rename } = await import('node:fs/promises');
    await rename(dir, leftover);
    await recoverDir(dir);
    expect(await readVersion(dir)).toBe(4);
    await expect(stat(leftover)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('is a no-op when there is nothing to recover', async () => {
    const dir = fresh();
    await recoverDir(dir);
    await expect(stat(dir)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

/** Runs the child fixture; resolves with its stdout and exit signal. */
function runChild(
  args: string[],
  onLine?: (line: string, kill: () => void) => void,
): Promise<{ out: string; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [child, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      for (const line of chunk.split('\n')) if (line) onLine?.(line, () => proc.kill('SIGKILL'));
    });
    proc.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      err += chunk;
    });
    proc.on('error', reject);
    proc.on('exit', (code, signal) => {
      if (code !== 0 && signal === null) reject(new Error(`child failed (${code}): ${err}`));
      else resolve({ out, signal });
    });
  });
}

describe.concurrent('crashes of a writing process (SIGKILL)', () => {
  it.each([
    ['populate', 1],
    ['rename1', 1],
    ['rename2', 1],
    ['rm-old', 2],
  ] as const)('killed at %s leaves version %i loadable after recovery', async (at, expected) => {
    const dir = fresh();
    const base = `case${counter}`;
    await replaceDirAtomic(dir, (tmp) => writeVersionFiles(tmp, 1));
    const { signal } = await runChild(['crash', dir, '2', at]);
    expect(signal).toBe('SIGKILL');
    if (at === 'rename2') await expect(stat(dir)).rejects.toMatchObject({ code: 'ENOENT' });
    await recoverDir(dir);
    expect(await readVersion(dir)).toBe(expected);
    expect((await readdir(root)).filter((n) => n.startsWith(`.${base}.`))).toEqual([]);
  });

  it('killed at random moments while rewriting, the directory is always a complete version', async () => {
    const dir = fresh();
    for (let round = 0; round < 3; round++) {
      const target = 1 + Math.floor(Math.random() * 5);
      let lastWritten = 0;
      await runChild(['loop', dir], (line, kill) => {
        lastWritten = Number(line.split(' ')[1]);
        if (lastWritten >= target) setTimeout(kill, Math.random() * 5);
      });
      await recoverDir(dir);
      const v = await readVersion(dir);
      expect(v).toBeGreaterThanOrEqual(lastWritten);
    }
  });
});
