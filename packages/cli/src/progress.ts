/** Formats seconds as `1h02m`, `3m05s` or `12s`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}

/** Formats a count as `950`, `12.3k`, `4.1M`. */
export function formatCount(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return `${Math.round(n)}`;
}

/**
 * Whether {@link Progress} prints JSON lines on stdout (with `--json`, or when stderr is not a terminal, or
 * under `CI=true`) rather than a bar on stderr. Commands then keep plain text off stdout.
 */
export function progressIsJson(json: boolean, stream: NodeJS.WriteStream = process.stderr): boolean {
  return json || !stream.isTTY || process.env.CI === 'true';
}

/** What a progress update shows. */
export interface ProgressUpdate {
  step: number;
  total: number;
  loss: number;
  tokensPerSec: number;
  /** Extra fields for the JSON line (and short text after the bar). */
  extra?: Record<string, unknown>;
  note?: string;
}

/**
 * Progress for long work: a one-line bar (step, loss, tokens/s, ETA) on a terminal, JSON lines otherwise
 * (or with `--json`). ETA uses an exponential moving average of the step time.
 */
export class Progress {
  private readonly tty: boolean;
  private avgStep = 0;
  private last = performance.now();
  private lastStep: number | undefined;
  private drawn = false;

  constructor(
    private readonly label: string,
    options: { json?: boolean; stream?: NodeJS.WriteStream } = {},
  ) {
    this.stream = options.stream ?? process.stderr;
    this.tty = !progressIsJson(!!options.json, this.stream);
  }
  private readonly stream: NodeJS.WriteStream;

  update(u: ProgressUpdate): void {
    const now = performance.now();
    // Seconds per step, from the time and the steps since the last update (callers may update every few steps).
    const steps = this.lastStep === undefined ? 1 : u.step - this.lastStep;
    const dt = (now - this.last) / 1000;
    if (steps > 0) {
      const perStep = dt / steps;
      this.avgStep = this.avgStep === 0 ? perStep : 0.9 * this.avgStep + 0.1 * perStep;
      this.last = now;
      this.lastStep = u.step;
    }
    const eta = this.avgStep * (u.total - u.step);
    if (!this.tty) {
      process.stdout.write(
        `${JSON.stringify({ event: 'progress', task: this.label, step: u.step, total: u.total, loss: round(u.loss), tokensPerSec: Math.round(u.tokensPerSec), etaSeconds: Math.round(eta), ...(u.extra ?? {}) })}\n`,
      );
      return;
    }
    const width = Math.max(10, Math.min(30, (this.stream.columns ?? 100) - 80));
    const frac = u.total > 0 ? u.step / u.total : 1;
    const filled = Math.round(frac * width);
    const bar = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
    const line = `${this.label} ${bar} ${u.step}/${u.total} loss ${u.loss.toFixed(4)} ${formatCount(u.tokensPerSec)} tok/s ETA ${formatDuration(eta)}${u.note ? ` ${u.note}` : ''}`;
    this.stream.write(`\r\x1b[2K${line.slice(0, (this.stream.columns ?? 200) - 1)}`);
    this.drawn = true;
  }

  /** Prints a message above the bar (or as a JSON line). */
  log(message: string, data?: Record<string, unknown>): void {
    if (!this.tty) {
      process.stdout.write(
        `${JSON.stringify({ event: 'log', task: this.label, message, ...(data ?? {}) })}\n`,
      );
      return;
    }
    this.stream.write(`${this.drawn ? '\r\x1b[2K' : ''}${message}\n`);
  }

  /** Ends the bar line. */
  done(): void {
    if (this.tty && this.drawn) this.stream.write('\n');
    this.drawn = false;
  }
}

function round(x: number): number {
  return Number.isFinite(x) ? Math.round(x * 1e5) / 1e5 : x;
}
