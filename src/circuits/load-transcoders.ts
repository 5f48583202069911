/**
 * Opens the transcoders named on the command line (`glassbox graph --transcoders DIR`) as
 * TracingTranscoders. The directory's layout decides the loader:
 * - per-layer transcoders: one sub-directory per layer in glassbox's / SAELens's SAE layout
 *   (cfg.json + sae_weights.safetensors, as `glassbox sae train` writes them), ordered by the
 *   layer of their hook_name;
 * - a cross-layer transcoder (or PLT set) saved by `saveClt` (`glassbox clt train`): cfg.json
 *   with `"architecture": "clt"` in DIR itself, loaded by `loadClt` (src/sae/clt/formats.ts),
 *   which checks every config field and weight shape.
 *
 * `readTranscoderShape` reads the same directory's cfg.json files only, for a check against the
 * model where the weights are not wanted (`serve --transcoders`: the model worker loads them).
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadSae, readJsonFile, SAE_CFG_FILENAME, SAE_WEIGHTS_FILENAME } from '../sae/formats.js';
import { dOutOf, parseSaeConfig, type SaeConfig } from '../sae/config.js';
import { transcodersFromSaes } from '../sae/clt/from-saes.js';
import { loadClt, parseCltConfig } from '../sae/clt/formats.js';
import { checkCltConfig } from '../sae/clt/transcoder.js';
import type { TracingTranscoders } from '../sae/clt/types.js';
import type { TracingShape } from './replacement.js';

/** A transcoder directory's layout: a CLT (cfg.json in DIR), or per-layer sub-directories with their configs, in layer order. */
type Layout = { kind: 'clt'; cfgPath: string } | { kind: 'per-layer'; layers: { name: string; cfg: SaeConfig }[] };

/**
 * The layout of `dir`, every per-layer cfg.json read and checked (parseSaeConfig) and the layers
 * checked to run 0, 1, 2, ... by their hook_name. Errors name the directory or the cfg.json.
 */
function layoutOf(dir: string): Layout {
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
    if (architecture === 'clt') return { kind: 'clt', cfgPath };
    throw new Error(
      `${cfgPath}: '${String(architecture)}' is one SAE or transcoder; give a cross-layer transcoder directory ("architecture": "clt") or a directory holding one transcoder sub-directory per layer`,
    );
  }
  const subdirs = readdirSync(dir)
    .filter((name) => existsSync(join(dir, name, 'cfg.json')))
    .sort();
  if (subdirs.length === 0)
    throw new Error(`${dir}: no transcoders found (expected one sub-directory per layer, each with cfg.json and sae_weights.safetensors)`);
  const layers = subdirs.map((name) => {
    const path = join(dir, name, SAE_CFG_FILENAME);
    const raw = readJsonFile(path, {
      missing: `not found (an SAELens SAE directory holds ${SAE_CFG_FILENAME} and ${SAE_WEIGHTS_FILENAME})`,
      unreadable: 'cannot read the config',
    });
    return { name, cfg: parseSaeConfig(raw, path) };
  });
  const layer = (s: (typeof layers)[number]): number => s.cfg.hook_layer ?? -1;
  layers.sort((a, b) => layer(a) - layer(b));
  layers.forEach((s, l) => {
    if (layer(s) !== l)
      throw new Error(
        `${join(dir, s.name, 'cfg.json')}: hook_name '${s.cfg.hook_name}' is layer ${layer(s)}, but layer ${l} is the next one missing (one transcoder per layer from 0 is needed)`,
      );
  });
  return { kind: 'per-layer', layers };
}

export function loadTracingTranscoders(dir: string): TracingTranscoders {
  const layout = layoutOf(dir);
  // A CrossLayerTranscoder is a TracingTranscoders.
  if (layout.kind === 'clt') return loadClt(dir);
  return transcodersFromSaes(
    layout.layers.map((s) => loadSae(join(dir, s.name))),
    dir,
  );
}

/**
 * The layers, widths and hook points of the transcoders in `dir`, from their cfg.json files alone
 * (no weights read), for `checkTracingPair`. The configs are checked as `loadTracingTranscoders`
 * checks them (same errors); what only the weights or the per-layer set as a whole can show
 * (tensor shapes, mixed architectures or widths of d_in) is left to the full load.
 */
export function readTranscoderShape(dir: string): TracingShape {
  const layout = layoutOf(dir);
  if (layout.kind === 'clt') {
    const raw = readJsonFile(layout.cfgPath, { missing: 'not found', unreadable: 'cannot read the config' });
    const cfg = parseCltConfig(raw, layout.cfgPath);
    checkCltConfig(cfg, layout.cfgPath);
    return {
      nLayers: cfg.n_layers,
      dIn: cfg.d_in,
      dOut: cfg.d_out,
      widths: cfg.widths,
      inputHook: (l) => cfg.hook_names_in[l]!,
      outputHook: (l) => cfg.hook_names_out[l]!,
    };
  }
  const cfgs = layout.layers.map((s) => {
    if (!s.cfg.hook_name_out)
      throw new Error(
        `${join(dir, s.name, SAE_CFG_FILENAME)}: field 'hook_name_out' is not set: architecture '${s.cfg.architecture}' is not a transcoder`,
      );
    return s.cfg;
  });
  return {
    nLayers: cfgs.length,
    dIn: cfgs[0]!.d_in,
    dOut: dOutOf(cfgs[0]!),
    widths: cfgs.map((c) => c.d_sae),
    inputHook: (l) => cfgs[l]!.hook_name!,
    outputHook: (l) => cfgs[l]!.hook_name_out!,
  };
}
