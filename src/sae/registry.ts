/**
 * SAE architectures by their SAELens names. `loadSae` looks a cfg.json's `architecture` up here;
 * `registerArchitecture` adds one of your own.
 */
import { batchtopk } from './architectures/batchtopk.js';
import { gated } from './architectures/gated.js';
import { jumprelu } from './architectures/jumprelu.js';
import { matryoshkaBatchtopk } from './architectures/matryoshka-batchtopk.js';
import { standard } from './architectures/standard.js';
import { topk } from './architectures/topk.js';
import { jumpreluSkipTranscoder, jumpreluTranscoder, skipTranscoder, transcoder } from './architectures/transcoder.js';
import type { SaeArchitecture } from './types.js';

const registry = new Map<string, SaeArchitecture>();
/** Other spellings accepted for a registered name. */
const aliases = new Map<string, string>([['matryoshka-batchtopk', 'matryoshka_batchtopk']]);

/** Adds an architecture under its name; a name taken already is an error unless `replace`. */
export function registerArchitecture(arch: SaeArchitecture, options: { replace?: boolean } = {}): void {
  if (registry.has(arch.name) && !options.replace) throw new Error(`SAE architecture '${arch.name}' is registered already`);
  registry.set(arch.name, arch);
}

/** The architecture registered as `name` (or an alias of it); an unknown name is an error listing the known ones. */
export function getArchitecture(name: string, where = 'SAE config'): SaeArchitecture {
  const arch = registry.get(aliases.get(name) ?? name);
  if (!arch) throw new Error(`${where}: unknown SAE architecture '${name}' (known: ${listArchitectures().join(', ')})`);
  return arch;
}

/** The registered names, sorted. */
export function listArchitectures(): string[] {
  return [...registry.keys()].sort();
}

for (const arch of [
  standard,
  topk,
  batchtopk,
  jumprelu,
  gated,
  matryoshkaBatchtopk,
  transcoder,
  skipTranscoder,
  jumpreluTranscoder,
  jumpreluSkipTranscoder,
])
  registerArchitecture(arch);
