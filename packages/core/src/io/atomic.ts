/**
 * Crash-safe file and directory writes.
 *
 * Every write goes to a dot-prefixed temporary next to its target, is fsynced, and is then renamed over the
 * target (rename is atomic within a file system), so a process killed at any moment leaves either the old
 * complete target or the new complete one, never a mixture. Temporary leftovers are named
 * `.<base>.tmp-<pid>-<random>` and `.<base>.old-<pid>-<random>`; loaders ignore dot-prefixed names.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import * as fsp from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { StrataError } from '../errors.js';

/** What a Node `errno` code means, in words a user understands. */
const ERRNO_WORDS: Record<string, string> = {
  ENOSPC: 'disk full',
  EDQUOT: 'disk quota exceeded',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOENT: 'no such file or directory',
  ENOTDIR: 'a parent is not a directory',
  EISDIR: 'is a directory',
  EEXIST: 'already exists',
  ENOTEMPTY: 'directory not empty',
  EMFILE: 'too many open files',
  ENAMETOOLONG: 'name too long',
  EIO: 'input/output error',
};

/** The `code` of a Node system error (`'ENOSPC'`, ...), or `undefined` for anything else. */
export function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Wraps a Node file-system error as a one-line `StrataError('E_IO')` naming the path, e.g.
 * `cannot write runs/a/model.safetensors: disk full (ENOSPC)`. A `StrataError` is returned unchanged.
 *
 * @param err the caught error.
 * @param action the verb for the message (`'write'`, `'read'`, `'create'`, ...).
 * @param path the file or directory the operation was about.
 */
export function ioError(err: unknown, action: string, path: string): StrataError {
  if (err instanceof StrataError) return err;
  const code = errnoCode(err);
  const words = code !== undefined ? ERRNO_WORDS[code] : undefined;
  const detail =
    words !== undefined ? `${words} (${code})` : err instanceof Error ? err.message : String(err);
  return new StrataError('E_IO', `cannot ${action} ${path}: ${detail}`, { cause: err });
}

/** A random suffix `<pid>-<8 hex>` for temporary names; the pid lets {@link recoverDir} tell live writers. */
function tmpSuffix(): string {
  return `${process.pid}-${randomBytes(4).toString('hex')}`;
}

/**
 * Temporaries this process is writing right now. A leftover carrying this process's pid but missing here was
 * left by an earlier process that had the same pid (a container restarted as pid 1), so it is not in flight.
 */
const inFlight = new Set<string>();

/** A temporary name next to `target`, registered as in flight until `done` is called. */
function tempSibling(parent: string, base: string, kind: 'tmp' | 'old'): string {
  const path = join(parent, `.${base}.${kind}-${tmpSuffix()}`);
  inFlight.add(path);
  return path;
}

/**
 * Fsyncs a directory so that renames and creations inside it are durable. Best effort: some platforms
 * (Windows) and file systems cannot open or fsync a directory, which is not an error.
 */
export async function fsyncDir(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await fsp.open(dir, 'r');
    await handle.sync();
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'EISDIR' || code === 'EPERM' || code === 'EINVAL' || code === 'ENOTSUP' || code === 'EACCES')
      return;
    throw ioError(err, 'sync directory', dir);
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/** Writes `data` to a new file at `path` (which must not exist) and fsyncs it. */
async function writeAndSync(path: string, data: Uint8Array | string): Promise<void> {
  const handle = await fsp.open(path, 'wx');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Replaces the file at `path` with `data` atomically: writes `.<name>.tmp-<pid>-<random>` in the same
 * directory, fsyncs it, renames it over `path`, and fsyncs the directory. Readers see the old content or
 * the new, never a partial file. Missing parent directories are created.
 *
 * @param path target file.
 * @param data bytes, or a string written as UTF-8.
 * @throws StrataError `E_IO` naming `path` (e.g. disk full, permission denied); the temporary is removed.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const dir = dirname(resolve(path));
  const tmp = tempSibling(dir, basename(path), 'tmp');
  try {
    await fsp.mkdir(dir, { recursive: true });
    await writeAndSync(tmp, data);
    await fsp.rename(tmp, path);
  } catch (err) {
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    throw ioError(err, 'write', path);
  } finally {
    inFlight.delete(tmp);
  }
  await fsyncDir(dir);
}

/** Options of {@link replaceDirAtomic}. */
export interface ReplaceDirOptions {
  /** Replace `finalDir` when it exists (the CLI's `--force`). Default `false`: an existing one is an error. */
  overwrite?: boolean;
}

/** Fsyncs every file and directory under `dir` (files first, then their directory). */
async function fsyncTree(dir: string): Promise<void> {
  for (const entry of await fsp.readdir(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) await fsyncTree(p);
    else if (entry.isFile()) {
      const handle = await fsp.open(p, 'r');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    }
  }
  await fsyncDir(dir);
}

/** True when something (file, directory, link) exists at `path`. */
async function exists(path: string): Promise<boolean> {
  try {
    await fsp.lstat(path);
    return true;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw ioError(err, 'access', path);
  }
}

