/**
 * Atomic file writes: the bytes go to a temporary file in the destination's directory, which is
 * flushed to disk and then renamed over the destination. A reader sees the old file or the new
 * one, never a half-written one; on any error the temporary file is removed and the destination
 * is left as it was.
 */
import { closeSync, fsyncSync, lstatSync, openSync, readSync, readdirSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';

/** Largest single write (Node caps one read/write at 2 GiB - 1). */
const MAX_IO = 1 << 30;
/** Small pieces are gathered into a buffer of this size before they reach the file. */
const STAGE = 8 << 20;

/** Appends bytes to the file being written. */
export type WriteBytes = (bytes: Uint8Array) => void;

export interface WriteAtomicOptions {
  /** Also compute the SHA-256 of the bytes written; `writeAtomic` then returns it (hex). */
  sha256?: boolean;
}

/**
 * Writes `path` atomically: `body` streams the contents through `write`, in order. If `body` (or
 * any write, the flush or the rename) throws, the temporary file is removed, the destination is
 * untouched and the error propagates. Returns the SHA-256 (hex) of the contents when
 * `options.sha256`, else undefined.
 */
export function writeAtomic(path: string, body: (write: WriteBytes) => void, options: WriteAtomicOptions = {}): string | undefined {
  const dir = dirname(resolve(path));
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const hash = options.sha256 ? createHash('sha256') : null;
  let fd = openSync(tmp, 'wx', 0o644);
  try {
    let position = 0;
    const stage = new Uint8Array(STAGE);
    let staged = 0;
    const raw = (bytes: Uint8Array): void => {
      hash?.update(bytes);
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
  return hash?.digest('hex');
}

/**
 * Writes a string (as UTF-8) or bytes to `path` atomically. Returns the SHA-256 (hex) of the
 * contents when `options.sha256`.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, options: WriteAtomicOptions = {}): string | undefined {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  return writeAtomic(path, (write) => write(bytes), options);
}

/**
 * Copies `src` to `dest` atomically (through a temporary file beside `dest`, flushed and renamed),
 * so `dest` is never a partial copy. Copying a file onto itself leaves it as it is.
 */
export function copyFileAtomic(src: string, dest: string): void {
  if (resolve(src) === resolve(dest)) return;
  const fd = openSync(src, 'r');
  try {
    writeAtomic(dest, (write) => {
      const chunk = new Uint8Array(STAGE);
      let position = 0;
      for (;;) {
        const n = readSync(fd, chunk, 0, chunk.byteLength, position);
        if (n === 0) break;
        write(chunk.slice(0, n));
        position += n;
      }
    });
  } finally {
    closeSync(fd);
  }
}

/** The SHA-256 (hex) of a file's contents, read in pieces. */
export function sha256File(path: string): string {
  const hash = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const chunk = new Uint8Array(STAGE);
    let position = 0;
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.byteLength, position);
      if (n === 0) break;
      hash.update(chunk.subarray(0, n));
      position += n;
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/**
 * Temporary entries that writers left in `dir`: `writeAtomic`'s files (`.NAME.PID.HEX.tmp`) and
 * directories named the same way without the random part (`.NAME.PID.tmp`, as training
 * checkpoints are staged). Returns each with the writer's process id.
 */
export function tempEntries(dir: string): { name: string; pid: number }[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const found: { name: string; pid: number }[] = [];
  for (const name of names) {
    const m = /^\..+\.(\d+)\.[0-9a-f]{12}\.tmp$/.exec(name) ?? /^\..+\.(\d+)\.tmp$/.exec(name);
    if (m) found.push({ name, pid: Number(m[1]) });
  }
  return found;
}

/** Whether a process with this id is running (on this machine). */
export function processAlive(pid: number): boolean {
  if (!(Number.isSafeInteger(pid) && pid > 0)) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to someone else; ESRCH: no such process.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The newest modification time (ms) of `path` and, for a directory, of what it holds (one level). */
function newestMtime(path: string): number {
  let newest = lstatSync(path).mtimeMs;
  try {
    for (const name of readdirSync(path)) newest = Math.max(newest, lstatSync(join(path, name)).mtimeMs);
  } catch {
    // a file, or gone
  }
  return newest;
}

/**
 * Removes the temporary files and directories (see `tempEntries`) that interrupted writes left in
 * `dir`: those whose writer is no longer running, and those of a running process other than this
 * one that have not changed since this process started (the id was reused: a live writer keeps
 * touching its files). This process's own, and a live writer's, are left alone. Returns the names
 * removed.
 */
export function removeStaleTemps(dir: string): string[] {
  const started = performance.timeOrigin;
  const removed: string[] = [];
  for (const { name, pid } of tempEntries(dir)) {
    if (pid === process.pid) continue;
    const path = join(dir, name);
    let stale = !processAlive(pid);
    if (!stale) {
      try {
        stale = newestMtime(path) < started;
      } catch {
        continue; // gone meanwhile
      }
    }
    if (!stale) continue;
    rmSync(path, { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
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
