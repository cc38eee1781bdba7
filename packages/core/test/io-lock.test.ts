import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { acquireDirLock, isStrataError, LOCK_FILE, type LockInfo, parseLockInfo } from '../src/index.js';

const root = mkdtempSync(join(tmpdir(), 'strata-lock-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const fresh = () => join(root, `dir${++counter}`);
/** A pid that cannot exist (above Linux's PID_MAX_LIMIT): a holder that crashed. */
const DEAD_PID = 99999999;

function holder(over: Partial<LockInfo> = {}): LockInfo {
  return {
    pid: process.ppid,
    host: hostname(),
    startedAt: new Date().toISOString(),
    command: 'strata train --out R',
    nonce: 'feedfacecafebeef',
    ...over,
  };
}
function plant(dir: string, content: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, LOCK_FILE), content);
}
function lockError(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (e) {
    if (!isStrataError(e)) throw e;
    return { code: e.code, message: e.message };
  }
  throw new Error('expected a StrataError');
}

describe('acquireDirLock', () => {
  it('creates the folder and the lock, counts re-entry, and removes both on the last release', () => {
    const dir = fresh();
    const a = acquireDirLock(dir);
    const info = parseLockInfo(readFileSync(join(dir, LOCK_FILE), 'utf8'))!;
    expect(info.pid).toBe(process.pid);
    const b = acquireDirLock(dir);
    b.release();
    expect(parseLockInfo(readFileSync(join(dir, LOCK_FILE), 'utf8'))).toEqual(info);
    a.release();
    expect(() => readFileSync(dir)).toThrow(/ENOENT/);
    // Folders it had to create above the locked one go too, when empty.
    const nested = join(fresh(), 'a', 'b');
    acquireDirLock(nested).release();
    expect(existsSync(join(nested, '..', '..'))).toBe(false);
  });

  it('refuses a folder a live process holds, naming its pid and command', () => {
    const dir = fresh();
    plant(dir, JSON.stringify(holder()));
    const e = lockError(() => acquireDirLock(dir, { label: '--out R' }));
    expect(e.code).toBe('E_LOCKED');
    expect(e.message).toMatch(
      new RegExp(
        `^--out R is in use by another strata process \\(pid ${process.ppid} on this machine, "strata train --out R"`,
      ),
    );
  });

  it('takes over the lock of a crashed process', () => {
    const dir = fresh();
    plant(dir, JSON.stringify(holder({ pid: DEAD_PID })));
    const lock = acquireDirLock(dir);
    expect(parseLockInfo(readFileSync(lock.file, 'utf8'))!.pid).toBe(process.pid);
    lock.release();
  });

  it("takes over a lock carrying this process's pid that it does not hold (a container restarted as pid 1)", () => {
    const dir = fresh();
    plant(dir, JSON.stringify(holder({ pid: process.pid, nonce: '0000000000000000' })));
    const lock = acquireDirLock(dir);
    expect(parseLockInfo(readFileSync(lock.file, 'utf8'))!.nonce).not.toBe('0000000000000000');
    lock.release();
  });

  it.runIf(process.platform === 'linux')(
    'takes over a lock whose pid now belongs to a younger process',
    () => {
      const dir = fresh();
      // The parent process is alive, but started long after this lock was written: the pid was reused.
      plant(dir, JSON.stringify(holder({ startedAt: '2001-01-01T00:00:00.000Z' })));
      acquireDirLock(dir).release();
    },
  );

  it("never takes over another host's lock, and says which file to delete", () => {
    const dir = fresh();
    plant(dir, JSON.stringify(holder({ host: 'elsewhere', pid: DEAD_PID })));
    const e = lockError(() => acquireDirLock(dir));
    expect(e.message).toContain(`pid ${DEAD_PID} on host elsewhere`);
    expect(e.message).toContain(`delete ${join(dir, LOCK_FILE)}`);
  });

  it('waits out a lock being written, and takes over the unreadable remains of a crash mid-write', () => {
    const dir = fresh();
    plant(dir, '{"pid": 12');
    expect(lockError(() => acquireDirLock(dir)).message).toMatch(/is being locked by another strata process/);
    const old = new Date(Date.now() - 60_000);
    utimesSync(join(dir, LOCK_FILE), old, old);
    acquireDirLock(dir).release();
  });

  it('reports a folder that cannot be created as E_IO in one line', () => {
    const file = join(root, 'a-file');
    writeFileSync(file, 'x');
    const e = lockError(() => acquireDirLock(join(file, 'run'), { label: '--out a-file/run' }));
    expect(e).toEqual({
      code: 'E_IO',
      message: 'cannot create --out a-file/run: it or a parent of it is a file, not a folder',
    });
  });
});

describe('lock files are untrusted input', () => {
  it('parseLockInfo never throws, and accepts only well-typed holders', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.json(),
          fc.jsonValue().map((v) => JSON.stringify(v)),
        ),
        (text) => {
          const info = parseLockInfo(text);
          if (info) {
            expect(Number.isSafeInteger(info.pid) && info.pid > 0).toBe(true);
            for (const k of ['host', 'startedAt', 'command', 'nonce'] as const)
              expect(typeof info[k]).toBe('string');
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('whatever an old lock file holds, acquiring either succeeds or fails with E_LOCKED', () => {
    const good = holder({ pid: DEAD_PID });
    const mutated = fc.record(
      {
        pid: fc.oneof(fc.integer(), fc.constant(DEAD_PID), fc.string()),
        host: fc.oneof(fc.constant(hostname()), fc.string()),
        startedAt: fc.string(),
        nonce: fc.string(),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(
        fc.oneof(
          mutated.map((m) => JSON.stringify({ ...good, ...m })),
          fc.string(),
        ),
        (content) => {
          const dir = fresh();
          plant(dir, content);
          const old = new Date(Date.now() - 60_000);
          utimesSync(join(dir, LOCK_FILE), old, old);
          try {
            acquireDirLock(dir).release();
          } catch (e) {
            expect(isStrataError(e) && e.code === 'E_LOCKED').toBe(true);
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});
