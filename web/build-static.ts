/**
 * `npm run build:static`: the workbench as static files, in web/dist-static (or the folder given
 * as the first argument): the web app, its engine (a Web Worker running the model on
 * onnxruntime-web), onnxruntime-web's wasm files (ort/) and the default model (model/). Any
 * static server serves it; with the headers
 *   Cross-Origin-Opener-Policy: same-origin
 *   Cross-Origin-Embedder-Policy: require-corp
 * the page is cross-origin isolated and the engine uses WebAssembly threads; without them it
 * runs on one thread and says so. Served by `glassbox serve`, the same app uses the server.
 */
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = resolve(process.argv[2] ?? join(ROOT, 'web/dist-static'));
const ORT_DIST = join(ROOT, 'node_modules/onnxruntime-web/dist');
const MODEL = join(ROOT, 'models/default');
// The plain wasm build only: the engine runs synchronously, which the JSEP/WebGPU builds cannot.
const ORT_FILES = ['ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm'];
const MODEL_FILES = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];

for (const f of ORT_FILES)
  if (!existsSync(join(ORT_DIST, f))) throw new Error(`${join(ORT_DIST, f)}: missing; run npm ci (onnxruntime-web)`);
for (const f of MODEL_FILES)
  if (!existsSync(join(MODEL, f))) throw new Error(`${join(MODEL, f)}: missing (the default model ships in models/default)`);

// Built beside the target and renamed into place, so a failed build leaves the last good folder.
const tmp = `${out}.tmp-${process.pid}`;
rmSync(tmp, { recursive: true, force: true });
try {
  await build({
    configFile: join(ROOT, 'web/vite.config.ts'),
    base: './',
    logLevel: 'warn',
    build: { outDir: tmp, emptyOutDir: true },
    worker: { format: 'es' },
  });
  mkdirSync(join(tmp, 'ort'), { recursive: true });
  for (const f of ORT_FILES) copyFileSync(join(ORT_DIST, f), join(tmp, 'ort', f));
  mkdirSync(join(tmp, 'model'), { recursive: true });
  for (const f of MODEL_FILES) cpSync(join(MODEL, f), join(tmp, 'model', f));
  // The tuned lens, when the model ships one: the page's Logit lens view offers it.
  if (existsSync(join(MODEL, 'tuned-lens', 'config.json')))
    cpSync(join(MODEL, 'tuned-lens'), join(tmp, 'model', 'tuned-lens'), { recursive: true });
  rmSync(out, { recursive: true, force: true });
  renameSync(tmp, out);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
console.log(`static workbench written to ${out} (${readdirSync(out).join(', ')})`);
