/**
 * The progress bar every long job draws on a terminal (downloads, training), so all of them look
 * and behave alike: cli-progress on stderr, cursor hidden while it runs.
 */
import type { SingleBar } from 'cli-progress';

/** A cli-progress bar on stderr with `format` (cli-progress placeholders), not yet started. */
export async function stderrBar(format: string, fps: number): Promise<SingleBar> {
  const { default: cli } = await import('cli-progress');
  return new cli.SingleBar({ stream: process.stderr, hideCursor: true, format, etaBuffer: 50, fps }, cli.Presets.shades_classic);
}

/** 1234567 -> '1.2 MB' (decimal units, as the Hub shows sizes). */
export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

/** 75 -> '1m15s', 7200 -> '2h00m'. */
export function formatSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.round((s % 3600) / 60)).padStart(2, '0')}m`;
}
