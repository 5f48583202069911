/**
 * Cancelling attribution: `attribute` stops at its next check (before a phase, after a batch of
 * rows) when its AbortSignal is aborted or `shouldStop()` says so, throwing an
 * AttributionCancelledError that names the phase and rows done, and returns no graph; the
 * server's graph job (graphJob, run by the model worker) stops inside its attribution step.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { attribute, AttributionCancelledError, type AttributeProgress } from '../src/circuits/attribute.js';
import { graphJob, type GraphStep } from '../src/server/graph-compute.js';
import { shapeBuckets } from '../src/analysis/index.js';
import { tinyRandomModel } from './tiny-models.js';
import { randomPlt } from './circuits-helpers.js';

const model = tinyRandomModel(3);
const tokens = [1, 5, 7, 2, 9, 4];
const tc = randomPlt(model, 11);

describe('cancelling attribute', () => {
  it('shouldStop after the first batch of feature rows: throws in the features phase, before the biases', () => {
    const seen: AttributeProgress[] = [];
    let err: unknown;
    try {
      attribute(model, tokens, tc, {
        maxBatch: 2,
        onProgress: (p) => seen.push(p),
        shouldStop: () => seen.some((p) => p.phase === 'features'),
      });
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof AttributionCancelledError, String(err));
    assert.equal(err.phase, 'features');
    assert.ok(err.done > 0 && err.done < err.total, `${err.done} of ${err.total}`);
    assert.match(err.message, /attribute: cancelled in the 'features' phase, after \d+ of \d+ rows; no graph was made/);
    const phases = [...new Set(seen.map((p) => p.phase))];
    assert.deepEqual(phases, ['forward', 'logits', 'features']);
    assert.equal(seen.filter((p) => p.phase === 'features').length, 1, 'it stops at the first check after the request');
  });

  it('an AbortSignal: aborted before the start, it stops before the forward pass; aborted in the logits phase, there', () => {
    const ac = new AbortController();
    ac.abort();
    assert.throws(
      () => attribute(model, tokens, tc, { signal: ac.signal }),
      (e: unknown) => e instanceof AttributionCancelledError && e.phase === 'forward' && e.done === 0,
    );
    const later = new AbortController();
    const phases: string[] = [];
    assert.throws(
      () =>
        attribute(model, tokens, tc, {
          signal: later.signal,
          maxBatch: 1,
          onProgress: (p) => {
            phases.push(p.phase);
            if (p.phase === 'logits') later.abort();
          },
        }),
      (e: unknown) => e instanceof AttributionCancelledError && e.phase === 'logits' && e.done === 0,
    );
    assert.deepEqual(phases, ['forward', 'logits']);
  });

  it('never asked to stop: the same graph as without the hooks', () => {
    const a = attribute(model, tokens, tc, { maxBatch: 4 });
    const b = attribute(model, tokens, tc, { maxBatch: 4, shouldStop: () => false, signal: new AbortController().signal });
    assert.deepEqual(Array.from(b.adjacency), Array.from(a.adjacency));
  });
});

describe('the graph job', () => {
  const computer = { model, buckets: shapeBuckets({ maxLength: 16 }), passBudgetBytes: 1, transcoders: tc };
  const args = { tokens, promptTokens: tokens.map(String), prompt: '', slug: 's', nodeThreshold: 0.8, edgeThreshold: 0.98 };

  it('stops inside its attribution step once shouldStop says so: phase 1 reported, nothing returned', () => {
    const reported: GraphStep[] = [];
    let checks = 0;
    const steps = graphJob(computer, args, {
      shouldStop: () => ++checks > 3,
      report: (s) => reported.push(s),
    });
    assert.deepEqual(steps.next().value, { started: { total: 3 } });
    assert.throws(() => steps.next(), AttributionCancelledError);
    assert.deepEqual(reported, [{ done: 1 }], 'the clean run was reported; attribution did not finish');
    assert.equal(checks, 4);
  });

  it('uncancelled: phases 1 (reported from inside the step), 2, then the graph file', () => {
    const reported: GraphStep[] = [];
    const steps = graphJob(computer, args, { shouldStop: () => false, report: (s) => reported.push(s) });
    assert.deepEqual(steps.next().value, { started: { total: 3 } });
    assert.deepEqual(steps.next().value, { done: 2 });
    assert.deepEqual(reported, [{ done: 1 }]);
    const last = steps.next();
    assert.equal(last.done, true);
    assert.ok((last.value as { nodes: unknown[] }).nodes.length > 0);
  });
});
