/**
 * Token ids from the command line: `--tokens 1,2,3` and `--tokens-json FILE`. Each error names the
 * flag or the file and the entry.
 */
import { readFileSync } from 'node:fs';
import { fsProblem } from '../io/fs-check.js';

/** Parses `{"tokens": [[...]], "attention_mask": [[...]] | null}`; errors name the file. */
export function readTokensJson(file: string): { tokens: number[][]; mask: number[][] | null } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`${file}: ${fsProblem(e)}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data))
    throw new Error(`${file}: expected a JSON object {"tokens": [[ids...]], "attention_mask": ...}, got ${describe(data)}`);
  const d = data as { tokens?: unknown; attention_mask?: unknown };
  const tokens = matrix(file, 'tokens', d.tokens, (v) => Number.isSafeInteger(v) && (v as number) >= 0, 'a token id (an integer from 0)');
  const len = tokens[0]!.length;
  let mask: number[][] | null = null;
  if (d.attention_mask !== undefined && d.attention_mask !== null) {
    mask = matrix(file, 'attention_mask', d.attention_mask, (v) => v === 0 || v === 1, '0 or 1');
    if (mask.length !== tokens.length || mask[0]!.length !== len)
      throw new Error(`${file}: "attention_mask" is ${mask.length} x ${mask[0]!.length}, but "tokens" is ${tokens.length} x ${len}`);
  }
  return { tokens, mask };
}

/** A non-empty list of equally long, non-empty rows of values `ok` accepts; errors name the first bad entry. */
function matrix(file: string, field: string, x: unknown, ok: (v: unknown) => boolean, what: string): number[][] {
  if (!Array.isArray(x) || x.length === 0)
    throw new Error(`${file}: "${field}" must be a non-empty list of rows (lists of ${what}), got ${describe(x)}`);
  x.forEach((row: unknown, r) => {
    if (!Array.isArray(row) || row.length === 0)
      throw new Error(`${file}: "${field}"[${r}] must be a non-empty list, got ${describe(row)}`);
    if (row.length !== (x[0] as unknown[]).length)
      throw new Error(
        `${file}: "${field}"[${r}] has ${row.length} entries, row 0 has ${(x[0] as unknown[]).length} (pad the rows and give an attention_mask)`,
      );
    row.forEach((v: unknown, c) => {
      if (!ok(v)) throw new Error(`${file}: "${field}"[${r}][${c}] is ${describe(v)}, not ${what}`);
    });
  });
  return x as number[][];
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return `a list of ${v.length}`;
  const s = JSON.stringify(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

/**
 * Comma-separated token ids ('313,312,316'): each a plain decimal integer, no empty entries; the
 * vocabulary bound is checked by the model.
 */
export function parseTokenIds(text: string, flag: string): number[] {
  const parts = text.split(',').map((s) => s.trim());
  return parts.map((s, i) => {
    if (!/^\d+$/.test(s))
      throw new Error(`${flag}: entry ${i + 1} ${s === '' ? 'is empty' : `('${s}') is not a token id (a non-negative integer)`}`);
    const v = Number(s);
    if (!Number.isSafeInteger(v)) throw new Error(`${flag}: token id ${s} is too large`);
    return v;
  });
}
