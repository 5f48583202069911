/**
 * The fault suite's bookkeeping: each case is one bad (or tricky) input, and one expectation: a
 * clear error (an Error whose message matches every pattern, which name the file and the field or
 * tensor) or a correct result (checked by the case). Each outcome is counted:
 *
 * - clear: the expected refusal, with a message naming what is wrong where;
 * - correct: the input ran and its result was checked;
 * - crash: an error the case did not expect (a JavaScript TypeError/RangeError from deep inside,
 *   a message naming no file or field, a refusal of an input that should run);
 * - silent: no error where one was due, or a result that failed its check.
 *
 * The suite's last test prints the counts and asserts no crash and no silent wrong result.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

export type Outcome = 'clear' | 'correct' | 'crash' | 'silent';

export interface Case {
  name: string;
  /** Does the bad thing; returns what `check` examines. */
  run: () => unknown;
  /**
   * A refusal is expected whose message matches every pattern (a function is called after `run`,
   * for patterns naming what `run` built).
   */
  error?: RegExp | readonly RegExp[] | (() => readonly RegExp[]);
  /**
   * A result is expected, which this asserts is right (throwing when it is not). With `error` as
   * well, either outcome is right: a refusal matching `error`, or a result passing `check`.
   */
  check?: (result: unknown) => void;
}

export const tally: Record<Outcome, number> & { tried: number } = { tried: 0, clear: 0, correct: 0, crash: 0, silent: 0 };
export const failures: string[] = [];

/** JavaScript's own errors: an input that reached code not written for it. */
const INTERNAL = [TypeError, RangeError, ReferenceError, SyntaxError];

export async function classify(c: Case): Promise<{ outcome: Outcome; detail: string }> {
  let result: unknown;
  try {
    result = await c.run();
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const kind = e instanceof Error ? e.constructor.name : typeof e;
    if (!c.error) return { outcome: 'crash', detail: `expected a result, got ${kind}: ${msg}` };
    if (INTERNAL.some((k) => e instanceof k)) return { outcome: 'crash', detail: `${kind}: ${msg}` };
    const patterns = typeof c.error === 'function' ? c.error() : Array.isArray(c.error) ? c.error : [c.error as RegExp];
    const missed = patterns.filter((p) => !p.test(msg));
    if (missed.length) return { outcome: 'crash', detail: `unclear message (missing ${missed.join(', ')}): ${msg}` };
    return { outcome: 'clear', detail: msg };
  }
  if (!c.check) {
    if (c.error) return { outcome: 'silent', detail: 'expected a refusal, but it ran' };
    return { outcome: 'correct', detail: '' };
  }
  try {
    c.check(result);
  } catch (e) {
    return { outcome: 'silent', detail: `wrong result: ${e instanceof Error ? e.message : String(e)}` };
  }
  return { outcome: 'correct', detail: '' };
}

/** Registers `cases` as tests under `group`; each counts its outcome and fails unless clear or correct. */
export function registerCases(group: string, cases: () => Case[]): void {
  describe(group, () => {
    for (const c of cases())
      it(c.name, async () => {
        const { outcome, detail } = await classify(c);
        tally.tried++;
        tally[outcome]++;
        if (outcome === 'crash' || outcome === 'silent') failures.push(`${group} / ${c.name}: ${outcome}: ${detail}`);
        // FAULTS_VERBOSE=1 prints every case's outcome and message.
        if (process.env.FAULTS_VERBOSE) console.log(`${outcome.padEnd(7)} ${group} / ${c.name}${detail ? `: ${detail}` : ''}`);
        assert.ok(outcome === 'clear' || outcome === 'correct', `${outcome}: ${detail}`);
      });
  });
}

/** Escapes a string for use inside a RegExp. */
export function re(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
