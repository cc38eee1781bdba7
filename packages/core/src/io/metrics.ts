/**
 * Metrics files: JSON lines, one object per logged step (e.g. `{"step": 100, "loss": 2.31, ...}`).
 *
 * Non-finite numbers, which JSON cannot hold, are written as the strings `"NaN"`, `"Infinity"` and
 * `"-Infinity"` and read back as numbers, so a diverged run's curve keeps its NaN.
 *
 * @module
 */
import * as fs from 'node:fs';
import { StrataError } from '../errors.js';
import { errnoCode, ioError, writeFileAtomic } from './atomic.js';

/** One metrics record, as written and read. */
export type MetricsRecord = Record<string, unknown>;

const NON_FINITE: Record<string, number> = { NaN: Number.NaN, Infinity: Infinity, '-Infinity': -Infinity };

function replaceNonFinite(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? String(value) : value;
}

function reviveNonFinite(_key: string, value: unknown): unknown {
  return typeof value === 'string' && Object.hasOwn(NON_FINITE, value) ? NON_FINITE[value] : value;
}

/** A parsed line: its text (without the newline) and its record. */
interface MetricsLine {
  text: string;
  record: MetricsRecord;
}

/**
 * Parses JSON-lines text. Blank lines are skipped; an unparseable last line without a trailing newline is a
 * write cut short by a crash and is dropped; any other bad line is an error.
 */
function parseMetricsText(text: string, path: string): MetricsLine[] {
  const lines = text.split('\n');
  const out: MetricsLine[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    if (line.trim() === '') continue;
    const truncatedTail = i === lines.length - 1; // no newline after it
    let record: unknown;
    try {
      record = JSON.parse(line, reviveNonFinite);
    } catch (err) {
      if (truncatedTail) break;
      throw new StrataError('E_IO', `${path}:${i + 1}: corrupt metrics line (${(err as Error).message})`);
    }
    if (typeof record !== 'object' || record === null || Array.isArray(record)) {
      if (truncatedTail) break;
      throw new StrataError('E_IO', `${path}:${i + 1}: corrupt metrics line (not a JSON object)`);
    }
    out.push({ text: line, record: record as MetricsRecord });
  }
  return out;
}

/** Reads a metrics file's text; `undefined` when it does not exist and `missingOk`. */
function readText(path: string, missingOk: boolean): string | undefined {
  try {
    return fs.readFileSync(path, 'utf8');
  } catch (err) {
    if (missingOk && errnoCode(err) === 'ENOENT') return undefined;
    throw ioError(err, 'read', path);
  }
}

/**
 * Reads a JSON-lines metrics file into records, in file order. A truncated last line (a crash mid-write) is
 * skipped.
 *
 * @throws StrataError `E_IO` when the file cannot be read, or a line other than the last is corrupt
 *   (`<path>:<line>: corrupt metrics line ...`).
 */
export function readMetrics(path: string): MetricsRecord[] {
  return parseMetricsText(readText(path, false)!, path).map((l) => l.record);
}

/** Options of {@link MetricsWriter.open}. */
export interface MetricsOpenOptions {
  /**
   * Continue an existing file after resuming from this step: records whose numeric `step` is greater are
   * dropped (they were logged after the checkpoint and will be logged again), as is a truncated last line;
   * records without a numeric `step` are kept. The file is rewritten atomically. Without this option the
   * file is started afresh.
   */
  resumeFromStep?: number;
}

/**
 * Appends metrics records to a JSON-lines file, one line per {@link MetricsWriter.write}, each handed to
 * the operating system immediately (a killed process loses at most the line being written).
 */
export class MetricsWriter {
  /** The file being written. */
  readonly path: string;
  private fd: number | undefined;

  private constructor(path: string, fd: number) {
    this.path = path;
    this.fd = fd;
  }

  /**
   * Opens `path` for writing (atomically replacing it with its kept records, or with nothing), creating
   * missing parent directories.
   *
   * @throws StrataError `E_IO` when the file cannot be read (resume), rewritten or opened.
   */
  static async open(path: string, options: MetricsOpenOptions = {}): Promise<MetricsWriter> {
    const { resumeFromStep } = options;
    let content = '';
    if (resumeFromStep !== undefined) {
      const text = readText(path, true) ?? '';
      const kept = parseMetricsText(text, path).filter(
        (l) => typeof l.record.step !== 'number' || l.record.step <= resumeFromStep,
      );
      content = kept.map((l) => `${l.text}\n`).join('');
    }
    await writeFileAtomic(path, content);
    try {
      return new MetricsWriter(path, fs.openSync(path, 'a'));
    } catch (err) {
      throw ioError(err, 'open', path);
    }
  }

  /**
   * Appends `record` as one JSON line (non-finite numbers as strings, see the module notes).
   *
   * @throws StrataError `E_IO` when the disk fails; `Error` after {@link MetricsWriter.close}.
   */
  write(record: MetricsRecord): void {
    if (this.fd === undefined) throw new Error(`MetricsWriter for ${this.path} is closed`);
    const bytes = Buffer.from(`${JSON.stringify(record, replaceNonFinite)}\n`, 'utf8');
    try {
      let written = 0;
      while (written < bytes.length) written += fs.writeSync(this.fd, bytes, written, bytes.length - written);
    } catch (err) {
      throw ioError(err, 'write', this.path);
    }
  }

  /** Flushes the file to disk and closes it. Closing twice is harmless. */
  close(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    try {
      fs.fsyncSync(fd);
    } catch {
      // Durability of metrics is best effort; the records are already with the operating system.
    } finally {
      fs.closeSync(fd);
    }
  }
}
