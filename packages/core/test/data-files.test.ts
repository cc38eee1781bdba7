import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { binaryReason, firstInvalidUtf8, loadTextSource, TEXT_EXTENSIONS } from '../src/data/files.js';
import { isStrataError } from '../src/errors.js';

const root = mkdtempSync(join(tmpdir(), 'strata-data-files-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let counter = 0;
function file(name: string, content: string | Uint8Array): string {
  const dir = join(root, `f${counter++}`);
  mkdirSync(dir, { recursive: true });
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}
function folder(files: Record<string, string | Uint8Array>): string {
  const dir = join(root, `d${counter++}`);
  mkdirSync(dir, { recursive: true });
  for (const [rel, content] of Object.entries(files)) {
    const p = join(dir, rel);
    mkdirSync(join(p, '..'), { recursive: true });
    writeFileSync(p, content);
  }
  return dir;
}

/** Runs `fn`, expects an E_DATA StrataError, returns its message. */
async function dataError(fn: () => Promise<unknown>): Promise<string> {
  let err: unknown;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  expect(isStrataError(err), `expected a StrataError, got ${String(err)}`).toBe(true);
  expect((err as { code: string }).code).toBe('E_DATA');
  return (err as Error).message;
}

describe('loadTextSource: files', () => {
  it('loads a text file of any extension', async () => {
    const p = file('notes.log', 'line one\nline two 🎉\n');
    const src = await loadTextSource(p);
    expect(src.text).toBe('line one\nline two 🎉\n');
    expect(src.documents).toEqual([src.text]);
    expect(src.source).toContain(p);
  });

  it('drops a BOM and normalizes CRLF', async () => {
    const p = file('win.txt', '\ufeffa\r\nb\r\n');
    expect((await loadTextSource(p)).text).toBe('a\nb\n');
  });

  it('fails for a missing path, naming it', async () => {
    const p = join(root, 'no-such-file.txt');
    const msg = await dataError(() => loadTextSource(p));
    expect(msg).toContain(p);
    expect(msg).toMatch(/does not exist/);
    const p2 = join(root, 'missing-dir', 'deeper', 'x.txt');
    expect(await dataError(() => loadTextSource(p2))).toContain(p2);
  });

  it('fails for an empty or whitespace-only file', async () => {
    for (const content of ['', ' \n\n\t ']) {
      const p = file('empty.txt', content);
      const msg = await dataError(() => loadTextSource(p));
      expect(msg).toContain(p);
      expect(msg).toMatch(/empty/);
    }
  });

  it('fails for a binary file (NUL byte)', async () => {
    const p = file('model.txt', new Uint8Array([0x68, 0x69, 0x00, 0x01, 0x02]));
    const msg = await dataError(() => loadTextSource(p));
    expect(msg).toContain(p);
    expect(msg).toMatch(/binary/);
    expect(msg).toMatch(/NUL byte at offset 2/);
  });

  it('fails for a file of mostly control characters', async () => {
    const bytes = new Uint8Array(1000);
    for (let i = 0; i < bytes.length; i++) bytes[i] = i % 2 === 0 ? 0x41 : 0x01 + (i % 7);
    const p = file('ctrl.bin', bytes);
    const msg = await dataError(() => loadTextSource(p));
    expect(msg).toContain(p);
    expect(msg).toMatch(/50% control characters/);
  });

  it('fails for invalid UTF-8, reporting the byte offset', async () => {
    const cases: [number[], number][] = [
      [[0x61, 0x62, 0x63, 0xff, 0x64], 3], // invalid lead byte
      [[0x61, 0xe9, 0x74, 0xe9], 1], // latin1 "été"
      [[0x61, 0x62, 0xf0, 0x9f, 0x98], 2], // truncated emoji at the end
      [[0x61, 0xc0, 0xaf], 1], // overlong
      [[0x61, 0x61, 0xed, 0xa0, 0x80], 2], // UTF-16 surrogate
      [[0xc3, 0xa9, 0x20, 0x80], 3], // lone continuation byte
    ];
    for (const [bytes, offset] of cases) {
      const p = file('latin.txt', new Uint8Array(bytes));
      const msg = await dataError(() => loadTextSource(p));
      expect(msg).toContain(p);
      expect(msg).toMatch(/not valid UTF-8/);
      expect(msg).toContain(`offset ${offset}`);
    }
  });
});

describe('loadTextSource: folders', () => {
  it('reads accepted files recursively in sorted order, skipping hidden ones and other extensions', async () => {
    const dir = folder({
      'b.txt': 'B',
      'a.md': 'A',
      'sub/c.py': 'C',
      'sub/deeper/d.jsonl': '{"d":1}',
      README: 'R',
      'Z.TXT': 'Z',
      '.hidden.txt': 'hidden',
      '.git/config.txt': 'hidden dir',
      'image.png': 'not taken',
      'data.bin': 'not taken',
      'empty.txt': '',
      blob: new Uint8Array([0, 1, 2, 3]), // binary without extension: skipped
    });
    const src = await loadTextSource(dir);
    // code-unit order of relative paths: README, Z.TXT, a.md, b.txt, sub/c.py, sub/deeper/d.jsonl
    expect(src.documents).toEqual(['R', 'Z', 'A', 'B', 'C', '{"d":1}']);
    expect(src.text).toBe('R\n\nZ\n\nA\n\nB\n\nC\n\n{"d":1}');
    expect(src.source).toContain(dir);
    expect(src.source).toMatch(/6 files, 2 empty or binary skipped/);
    // deterministic
    expect(await loadTextSource(dir)).toEqual(src);
  });

  it('follows symlinks without looping', async () => {
    const dir = folder({ 'a.txt': 'A' });
    symlinkSync(dir, join(dir, 'loop'));
    const src = await loadTextSource(dir);
    expect(src.documents).toEqual(['A']);
  });

  it('fails for a folder without text files, listing the accepted extensions', async () => {
    const cases: Record<string, string>[] = [{}, { 'x.png': 'p', '.secret.txt': 's' }];
    for (const files of cases) {
      const dir = folder(files);
      const msg = await dataError(() => loadTextSource(dir));
      expect(msg).toContain(dir);
      expect(msg).toMatch(/no text files/);
      for (const ext of TEXT_EXTENSIONS) expect(msg).toContain(ext);
    }
  });

  it('fails for a folder whose candidate files are all empty', async () => {
    const dir = folder({ 'a.txt': '', 'b.md': '\n' });
    const msg = await dataError(() => loadTextSource(dir));
    expect(msg).toContain(dir);
    expect(msg).toMatch(/no text: its 2 candidate file\(s\) are empty or binary/);
  });

  it('names the offending file inside a folder', async () => {
    const dir = folder({ 'ok.txt': 'fine', 'sub/bad.txt': new Uint8Array([0x61, 0xff]) });
    const msg = await dataError(() => loadTextSource(dir));
    expect(msg).toContain(join(dir, 'sub', 'bad.txt'));
    expect(msg).toContain('offset 1');
    const dir2 = folder({ 'ok.txt': 'fine', 'weights.json': new Uint8Array([0x7b, 0, 0, 0]) });
    const msg2 = await dataError(() => loadTextSource(dir2));
    expect(msg2).toContain(join(dir2, 'weights.json'));
    expect(msg2).toMatch(/binary/);
  });
});

describe('firstInvalidUtf8 / binaryReason', () => {
  it('agrees with a fatal TextDecoder on random bytes', () => {
    const fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 40 }),
        fc.string({ unit: 'binary', maxLength: 10 }),
        (noise, s) => {
          const bytes = new Uint8Array([...new TextEncoder().encode(s), ...noise]);
          let valid = true;
          try {
            fatal.decode(bytes);
          } catch {
            valid = false;
          }
          const off = firstInvalidUtf8(bytes);
          expect(off === -1).toBe(valid);
          if (!valid) {
            // everything before the offset is valid, and the offset is not inside the valid prefix `s`
            expect(() => fatal.decode(bytes.subarray(0, off))).not.toThrow();
            expect(off).toBeGreaterThanOrEqual(new TextEncoder().encode(s).length);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('treats text with tabs, newlines and ANSI escapes as text', () => {
    expect(binaryReason(new TextEncoder().encode('a\tb\r\nc\u001b[31mred\u001b[0m\f'))).toBeUndefined();
    expect(binaryReason(new Uint8Array([0x41, 0]))).toMatch(/NUL/);
  });
});
