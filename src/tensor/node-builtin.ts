/**
 * Node's built-in modules, reached through `process.getBuiltinModule` (Node >= 20.16) rather than
 * imported, so that the files using them still bundle for a browser (the `glassbox/browser` entry
 * must reach no Node built-in; test/browser-entry.test.ts). In a browser each is undefined.
 */
interface NodeBuiltins {
  'node:fs': typeof import('node:fs');
  'node:path': typeof import('node:path');
  'node:os': typeof import('node:os');
  'node:url': typeof import('node:url');
  'node:module': typeof import('node:module');
}

/** The built-in module `name` in Node; undefined elsewhere. */
export function nodeBuiltin<K extends keyof NodeBuiltins>(name: K): NodeBuiltins[K] | undefined {
  return globalThis.process?.getBuiltinModule?.(name) as NodeBuiltins[K] | undefined;
}
