/**
 * The default model in a browser page on the `glassbox/browser` entry: loaded from a static
 * folder (fetch + Range), then the numbers the Node test compares (`window.glassboxModelRun`),
 * and timings of the forward pass and a residual patching sweep (`bench`).
 */
import {
  ortStats,
  patchResidPre,
  toSingleToken,
  logitLens,
  modelFromUrl,
  setBackend,
  useWasmRuntime,
  getGraphRuntime,
  wasmStats,
  wasmConfig,
  HookedTransformer,
} from '../../src/browser.js';

export interface ModelRunInput {
  wasmBase: string;
  modelBase: string;
  numThreads?: number;
  /**
   * Also time each rep with the weights fed on every run (`wasmConfig.maxResidentBytes` 0, as
   * before they were kept resident), interleaved with the resident runs so that both see the
   * same load: `forwardFedMs`, `patchingFedMs`.
   */
  compareFed?: boolean;
  prompt: string;
  clean: string;
  corrupted: string;
  answer: string;
  wrong: string;
  /** Timed repetitions (0: no timings). */
  reps: number;
}

export interface ModelRunReport {
  runtime: string;
  threadsNote: string | null;
  tokens: number[];
  /** Last position's logits [d_vocab]. */
  lastLogits: number[];
  /** Logit lens, layer by layer, of the last position: logits of the top token of the final layer. */
  lensTopLogits: number[];
  /** patchResidPre [layers, pos]. */
  patching: number[];
  compiles: number;
  /**
   * The model's weights stay resident in the wasm runtime's sessions: `hits`, weights found there
   * during the second forward; then a model over the same weights but W_U doubled (a new tensor):
   * its last-position logits on the wasm runtime against the JS reference backend (`maxDiffVsJs`,
   * stale weights would show here) and against the first model's (`differsFromFirst`).
   */
  resident: { hits: number; maxDiffVsJs: number; differsFromFirst: number };
  forwardMs: number | null;
  patchingMs: number | null;
  forwardFedMs: number | null;
  patchingFedMs: number | null;
  /** Where the time of one timed forward and one sweep went (wasmStats, ms and bytes), when timed. */
  profile: { forward: Record<string, number>; patching: Record<string, number> } | null;
}

function statsNow(): Record<string, number> {
  const { compileMs, feedMs, feedBytes, residentHits, residentBytes, runMs, readMs } = wasmStats;
  return { compileMs, feedMs, feedBytes, residentHits, residentBytes, runMs, readMs, runs: ortStats.runs };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

(globalThis as unknown as { glassboxModelRun: (i: ModelRunInput) => Promise<ModelRunReport> }).glassboxModelRun = async (input) => {
  await useWasmRuntime({ wasmBase: input.wasmBase, ...(input.numThreads !== undefined ? { numThreads: input.numThreads } : {}) });
  setBackend('ort');
  const runtime = getGraphRuntime() as { name: string; threadsNote?: string | null };
  const model = await modelFromUrl(input.modelBase);
  const tokens = model.toTokens(input.prompt);
  const logits = model.forward(tokens);
  const [, S, V] = logits.shape as [number, number, number];
  const lastLogits = Array.from(logits.dataSync() as Float32Array).slice((S - 1) * V, S * V);
  const lens = logitLens(model, input.prompt, { topK: 1 });
  const final = lens.top[lens.top.length - 1]![S - 1]![0]!.token;
  const lensLogits = lens.logits.dataSync() as Float32Array;
  const layers = lens.logits.shape[0]!;
  const lensTopLogits = Array.from({ length: layers }, (_, l) => lensLogits[(l * S + (S - 1)) * V + final]!);
  const problem = {
    clean: input.clean,
    corrupted: input.corrupted,
    answer: toSingleToken(model, input.answer),
    wrong: toSingleToken(model, input.wrong),
  };
  const patching = Array.from(patchResidPre(model, problem).dataSync() as Float32Array);
  wasmStats.reset();
  model.forward(tokens).dataSync();
  const hits = wasmStats.residentHits;
  const doubled = new HookedTransformer(model.cfg, {
    ...model.params,
    unembed: { ...model.params.unembed, W_U: model.params.unembed.W_U.mul(2) },
  });
  doubled.tokenizer = model.tokenizer;
  const lastOf = (m: HookedTransformer) => Array.from(m.forward(tokens).dataSync() as Float32Array).slice((S - 1) * V, S * V);
  const onWasm = lastOf(doubled);
  setBackend('js');
  const onJs = lastOf(doubled);
  setBackend('ort');
  const maxDiff = (a: number[], b: number[]) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
  const resident = { hits, maxDiffVsJs: maxDiff(onWasm, onJs), differsFromFirst: maxDiff(onWasm, lastLogits) };
  let forwardMs: number | null = null;
  let patchingMs: number | null = null;
  let profile: ModelRunReport['profile'] = null;
  let forwardFedMs: number | null = null;
  let patchingFedMs: number | null = null;
  if (input.reps > 0) {
    const f: number[] = [];
    const p: number[] = [];
    const ff: number[] = [];
    const pf: number[] = [];
    const resident = wasmConfig.maxResidentBytes;
    const timed = (fed: boolean, into: [number[], number[]]) => {
      wasmConfig.maxResidentBytes = fed ? 0 : resident;
      let t0 = performance.now();
      model.forward(tokens).dataSync();
      into[0].push(performance.now() - t0);
      t0 = performance.now();
      patchResidPre(model, problem).dataSync();
      into[1].push(performance.now() - t0);
      wasmConfig.maxResidentBytes = resident;
    };
    if (input.compareFed) timed(true, [[], []]); // compiles the fed sessions
    for (let r = 0; r < input.reps; r++) {
      // Alternate which goes first, so neither always runs right after the other's sweep.
      const order = input.compareFed ? (r % 2 ? [true, false] : [false, true]) : [false];
      for (const fed of order) timed(fed, fed ? [ff, pf] : [f, p]);
    }
    if (input.compareFed) {
      forwardFedMs = median(ff);
      patchingFedMs = median(pf);
    }
    forwardMs = median(f);
    patchingMs = median(p);
    wasmStats.reset();
    const runs0 = ortStats.runs;
    let t0 = performance.now();
    model.forward(tokens).dataSync();
    const forward = { ...statsNow(), runs: ortStats.runs - runs0, totalMs: performance.now() - t0 };
    wasmStats.reset();
    const runs1 = ortStats.runs;
    t0 = performance.now();
    patchResidPre(model, problem).dataSync();
    const patching = { ...statsNow(), runs: ortStats.runs - runs1, totalMs: performance.now() - t0 };
    profile = { forward, patching };
  }
  return {
    runtime: runtime.name,
    threadsNote: runtime.threadsNote ?? null,
    tokens: tokens[0]!,
    lastLogits,
    lensTopLogits,
    patching,
    compiles: ortStats.compiles,
    resident,
    forwardMs,
    patchingMs,
    forwardFedMs,
    patchingFedMs,
    profile,
  };
};
