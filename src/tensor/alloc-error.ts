/**
 * ONNX Runtime's allocation failures, as their own error: the message names the bytes asked for
 * and says what to reduce, and the layers above (a model run, a sweep) add what they know (the
 * batch and sequence, the memory budget).
 */

/** A run that ONNX Runtime could not allocate memory for. */
export class OutOfMemoryError extends Error {
  /** The buffer ONNX Runtime asked for, in bytes (null when its message did not say). */
  readonly bytes: number | null;
  constructor(message: string, bytes: number | null, options?: ErrorOptions) {
    super(message, options);
    this.name = 'OutOfMemoryError';
    this.bytes = bytes;
  }
}

/** The bytes of an ONNX Runtime allocation failure's message, -1 when it gives none, null for other errors. */
export function ortAllocationBytes(e: unknown): number | null {
  const msg = e instanceof Error ? e.message : String(e);
  const m = /Failed to allocate memory for requested buffer of size (\d+)/.exec(msg);
  if (m) return Number(m[1]);
  return /bad_alloc|Failed to allocate memory|std::bad_alloc/i.test(msg) ? -1 : null;
}

/** '1.5 GiB', '300 MiB', '12 KiB'. */
export function formatBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}
