/**
 * The default model in headless Chromium on the `glassbox/browser` entry: loaded from a static
 * server with fetch and Range requests, its logits, logit lens and a residual patching sweep
 * equal the Node library's for the same inputs within 1e-4, with and without cross-origin
 * isolation (wasm threads on, and off with the note saying why).
 *
 * Needs Chromium (`apt-get install chromium`, or CHROMIUM_PATH), as the workbench's e2e tests.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel, type HookedTransformer } from '../src/index.js';
import { logitLens, patchResidPre, toSingleToken } from '../src/analysis/index.js';
import { modelPageRunner, type ModelPageRunner, type ModelRunReport } from './browser/model-run.js';

const INPUT = {
  prompt: 'Then Ahab and Starbuck went on deck, and Starbuck said to',
  clean: 'Then Ahab and Starbuck went on deck, and Starbuck said to',
  corrupted: 'Then Ahab and Starbuck went on deck, and Ahab said to',
  answer: ' Ahab',
  wrong: ' Starbuck',
  reps: 0,
};
const TOL = 1e-4;

function maxAbsDiff(a: readonly number[], b: readonly number[], what: string): number {
  assert.equal(a.length, b.length, `${what}: lengths`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('the default model in Chromium on onnxruntime-web', { timeout: 600_000 }, () => {
  let runner: ModelPageRunner;
  let node: Omit<
    ModelRunReport,
    'runtime' | 'threadsNote' | 'compiles' | 'forwardMs' | 'patchingMs' | 'forwardFedMs' | 'patchingFedMs' | 'profile' | 'resident'
  >;

  before(async () => {
    runner = await modelPageRunner();
    const model: HookedTransformer = await loadModel('default');
    const tokens = model.toTokens(INPUT.prompt);
    const logits = model.forward(tokens);
    const [, S, V] = logits.shape as [number, number, number];
    const lens = logitLens(model, INPUT.prompt, { topK: 1 });
    const final = lens.top[lens.top.length - 1]![S - 1]![0]!.token;
    const lensLogits = lens.logits.dataSync() as Float32Array;
    const problem = {
      clean: INPUT.clean,
      corrupted: INPUT.corrupted,
      answer: toSingleToken(model, INPUT.answer),
      wrong: toSingleToken(model, INPUT.wrong),
    };
    node = {
      tokens: tokens[0]!,
      lastLogits: Array.from(logits.dataSync() as Float32Array).slice((S - 1) * V, S * V),
      lensTopLogits: Array.from({ length: lens.logits.shape[0]! }, (_, l) => lensLogits[(l * S + (S - 1)) * V + final]!),
      patching: Array.from(patchResidPre(model, problem).dataSync() as Float32Array),
    };
  });

  after(async () => {
    await runner?.close();
  });

  function assertSameNumbers(page: ModelRunReport): void {
    assert.deepEqual(page.tokens, node.tokens, 'the page tokenizes the prompt as Node does');
    for (const key of ['lastLogits', 'lensTopLogits', 'patching'] as const) {
      const d = maxAbsDiff(page[key], node[key], key);
      assert.ok(d <= TOL, `${key}: the page differs from Node by ${d} (tolerance ${TOL})`);
    }
    // The page really ran ONNX graphs (not only the JS kernels).
    assert.ok(page.compiles > 0);
    // The weights stayed in the runtime's sessions, and a new weight tensor is not served stale.
    assert.ok(page.resident.hits > 0, 'the second forward found the weights resident');
    assert.ok(page.resident.maxDiffVsJs <= TOL, `W_U doubled: wasm differs from the JS backend by ${page.resident.maxDiffVsJs}`);
    assert.ok(page.resident.differsFromFirst > 1, 'W_U doubled changed the logits');
  }

  it('cross-origin isolated: wasm threads, the same numbers as Node', async () => {
    const page = await runner.run(INPUT, true);
    assert.match(page.runtime, /^onnxruntime-web \(wasm SIMD, \d+ threads?\)$/);
    assert.equal(page.threadsNote, null);
    assertSameNumbers(page);
  });

  it('not isolated: one thread (the note says why), the same numbers as Node', async () => {
    const page = await runner.run(INPUT, false);
    assert.equal(page.runtime, 'onnxruntime-web (wasm SIMD, 1 thread)');
    assert.match(page.threadsNote ?? '', /not cross-origin isolated/);
    assertSameNumbers(page);
  });
});
