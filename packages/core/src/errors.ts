/**
 * Errors that mean "the user asked for something invalid" rather than "Strata has a bug".
 *
 * The CLI prints a `StrataError` as one line (`error [code]: message`) with a non-zero exit and no stack
 * trace; anything else is a bug and is printed with its stack.
 */
export class StrataError extends Error {
  /** A stable machine-readable code, e.g. `E_CONFIG`, `E_DATA`, `E_CHECKPOINT`, `E_BACKEND`. */
  readonly code: StrataErrorCode;
  constructor(code: StrataErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StrataError';
    this.code = code;
  }
}

/** The kinds of user-facing failure. */
export type StrataErrorCode =
  | 'E_CONFIG'
  | 'E_DATA'
  | 'E_CHECKPOINT'
  | 'E_SAFETENSORS'
  | 'E_BACKEND'
  | 'E_PLUGIN'
  | 'E_USAGE'
  | 'E_IO'
  | 'E_LOCKED'
  | 'E_MEMORY'
  | 'E_DIVERGED'
  | 'E_GROWTH';

/** True when `e` is a {@link StrataError} (works across duplicated module copies). */
export function isStrataError(e: unknown): e is StrataError {
  return e instanceof Error && e.name === 'StrataError' && typeof (e as StrataError).code === 'string';
}

/** Formats a list of valid choices for an error message: `"a", "b" or "c"`. */
export function formatChoices(choices: readonly string[]): string {
  const q = choices.map((c) => `"${c}"`);
  if (q.length === 0) return '(none registered)';
  if (q.length === 1) return q[0]!;
  return `${q.slice(0, -1).join(', ')} or ${q[q.length - 1]}`;
}
