/**
 * The part of `node:test` the engine's op tests use (describe, it, test), for running them in a
 * browser page: tests register when their file is imported and run in order with `runAll()`.
 */
type Body = () => unknown;
interface Registered {
  name: string;
  body: Body;
}

const registered: Registered[] = [];
const prefix: string[] = [];

function register(name: string, body: Body): void {
  registered.push({ name: [...prefix, name].join(' > '), body });
}

export function describe(name: string, a: unknown, b?: unknown): void {
  const body = (typeof a === 'function' ? a : b) as Body;
  prefix.push(name);
  try {
    body();
  } finally {
    prefix.pop();
  }
}

export function it(name: string, a: unknown, b?: unknown): void {
  register(name, (typeof a === 'function' ? a : b) as Body);
}

export const test = it;

export interface TestResult {
  name: string;
  ok: boolean;
  error?: string;
}

/** Runs every registered test (sequentially) and returns each result. */
export async function runAll(onResult?: (r: TestResult) => void): Promise<TestResult[]> {
  const results: TestResult[] = [];
  for (const t of registered) {
    let r: TestResult;
    try {
      await t.body();
      r = { name: t.name, ok: true };
    } catch (e) {
      r = { name: t.name, ok: false, error: e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : String(e) };
    }
    results.push(r);
    onResult?.(r);
  }
  return results;
}
