/**
 * The part of `node:assert/strict` the engine's op tests use, for running them in a browser page.
 * Equality is strict (Object.is for primitives; deep equality compares constructors, typed
 * arrays element by element, and own enumerable keys), as in Node's strict mode.
 */
class AssertionError extends Error {
  override name = 'AssertionError';
}

function show(v: unknown): string {
  try {
    return typeof v === 'bigint'
      ? `${v}n`
      : (JSON.stringify(v, (_k, x: unknown) =>
          typeof x === 'bigint' ? `${x}n` : ArrayBuffer.isView(x) ? Array.from(x as unknown as ArrayLike<number>) : x,
        ) ?? String(v));
  } catch {
    return String(v);
  }
}

function deepEqualValues(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  if (ArrayBuffer.isView(a)) {
    const x = a as unknown as ArrayLike<unknown>;
    const y = b as unknown as ArrayLike<unknown>;
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) return false;
    return true;
  }
  if (a instanceof Map || a instanceof Set) return deepEqualValues([...a], [...(b as Map<unknown, unknown>)]);
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every(
    (k) =>
      Object.prototype.hasOwnProperty.call(b, k) && deepEqualValues((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
  );
}

function fail(message?: string | Error): never {
  if (message instanceof Error) throw message;
  throw new AssertionError(message ?? 'Failed');
}

function ok(value: unknown, message?: string | Error): asserts value {
  if (!value) fail(message ?? `expected a truthy value, got ${show(value)}`);
}

function equal(actual: unknown, expected: unknown, message?: string | Error): void {
  if (!Object.is(actual, expected)) fail(message ?? `expected ${show(expected)}, got ${show(actual)}`);
}

function notEqual(actual: unknown, expected: unknown, message?: string | Error): void {
  if (Object.is(actual, expected)) fail(message ?? `expected a value other than ${show(expected)}`);
}

function deepEqual(actual: unknown, expected: unknown, message?: string | Error): void {
  if (!deepEqualValues(actual, expected)) fail(message ?? `expected ${show(expected)}, got ${show(actual)}`);
}

function notDeepEqual(actual: unknown, expected: unknown, message?: string | Error): void {
  if (deepEqualValues(actual, expected)) fail(message ?? `expected a value other than ${show(expected)}`);
}

type Expected = RegExp | ((e: unknown) => boolean) | (new (...args: never[]) => unknown) | Record<string, unknown>;

function matches(e: unknown, expected: Expected | undefined): boolean {
  if (expected === undefined) return true;
  if (expected instanceof RegExp) return expected.test(e instanceof Error ? e.message : String(e)) || expected.test(String(e));
  if (typeof expected === 'function') {
    if (expected.prototype !== undefined && e instanceof (expected as new () => unknown)) return true;
    if (Object.prototype.isPrototypeOf.call(Error, expected) || expected === Error) return false;
    return (expected as (e: unknown) => boolean)(e) === true;
  }
  return Object.entries(expected).every(([k, v]) => {
    const got = (e as Record<string, unknown>)[k];
    return v instanceof RegExp ? typeof got === 'string' && v.test(got) : deepEqualValues(got, v);
  });
}

function throws(fn: () => unknown, expected?: Expected | string, message?: string): void {
  const want = typeof expected === 'string' ? undefined : expected;
  try {
    fn();
  } catch (e) {
    if (!matches(e, want)) fail(message ?? `the error did not match ${String(want)}: ${e instanceof Error ? e.message : String(e)}`);
    return;
  }
  fail(typeof expected === 'string' ? expected : (message ?? 'expected the function to throw'));
}

async function rejects(p: Promise<unknown> | (() => Promise<unknown>), expected?: Expected, message?: string): Promise<void> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    if (!matches(e, expected))
      fail(message ?? `the rejection did not match ${String(expected)}: ${e instanceof Error ? e.message : String(e)}`);
    return;
  }
  fail(message ?? 'expected the promise to reject');
}

const assert = Object.assign((value: unknown, message?: string | Error) => ok(value, message), {
  ok,
  equal,
  notEqual,
  deepEqual,
  notDeepEqual,
  strictEqual: equal,
  deepStrictEqual: deepEqual,
  fail,
  throws,
  rejects,
  AssertionError,
});

export default assert;
