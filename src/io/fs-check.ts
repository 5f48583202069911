/**
 * Files that are there but cannot be read as files: a directory where a file should be, a
 * symbolic link loop, a dangling link. `existsSync` calls all three "missing" (so a tokenizer.json
 * link loop read as "no tokenizer"), and a read gives a bare EISDIR / ELOOP; these helpers say
 * what is wrong with which path.
 */
import { lstatSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fsProblem } from './fs-problem.js';

export { fsProblem };

/** Whether anything is at `path`: a file, a directory, or a link (even a dangling or looping one). */
export function entryExists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Throws when something is at `path` but it is not a regular file once links are followed (a
 * directory, a link loop, a dangling link, a socket). Nothing at `path` is not an error here.
 */
export function refuseNonFile(path: string): void {
  if (!entryExists(path)) return;
  let isFile: boolean;
  try {
    isFile = statSync(path).isFile();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`${path}: ${code === 'ENOENT' ? 'is a symbolic link to nothing (dangling)' : fsProblem(e)}`);
  }
  if (!isFile) throw new Error(`${path}: ${statSync(path).isDirectory() ? 'is a directory, not a file' : 'is not a regular file'}`);
}

/** The files a Hugging Face model directory may hold, each refused when present but not a file. */
export const MODEL_FILES = [
  'config.json',
  'model.safetensors',
  'model.safetensors.index.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'generation_config.json',
] as const;

/** Refuses a model directory in which one of `MODEL_FILES` is present but is not a readable file. */
export function checkModelFiles(dir: string): void {
  for (const f of MODEL_FILES) refuseNonFile(join(dir, f));
}
