/**
 * Bundling for the browser tests: esbuild with `platform: 'browser'`, where an import of a Node
 * built-in (`node:fs`, `fs`, `worker_threads`, ...) is an error naming the file that imports it
 * and the chain of imports from the entry that reached it.
 */
import { builtinModules } from 'node:module';
import { relative } from 'node:path';
import { build, type Plugin } from 'esbuild';
import { ROOT } from '../e2e/harness.js';

const BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

/** Thrown when a browser bundle reaches Node built-ins; `reached` lists `builtin <- importer <- ... <- entry`. */
export class NodeBuiltinError extends Error {
  constructor(readonly reached: string[]) {
    super(`the browser bundle reaches Node built-ins:\n  ${reached.join('\n  ')}`);
  }
}

export interface BundleOptions {
  /**
   * Modules to substitute, by import specifier (e.g. 'node:test') or by resolved absolute path
   * (e.g. src/index.ts), with the absolute path of the module to use instead.
   */
  alias?: Record<string, string>;
}

/**
 * Bundles `entry` (a path under the repository) into one ES module at `outfile`, failing with a
 * NodeBuiltinError when any module it reaches imports a Node built-in.
 */
export async function bundleForBrowser(entry: string, outfile: string, options: BundleOptions = {}): Promise<void> {
  const alias = options.alias ?? {};
  const importers = new Map<string, string>();
  const reached: string[] = [];
  const chain = (file: string): string => {
    const parts: string[] = [];
    for (let f: string | undefined = file; f !== undefined && parts.length < 20; f = importers.get(f)) parts.push(relative(ROOT, f));
    return parts.join(' <- ');
  };
  const guard: Plugin = {
    name: 'no-node-builtins',
    setup(b) {
      b.onResolve({ filter: /.*/ }, async (args) => {
        if (args.kind === 'entry-point' || args.pluginData === 'resolving') return undefined;
        const substitute = alias[args.path];
        if (substitute !== undefined) return { path: substitute };
        if (BUILTINS.has(args.path)) {
          reached.push(`${args.path} <- ${chain(args.importer)}`);
          return { path: args.path, external: true };
        }
        // Resolve normally, remembering who imported what (for the chain in the message).
        const r = await b.resolve(args.path, {
          kind: args.kind,
          importer: args.importer,
          resolveDir: args.resolveDir,
          pluginData: 'resolving',
        });
        if (r.errors.length > 0) return { errors: r.errors };
        const path = alias[r.path] ?? r.path;
        if (!importers.has(path)) importers.set(path, args.importer);
        return { ...r, path };
      });
    },
  };
  await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    outfile,
    sourcemap: 'inline',
    logLevel: 'silent',
    plugins: [guard],
  });
  if (reached.length > 0) throw new NodeBuiltinError(reached);
}
