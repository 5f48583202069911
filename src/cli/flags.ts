/**
 * Checks of command-line values (commander hands them over as strings). Each error names the flag
 * and the value, and becomes the one-line message the CLI prints.
 */

/** An integer >= min (and <= max when given); underscores are allowed as digit separators (2_000_000). */
export function intFlag(name: string, v: string, min?: number, max?: number): number;
export function intFlag(name: string, v: string | undefined, min?: number, max?: number): number | undefined;
export function intFlag(name: string, v: string | undefined, min = 1, max?: number): number | undefined {
  if (v === undefined) return undefined;
  const s = v.trim().replace(/_/g, '');
  const n = Number(s);
  if (!/^[+-]?\d+$/.test(s) || !Number.isSafeInteger(n) || n < min || (max !== undefined && n > max))
    throw new Error(`--${name} must be an integer ${max === undefined ? `>= ${min}` : `in ${min}..${max}`}, got '${v}'`);
  return n;
}

/** A finite number in [lo, hi]. */
export function numFlag(name: string, v: string, lo?: number, hi?: number): number;
export function numFlag(name: string, v: string | undefined, lo?: number, hi?: number): number | undefined;
export function numFlag(name: string, v: string | undefined, lo = -Infinity, hi = Infinity): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < lo || n > hi)
    throw new Error(`--${name} must be a number in [${lo}, ${hi}], got '${v}'`);
  return n;
}

/** One of the allowed words. */
export function oneOfFlag<T extends string>(name: string, v: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(v)) throw new Error(`--${name} must be one of ${allowed.join(', ')}, got '${v}'`);
  return v as T;
}

/** The help of every model argument and --model flag: what `loadModel` accepts. */
export const MODEL_SPEC_HELP = "'default', a model directory or a hub id";
