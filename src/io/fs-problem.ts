/**
 * What an fs error means, in words. Apart from fs-check.ts (which reads the file system) so that
 * code that bundles for a browser can word Node's errors without importing node:fs.
 */

/** The problem an fs error describes, in words (the code and message otherwise). */
export function fsProblem(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  switch (code) {
    case 'EISDIR':
      return 'is a directory, not a file';
    case 'ELOOP':
      return 'is a symbolic link loop (too many levels of symbolic links)';
    case 'ENOENT':
      return 'does not exist';
    case 'EACCES':
    case 'EPERM':
      return 'cannot be read (permission denied)';
    case 'ENOTDIR':
      return 'has a path component that is not a directory';
    default:
      return `cannot be read (${e instanceof Error ? e.message : String(e)})`;
  }
}
