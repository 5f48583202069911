/**
 * Opens the transcoders named on the command line (`glassbox graph --transcoders DIR`) as
 * TracingTranscoders. The directory's layout decides the loader:
 * - per-layer transcoders: one sub-directory per layer in glassbox's / SAELens's SAE layout
 *   (cfg.json + sae_weights.safetensors, as `glassbox sae train` writes them), ordered by the
 *   layer of their hook_name;
 * - a cross-layer transcoder (or PLT set) saved by `saveClt` (`glassbox clt train`): cfg.json
 *   with `"architecture": "clt"` in DIR itself, loaded by `loadClt` (src/sae/clt/formats.ts),
 *   which checks every config field and weight shape.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadSae } from '../sae/formats.js';
import { transcodersFromSaes } from '../sae/clt/from-saes.js';
import { loadClt } from '../sae/clt/formats.js';
import type { TracingTranscoders } from '../sae/clt/types.js';

export function loadTracingTranscoders(dir: string): TracingTranscoders {
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new Error(`${dir}: not a directory (--transcoders takes a directory of transcoders)`);
  const cfgPath = join(dir, 'cfg.json');
  if (existsSync(cfgPath)) {
    let architecture: unknown;
    try {
      architecture = (JSON.parse(readFileSync(cfgPath, 'utf8')) as { architecture?: unknown }).architecture;
    } catch (e) {
      throw new Error(`${cfgPath}: not valid JSON (${(e as Error).message})`);
    }
    if (architecture === 'clt') return cltLoader(dir);
    throw new Error(
      `${cfgPath}: '${String(architecture)}' is one SAE or transcoder; give a cross-layer transcoder directory ("architecture": "clt") or a directory holding one transcoder sub-directory per layer`,
    );
  }
  const subdirs = readdirSync(dir)
    .filter((name) => existsSync(join(dir, name, 'cfg.json')))
    .sort();
  if (subdirs.length === 0)
    throw new Error(`${dir}: no transcoders found (expected one sub-directory per layer, each with cfg.json and sae_weights.safetensors)`);
  const saes = subdirs.map((name) => ({ name, sae: loadSae(join(dir, name)) }));
  const layer = (s: (typeof saes)[number]): number => s.sae.cfg.hook_layer ?? -1;
  saes.sort((a, b) => layer(a) - layer(b));
  saes.forEach((s, l) => {
    if (layer(s) !== l)
      throw new Error(
        `${join(dir, s.name, 'cfg.json')}: hook_name '${s.sae.cfg.hook_name}' is layer ${layer(s)}, but layer ${l} is the next one missing (one transcoder per layer from 0 is needed)`,
      );
  });
  return transcodersFromSaes(
    saes.map((s) => s.sae),
    dir,
  );
}

/** Loads a CLT directory (cfg.json with "architecture": "clt"); a CrossLayerTranscoder is a TracingTranscoders. */
function cltLoader(dir: string): TracingTranscoders {
  return loadClt(dir);
}
