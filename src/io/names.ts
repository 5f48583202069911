/**
 * The nearest-name helper behind every "did you mean" in glassbox's errors (unknown tensors, hook
 * points, releases, fields): stated once, here.
 */

function levenshtein(a: string, b: string): number {
  if (a === b) return 0;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a.charCodeAt(i - 1) === b.charCodeAt(j - 1) ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/** The `k` names closest to `query`: names containing it (or contained in it) first, then by edit distance. */
export function nearestNames(query: string, names: Iterable<string>, k = 3): string[] {
  const scored: [number, string][] = [];
  for (const name of names) {
    const contains = name.includes(query) || query.includes(name);
    scored.push([contains ? Math.abs(name.length - query.length) / 1e6 : levenshtein(query, name), name]);
  }
  scored.sort((x, y) => x[0] - y[0] || (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0));
  return scored.slice(0, k).map(([, name]) => name);
}

/** ' (did you mean 'a', 'b'?)' with the names closest to `name`, or '' when there are none. */
export function didYouMean(name: string, candidates: Iterable<string>, k = 3): string {
  const best = nearestNames(name, candidates, k);
  return best.length ? ` (did you mean ${best.map((b) => `'${b}'`).join(', ')}?)` : '';
}
