/**
 * What the commands write besides their printed report: one JSON file, indented, written atomically
 * (a crash leaves the old file or the new one, never half of one).
 */
import { writeFileAtomic } from '../io/atomic.js';

/** Writes `data` to `file` as indented JSON with a final newline; no file (an unset `--json`) writes nothing. */
export function writeJson(file: string | undefined, data: unknown): void {
  if (file) writeFileAtomic(file, `${JSON.stringify(data, null, 2)}\n`);
}
