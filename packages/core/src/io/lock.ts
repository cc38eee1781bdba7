/**
 * Exclusive folder locks, so that two processes never write the same run folder.
 *
 * A lock is a file `<dir>/.strata.lock` created with `O_EXCL` and holding `{pid, host, startedAt, command,
 * nonce}` as JSON. A second process that finds it reports the holder (`pid 1234, "strata train --resume R"`);
 * a lock whose holder is gone (crash, SIGKILL, power cut) is stale and taken over. A holder counts as gone
 * when no process with its pid runs on this machine, when the process with that pid started after the lock
 * was written (pid reuse; checked on Linux), or when the pid is this process's own but this process does not
 * hold the lock (a container restarted as pid 1). Locks of another host are never taken over: the message
 * says which file to delete once that host's process is known to be gone.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { StrataError } from '../errors.js';
import { errnoCode, ioError, processAlive } from './atomic.js';

/** Name of the lock file inside a locked folder (dot-prefixed: loaders and listings ignore it). */
export const LOCK_FILE = '.strata.lock';

/** What a lock file records about its holder. */
export interface LockInfo {
  /** Process id of the holder. */
  pid: number;
  /** `os.hostname()` of the holder's machine. */
  host: string;
  /** When the lock was taken (ISO 8601). */
  startedAt: string;
  /** The holder's command line, for the message a second process prints. */
  command: string;
  /** Random tag telling this holding apart from a later one by the same pid. */
  nonce: string;
}

/** A held lock; {@link DirLock.release} gives it up (idempotent). */
export interface DirLock {
  /** The locked folder (absolute). */
  readonly dir: string;
  /** The lock file. */
  readonly file: string;
  /** Gives the lock up: removes the lock file, and the folders taking the lock created when they are empty. */
  release(): void;
}

/** Options of {@link acquireDirLock}. */
export interface AcquireDirLockOptions {
  /** How messages name the folder, e.g. `--out runs/a` (default: the path). */
  label?: string;
  /** The holder's command line recorded in the lock (default: `process.argv` without the node binary). */
  command?: string;
}

/** Locks an unparsable lock file is taken to be still being written for (then it is stale). */
const FRESH_MS = 5000;

interface Held {
  lock: DirLock;
  nonce: string;
  refs: number;
  /** The outermost folder acquiring created (`target` or an ancestor), removed again on release when empty. */
  created: string | undefined;
}
const held = new Map<string, Held>();
let exitHookInstalled = false;

/**
 * Parses the content of a lock file; `undefined` when it is not a valid {@link LockInfo} (a partial write,
 * or a file that is not a Strata lock). Never throws.
 */
export function parseLockInfo(text: string): LockInfo | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const r = v as Record<string, unknown>;
  if (typeof r.pid !== 'number' || !Number.isSafeInteger(r.pid) || r.pid <= 0) return undefined;
  for (const k of ['host', 'startedAt', 'command', 'nonce'] as const)
    if (typeof r[k] !== 'string') return undefined;
  return r as unknown as LockInfo;
}

/** Start time of process `pid` in ms since the epoch (Linux `/proc`; `undefined` elsewhere or when gone). */
function processStartMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22 (starttime, in clock ticks since boot) comes after the command name in parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]);
    const btime = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
    if (!btime || !Number.isFinite(ticks)) return undefined;
    return Number(btime[1]) * 1000 + (ticks / 100) * 1000; // USER_HZ is 100 on Linux
  } catch {
    return undefined;
  }
}

/**
 * Whether the holder of a lock may still be running: `'live'`, `'stale'` (gone), or `'foreign'` (another
 * host, which this machine cannot check).
 */
export function lockHolderState(info: LockInfo, dir: string): 'live' | 'stale' | 'foreign' {
  if (info.host !== hostname()) return 'foreign';
  if (info.pid === process.pid) return held.get(dir)?.nonce === info.nonce ? 'live' : 'stale';
  if (!processAlive(info.pid)) return 'stale';
  const started = processStartMs(info.pid);
  const lockedAt = Date.parse(info.startedAt);
  // A process that started after the lock was written cannot have written it: the pid was reused.
  if (started !== undefined && Number.isFinite(lockedAt) && started > lockedAt + 2000) return 'stale';
  return 'live';
}

function lockedError(label: string, file: string, info: LockInfo, foreign: boolean): StrataError {
  const where = foreign ? `on host ${info.host}` : 'on this machine';
  return new StrataError(
    'E_LOCKED',
    `${label} is in use by another strata process (pid ${info.pid} ${where}, "${info.command}", since ${info.startedAt}); wait for it to finish or stop it` +
      (foreign ? ` (if it is gone, delete ${file})` : ''),
  );
}

function releaseAll(): void {
  for (const h of [...held.values()]) {
    h.refs = 1;
    h.lock.release();
  }
}

