import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { isStrataError } from '@strata/core';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCommandArgs } from '../src/args.js';
import { escapeControls } from '../src/commands/generate.js';
import { type DataSpec, dataRecord, locateData } from '../src/run-training.js';
import { generateSpec } from '../src/specs.js';

const tmp = mkdtempSync(join(tmpdir(), 'strata-records-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const data = join(tmp, 'data.txt');
writeFileSync(data, 'text');
const ckpt = join(tmp, 'run', 'checkpoint');

describe('recorded data paths are untrusted input', () => {
  it('dataRecord round-trips through locateData', () => {
    const rec = dataRecord({ kind: 'files', path: data }, ckpt);
    expect(rec).toEqual({ kind: 'files', path: data, relativePath: join('..', '..', 'data.txt') });
    expect(locateData(rec, ckpt, '')).toEqual({ kind: 'files', path: data });
    // Only the relative path still leads to the data: it is used.
    expect(locateData({ ...rec, path: '/nowhere/data.txt' } as DataSpec, ckpt, '')).toEqual({
      kind: 'files',
      path: resolve(ckpt, '..', '..', 'data.txt'),
    });
  });

  it('locateData returns an existing path or fails with E_DATA, whatever the record holds', () => {
    fc.assert(
      fc.property(fc.string(), fc.option(fc.string(), { nil: undefined }), (path, relativePath) => {
        const spec = {
          kind: 'files',
          path,
          ...(relativePath !== undefined ? { relativePath } : {}),
        } as DataSpec;
        try {
          const found = locateData(spec, ckpt, 'hint');
          expect(found.kind).toBe('files');
        } catch (e) {
          expect(isStrataError(e) && e.code === 'E_DATA').toBe(true);
          expect((e as Error).message).toMatch(/is gone: tried .*; hint$/s);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('terminal output', () => {
  it('escapeControls leaves no character a terminal would act on, and keeps the rest', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        const acts = (ch: string) => {
          const c = ch.codePointAt(0)!;
          return (c < 0x20 && ch !== '\n' && ch !== '\t') || (c >= 0x7f && c <= 0x9f);
        };
        const out = escapeControls(text);
        expect([...out].some(acts)).toBe(false);
        if (![...text].some(acts)) expect(out).toBe(text);
        // Nothing else changes: removing the escapes of the controls gives the input back.
        expect(
          out.replace(/\\x([0-9a-f]{2})/g, (_m, h: string) => String.fromCharCode(Number.parseInt(h, 16))),
        ).toBe(
          text.replace(/\\x([0-9a-f]{2})/g, (_m, h: string) => String.fromCharCode(Number.parseInt(h, 16))),
        );
      }),
      { numRuns: 500 },
    );
  });
});

describe('flag minimums', () => {
  it('a number below an option minimum is a usage error naming the flag', () => {
    fc.assert(
      fc.property(fc.integer({ min: -1e6, max: 1e6 }), (n) => {
        try {
          const args = parseCommandArgs(generateSpec, [`--max-tokens=${n}`]);
          expect(n).toBeGreaterThanOrEqual(0);
          expect(args['max-tokens']).toBe(n);
        } catch (e) {
          expect((e as Error).name).toBe('UsageError');
          expect((e as Error).message).toBe(`--max-tokens must be at least 0, got ${n}`);
        }
      }),
      { numRuns: 200 },
    );
  });
});
