import { eagerConfig } from './trace.js';

export type BackendName = 'ort' | 'js';

/**
 * Selects where ops run: 'ort' (ONNX Runtime; small eager ops still use the JS kernels) or 'js'
 * (the reference interpreter, everywhere).
 */
export function setBackend(name: BackendName): void {
  if (name !== 'ort' && name !== 'js') throw new Error(`setBackend: unknown backend '${String(name)}' (expected 'ort' or 'js')`);
  eagerConfig.backend = name;
}

export function getBackend(): BackendName {
  return eagerConfig.backend;
}
