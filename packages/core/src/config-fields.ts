/**
 * Field validators shared by every config parser (model families, training). Each returns the value or
 * throws a {@link StrataError} (`E_CONFIG`) naming the field as `<section>.<key>` and what would be valid.
 *
 * ```ts
 * const f = configFields('model', raw);
 * const dModel = f.int('dModel', 1, 65536);
 * ```
 */
import { formatChoices, StrataError } from './errors.js';

/** Validators bound to one raw config object and its section name (e.g. `model`, `train`). */
export interface ConfigFields {
  /** An integer in `[min, max]`. */
  int(key: string, min: number, max?: number): number;
  /** A finite number in `[lo, hi]` (or `(lo, hi]` with `loOpen`). */
  num(key: string, lo: number, hi: number, loOpen?: boolean): number;
  /** A number, or `derived` when the field is `null` (a default computed from other fields). */
  numOr(key: string, derived: number, lo: number, hi: number, loOpen?: boolean): number;
  /** One of `values`. */
  oneOf<T extends string>(key: string, values: readonly T[]): T;
  /** A boolean. */
  bool(key: string): boolean;
}

/** Creates the validators for `raw` (a config with defaults already merged in). */
export function configFields(section: string, raw: Readonly<Record<string, unknown>>): ConfigFields {
  const fail = (key: string, what: string) => {
    throw new StrataError('E_CONFIG', `${section}.${key} must be ${what}, got ${JSON.stringify(raw[key])}`);
  };
  const num = (key: string, lo: number, hi: number, loOpen = false): number => {
    const v = raw[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi || (loOpen && v === lo)) {
      fail(key, `a number in ${loOpen ? '(' : '['}${lo}, ${hi}]`);
    }
    return v as number;
  };
  return {
    int(key, min, max = Number.MAX_SAFE_INTEGER) {
      const v = raw[key];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
        fail(key, `an integer in [${min}, ${max}]`);
      return v as number;
    },
    num,
    numOr: (key, derived, lo, hi, loOpen = false) => (raw[key] === null ? derived : num(key, lo, hi, loOpen)),
    oneOf(key, values) {
      const v = raw[key];
      if (typeof v !== 'string' || !values.includes(v as never)) fail(key, formatChoices(values));
      return v as (typeof values)[number];
    },
    bool(key) {
      if (typeof raw[key] !== 'boolean') fail(key, 'true or false');
      return raw[key] as boolean;
    },
  };
}

/**
 * Checks that `input` is an object whose keys are all in `keys` and returns it with `defaults` under it
 * (`undefined` values fall back to the default).
 */
export function withDefaults(
  what: string,
  input: unknown,
  defaults: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  if (input == null || typeof input !== 'object' || Array.isArray(input)) {
    throw new StrataError('E_CONFIG', `${what} must be an object, got ${JSON.stringify(input)}`);
  }
  const keys = Object.keys(defaults);
  const out: Record<string, unknown> = { ...defaults };
  for (const [k, v] of Object.entries(input as Record<string, unknown>)) {
    if (!keys.includes(k))
      throw new StrataError('E_CONFIG', `unknown ${what} key "${k}"; valid keys: ${formatChoices(keys)}`);
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** Up to three divisors of `d` near `h` (for "dModel must be divisible by nHeads" hints). */
export function divisorsNear(
  d: number,
  h: number,
  accept: (divisor: number) => boolean = () => true,
): string {
  const divs: number[] = [];
  for (let i = 1; i <= Math.min(d, 64); i++) if (d % i === 0 && accept(i)) divs.push(i);
  divs.sort((a, b) => Math.abs(a - h) - Math.abs(b - h));
  return divs
    .slice(0, 3)
    .sort((a, b) => a - b)
    .join(', ');
}
