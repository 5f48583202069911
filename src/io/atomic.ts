/**
 * Atomic file writes: the bytes go to a temporary file in the destination's directory, which is
 * flushed to disk and then renamed over the destination. A reader sees the old file or the new
 * one, never a half-written one; on any error the temporary file is removed and the destination
 * is left as it was.
 */
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';

/** Largest single write (Node caps one read/write at 2 GiB - 1). */
const MAX_IO = 1 << 30;
/** Small pieces are gathered into a buffer of this size before they reach the file. */
const STAGE = 8 << 20;

/** Appends bytes to the file being written. */
export type WriteBytes = (bytes: Uint8Array) => void;

/**
 * Writes `path` atomically: `body` streams the contents through `write`, in order. If `body` (or
 * any write, the flush or the rename) throws, the temporary file is removed, the destination is
 * untouched and the error propagates.
 */
export function writeAtomic(path: string, body: (write: WriteBytes) => void): void {
  const dir = dirname(resolve(path));
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let fd = openSync(tmp, 'wx', 0o644);
  try {
    let position = 0;
    const stage = new Uint8Array(STAGE);
    let staged = 0;
    const raw = (bytes: Uint8Array): void => {
      let done = 0;
      while (done < bytes.byteLength) {
        const n = writeSync(fd, bytes, done, Math.min(bytes.byteLength - done, MAX_IO), position);
        done += n;
        position += n;
      }
    };
    const flush = (): void => {
      if (staged > 0) raw(stage.subarray(0, staged));
      staged = 0;
    };
    body((bytes) => {
      if (bytes.byteLength >= STAGE / 4) {
        flush();
        raw(bytes);
        return;
      }
      if (staged + bytes.byteLength > STAGE) flush();
      stage.set(bytes, staged);
      staged += bytes.byteLength;
    });
    flush();
    fsyncSync(fd);
    closeSync(fd);
    fd = -1;
    renameSync(tmp, path);
  } catch (e) {
    if (fd >= 0) {
      try {
        closeSync(fd);
      } catch {
        // already failing; the original error is the one to report
      }
    }
    try {
      unlinkSync(tmp);
    } catch {
      // gone already (or the rename happened): nothing to clean up
    }
    throw e;
  }
  fsyncDirectory(dir);
}

/** Writes a string (as UTF-8) or bytes to `path` atomically. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  writeAtomic(path, (write) => write(bytes));
}

/** Makes the rename durable where the platform allows it (Linux, macOS); elsewhere a no-op. */
function fsyncDirectory(dir: string): void {
  let fd = -1;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // directories cannot be opened or synced on some platforms and file systems (Windows, some network mounts)
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}
