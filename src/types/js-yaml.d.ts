/**
 * The part of js-yaml's API glassbox uses. Stands in for @types/js-yaml until that package is a
 * dev dependency; delete this file then.
 */
declare module 'js-yaml' {
  export interface LoadOptions {
    filename?: string;
    json?: boolean;
  }
  export function load(text: string, options?: LoadOptions): unknown;
  export class YAMLException extends Error {
    reason: string;
    mark: { line: number; column: number } | undefined;
  }
}
