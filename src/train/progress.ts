/**
 * What long training loops share: the progress display, the step rate, and metrics.jsonl's
 * truncation on resume.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../io/atomic.js';
import { formatSeconds, stderrBar } from '../io/progress.js';

/** A metrics.jsonl record. */
export type MetricsRecord = Record<string, number | string>;

/**
 * Drops log records after `step` (they belong to steps the resumed run will redo) and returns the
 * records kept, so a resumed run's history covers the whole run.
 */
export function truncateMetrics(file: string, step: number): MetricsRecord[] {
  if (!existsSync(file)) return [];
  const kept: MetricsRecord[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      const record = JSON.parse(line) as MetricsRecord;
      if ((record.step as number) <= step) kept.push(record);
    } catch {
      // a line cut short by a crash
    }
  }
  writeFileAtomic(file, kept.map((r) => JSON.stringify(r) + '\n').join(''));
  return kept;
}

/**
 * The run's log: each record goes to `history`, is appended to metrics.jsonl (when there is one)
 * and is handed to `onLog`.
 */
export function metricsLogger(
  history: MetricsRecord[],
  metricsFile: string | null | undefined,
  onLog?: (record: MetricsRecord) => void,
): (record: MetricsRecord) => void {
  return (record) => {
    history.push(record);
    if (metricsFile) appendFileSync(metricsFile, JSON.stringify(record) + '\n');
    onLog?.(record);
  };
}

/**
 * Steps per second over a window that restarts every 5 seconds: call the returned function once
 * after each step; it returns the current rate.
 */
export function stepRate(): () => number {
  let windowStart = performance.now();
  let windowSteps = 0;
  return () => {
    windowSteps++;
    const now = performance.now();
    const rate = (windowSteps * 1000) / Math.max(1e-9, now - windowStart);
    if (now - windowStart > 5000) {
      windowStart = now;
      windowSteps = 0;
    }
    return rate;
  };
}

export interface Progress {
  update(step: number, info: { loss: number; rate: number; unit: string }): void;
  stop(): void;
}

/**
 * A cli-progress bar on a terminal (step, loss, rate, ETA), plain lines about every 10% of the run
 * in logs, or nothing. `label` starts each line ('train', 'sae').
 */
export async function makeProgress(mode: boolean | 'auto', start: number, total: number, label: string): Promise<Progress> {
  const tty = Boolean(process.stderr.isTTY);
  if (mode === false || (mode === 'auto' && !tty)) return { update: () => undefined, stop: () => undefined };
  if (!tty) {
    // Plain lines, about every 10% of the run (logs of non-interactive jobs).
    const every = Math.max(1, Math.ceil(total / 10));
    const t0 = performance.now();
    return {
      update(step, info) {
        if (step % every !== 0 && step !== total) return;
        const secs = (performance.now() - t0) / 1000;
        const eta = step > start ? (secs / (step - start)) * (total - step) : 0;
        process.stderr.write(
          `${label} step ${step}/${total} loss ${info.loss.toFixed(4)} ${info.rate.toFixed(1)} ${info.unit} eta ${formatSeconds(eta)}\n`,
        );
      },
      stop: () => undefined,
    };
  }
  const bar = await stderrBar(
    `${label} [{bar}] {percentage}% | step {value}/{total} | loss {loss} | {rate} {unit} | ETA {eta_formatted}`,
    5,
  );
  bar.start(total, start, { loss: '-', rate: '-', unit: '' });
  return {
    update: (step, info) => bar.update(step, { loss: info.loss.toFixed(4), rate: info.rate.toFixed(1), unit: info.unit }),
    stop: () => bar.stop(),
  };
}