/** Writes `info` to a new lock file; false when one already exists. */
function tryCreate(file: string, info: LockInfo): boolean {
  let fd: number;
  try {
    fd = openSync(file, 'wx');
  } catch (err) {
    if (errnoCode(err) === 'EEXIST') return false;
    throw err;
  }
  try {
    writeSync(fd, `${JSON.stringify(info)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return true;
}

/**
 * Takes the exclusive lock on folder `dir` (created when missing), waiting for nobody: when another live
 * process holds it, fails at once. A stale lock (see the module notes) is taken over. Locking a folder this
 * process already holds just counts one more holder; each needs its own `release()`. Held locks are released
 * when the process exits.
 *
 * @throws StrataError `E_LOCKED` naming the holder's pid, host, command and start time; `E_IO` when the folder
 *   cannot be created or the lock file written (read-only location, a path under a file, ...).
 */
export function acquireDirLock(dir: string, options: AcquireDirLockOptions = {}): DirLock {
  const target = resolve(dir);
  const label = options.label ?? dir;
  const mine = held.get(target);
  if (mine) {
    mine.refs++;
    return mine.lock;
  }
  let created: string | undefined;
  try {
    created = mkdirSync(target, { recursive: true });
  } catch (err) {
    if (errnoCode(err) === 'EEXIST' || errnoCode(err) === 'ENOTDIR')
      throw new StrataError('E_IO', `cannot create ${label}: it or a parent of it is a file, not a folder`);
    throw ioError(err, 'create', label);
  }
  const file = join(target, LOCK_FILE);
  const info: LockInfo = {
    pid: process.pid,
    host: hostname(),
    startedAt: new Date().toISOString(),
    command: options.command ?? ['strata', ...process.argv.slice(2)].join(' '),
    nonce: randomBytes(8).toString('hex'),
  };
  for (let attempt = 0; attempt < 8; attempt++) {
    try {
      if (tryCreate(file, info)) {
        const lock = makeLock(target, file, info.nonce);
        held.set(target, { lock, nonce: info.nonce, refs: 1, created });
        if (!exitHookInstalled) {
          process.on('exit', releaseAll);
          exitHookInstalled = true;
        }
        return lock;
      }
    } catch (err) {
      throw ioError(err, 'lock', label);
    }
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') continue; // released meanwhile
      throw ioError(err, 'read', file);
    }
    const holder = parseLockInfo(text);
    if (holder) {
      const state = lockHolderState(holder, target);
      if (state !== 'stale') throw lockedError(label, file, holder, state === 'foreign');
    } else {
      // Unparsable: a lock being written right now, or the remains of a crash mid-write.
      const age = Date.now() - (statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? 0);
      if (age < FRESH_MS) {
        throw new StrataError(
          'E_LOCKED',
          `${label} is being locked by another strata process right now; try again in a few seconds (or delete ${file} if none is running)`,
        );
      }
    }
    takeOverStale(target, file, text);
  }
  throw new StrataError(
    'E_LOCKED',
    `${label}: could not take the lock ${file} (other processes keep taking it)`,
  );
}

/**
 * Removes a stale lock whose content was `seen`. The file is first renamed aside (only one of several racing
 * processes wins the rename); when the renamed file is not the one judged stale (another process took the
 * lock in between), it is put back.
 */
function takeOverStale(dir: string, file: string, seen: string): void {
  const aside = join(dir, `${LOCK_FILE}.stale-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    renameSync(file, aside);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return;
    throw ioError(err, 'remove the stale lock', file);
  }
  let moved = '';
  try {
    moved = readFileSync(aside, 'utf8');
  } catch {
    // vanished: nothing to put back
  }
  if (moved !== seen && moved !== '') {
    try {
      renameSync(aside, file);
      return;
    } catch {
      // fall through and drop it
    }
  }
  try {
    unlinkSync(aside);
  } catch {
    // already gone
  }
}

function makeLock(dir: string, file: string, nonce: string): DirLock {
  return {
    dir,
    file,
    release() {
      const h = held.get(dir);
      if (!h || h.nonce !== nonce) return;
      if (--h.refs > 0) return;
      held.delete(dir);
      try {
        if (parseLockInfo(readFileSync(file, 'utf8'))?.nonce === nonce) unlinkSync(file);
      } catch {
        // gone already, or the folder was removed
      }
      if (h.created) {
        // Remove the folders acquiring created, innermost first, as long as they are empty.
        for (let d = dir; d.length >= h.created.length; d = dirname(d)) {
          try {
            if (readdirSync(d).length > 0) break;
            rmdirSync(d);
          } catch {
            break; // gone or not removable: leave it
          }
        }
      }
    },
  };
}

/** The entries of `dir` other than its lock file (for "is this output folder empty?" checks). */
export function dirEntriesExceptLock(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => n !== LOCK_FILE && !n.startsWith(`${LOCK_FILE}.`));
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw ioError(err, 'read', dir);
  }
}