/**
 * Writes a whole directory atomically. `populate` fills a fresh temporary sibling
 * `<parent>/.<base>.tmp-<pid>-<random>`; every file in it is then fsynced, the existing `finalDir` (if any)
 * is renamed to `.<base>.old-<pid>-<random>`, the temporary is renamed to `finalDir`, the parent is fsynced
 * and the old copy removed.
 *
 * A crash at any moment leaves either the old complete directory or the new complete one at `finalDir`
 * (plus dot-prefixed leftovers); a crash between the two renames leaves no `finalDir` but an `.old` copy,
 * which {@link recoverDir} (called by loaders and by this function first) renames back.
 *
 * @param finalDir the directory to create or replace.
 * @param populate writes the content into the temporary directory it is given (plain writes suffice; this
 *   function fsyncs everything afterwards). Errors it throws that are not file-system errors propagate
 *   unchanged.
 * @throws StrataError `E_IO` when `finalDir` exists and `overwrite` is not set
 *   (`<dir> exists; pass overwrite: true (CLI: --force) to replace it`), or when the file system fails (disk full, ...); the
 *   temporary directory is removed and an existing `finalDir` is left untouched.
 */
export async function replaceDirAtomic(
  finalDir: string,
  populate: (tmpDir: string) => Promise<void>,
  options: ReplaceDirOptions = {},
): Promise<void> {
  const target = resolve(finalDir);
  const parent = dirname(target);
  const base = basename(target);
  await recoverDir(target);
  const replacing = await exists(target);
  if (replacing && !options.overwrite)
    throw new StrataError('E_IO', `${finalDir} exists; pass overwrite: true (CLI: --force) to replace it`);

  const tmp = tempSibling(parent, base, 'tmp');
  const old = tempSibling(parent, base, 'old');
  try {
    await moveIntoPlace(target, finalDir, tmp, old, replacing, populate);
  } finally {
    inFlight.delete(tmp);
    inFlight.delete(old);
  }
}

/** The body of {@link replaceDirAtomic}: populate `tmp`, then swap it in (the old copy goes to `old`). */
async function moveIntoPlace(
  target: string,
  finalDir: string,
  tmp: string,
  old: string,
  replacing: boolean,
  populate: (tmpDir: string) => Promise<void>,
): Promise<void> {
  const parent = dirname(target);
  try {
    await fsp.mkdir(parent, { recursive: true });
    await fsp.mkdir(tmp);
    await populate(tmp);
    await fsyncTree(tmp);
  } catch (err) {
    await fsp.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw errnoCode(err) !== undefined ? ioError(err, 'write', finalDir) : err;
  }

  try {
    if (replacing) await fsp.rename(target, old);
  } catch (err) {
    await fsp.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw ioError(err, 'replace', finalDir);
  }
  try {
    await fsp.rename(tmp, target);
  } catch (err) {
    if (replacing) await fsp.rename(old, target).catch(() => undefined);
    await fsp.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw ioError(err, 'replace', finalDir);
  }
  await fsyncDir(parent);
  if (replacing) await fsp.rm(old, { recursive: true, force: true }).catch(() => undefined);
}

/** A leftover of {@link replaceDirAtomic} or {@link writeFileAtomic} next to a target. */
interface Leftover {
  path: string;
  kind: 'tmp' | 'old';
  pid: number;
}

/** Lists `.<base>.tmp-<pid>-*` and `.<base>.old-<pid>-*` entries in `parent`. */
async function listLeftovers(parent: string, base: string): Promise<Leftover[]> {
  let names: string[];
  try {
    names = await fsp.readdir(parent);
  } catch {
    return [];
  }
  const prefix = `.${base}.`;
  const out: Leftover[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const m = /^(tmp|old)-(\d+)-[0-9A-Za-z]+$/.exec(name.slice(prefix.length));
    if (m) out.push({ path: join(parent, name), kind: m[1] as 'tmp' | 'old', pid: Number(m[2]) });
  }
  return out;
}

/**
 * True when the leftover at `path` may belong to an operation in flight: its writer `pid` is running on this
 * machine, and when that is this very process, the path is one it is writing now (not one an earlier process
 * with the same pid left behind, as after a container restart where every run is pid 1).
 */
function writerAlive(pid: number, path: string): boolean {
  if (pid === process.pid) return inFlight.has(path);
  return processAlive(pid);
}

/** True when process `pid` is running on this machine (or exists but belongs to another user). */
export function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
}

/**
 * Repairs the state a crash of {@link replaceDirAtomic} may leave behind, for loaders to call before
 * reading `finalDir`:
 * - `finalDir` missing but an `.old` copy from a dead writer present (crash between the two renames):
 *   the newest such copy is renamed back to `finalDir`;
 * - leftovers of dead writers that are no longer needed (`.tmp` ones, superseded `.old` ones) are removed,
 *   best effort (a read-only location is fine).
 *
 * Leftovers of a process that is still running are never touched. Leftovers carrying this process's own pid
 * that it is not writing now come from an earlier process with the same pid (a container restarted as pid 1)
 * and are repaired like any other dead writer's.
 *
 * @throws StrataError `E_IO` when the `.old` copy exists but cannot be renamed back.
 */
export async function recoverDir(finalDir: string): Promise<void> {
  const target = resolve(finalDir);
  const leftovers = (await listLeftovers(dirname(target), basename(target))).filter(
    (l) => !writerAlive(l.pid, l.path),
  );
  if (leftovers.length === 0) return;
  if (!(await exists(target))) {
    const olds: { path: string; ctime: number }[] = [];
    for (const l of leftovers) {
      if (l.kind !== 'old') continue;
      const st = await fsp.stat(l.path).catch(() => undefined);
      if (st) olds.push({ path: l.path, ctime: st.ctimeMs });
    }
    olds.sort((a, b) => b.ctime - a.ctime);
    const newest = olds[0];
    if (newest) {
      try {
        await fsp.rename(newest.path, target);
      } catch (err) {
        throw ioError(err, 'restore', `${finalDir} from ${newest.path}`);
      }
      await fsyncDir(dirname(target));
    }
  }
  for (const l of leftovers) await fsp.rm(l.path, { recursive: true, force: true }).catch(() => undefined);
}
