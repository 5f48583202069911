/**
 * The worked circuit-tracing example (docs/circuits.md, "A worked example: induction"): trace a
 * prompt whose next token the default model predicts by induction through a cross-layer
 * transcoder, prune the graph, show where the target logit's influence is routed, and test the
 * graph by ablating the features it names.
 *
 *   node --import tsx examples/induction-circuit.ts CLT_DIR [--prompt TEXT] [--json FILE]
 *
 * CLT_DIR is a transcoder directory for the default model (e.g. `glassbox clt train` output;
 * the trained one is not in the repository). Phases:
 * 1. The prompt "A B C ... X Y . A B C ... X" ends in a repeat of an earlier token X; the model
 *    predicts the token that followed X's first occurrence (Y): induction. The position of that
 *    Y is the "earlier position" e.
 * 2. attribute() over every active feature; pruneGraph() at the usual thresholds (0.8 / 0.98).
 * 3. Routing, on the pruned graph with the target logit alone as output: each position's share
 *    of the logit's influence that originates at its token / error nodes, and the share of it
 *    that passes through any node at that position (1 minus the influence that still reaches the
 *    sources with that position's nodes removed). Influence only moves between positions along
 *    attention edges (attention is the only cross-position path, frozen in the replacement
 *    model), so a large share through e, with e far from the last position, is induction.
 * 4. The top nodes of the pruned graph by influence.
 * 5. graphVerifier (influence and clean run once, for all checks): zero the k most influential
 *    features (k = 1, 3, 5, 10) and compare the change of the target logit with the graph's
 *    linear prediction: (a) in the replacement model (attention, norms and error terms frozen),
 *    and in the real model with the CLT spliced in, (b) attention frozen, (c) attention and norms
 *    frozen, (d) everything live, (e) live without the BOS position's features; and with only
 *    attention or only norms live.
 * 6. Why the real model differs: each of the top 10 features zeroed alone, releasing the frozen
 *    quantities one at a time (replacement -> +error terms -> +norms -> +attention = the real
 *    model), and the attention heads whose last-position pattern moves most.
 * With --json FILE the numbers are also written as JSON (the test reads them).
 */
import { writeFileAtomic } from '../src/io/atomic.js';
import { loadModel } from '../src/model/index.js';
import {
  attribute,
  computeInfluence,
  graphVerifier,
  intervene,
  prepareReplacement,
  graphScores,
  loadTracingTranscoders,
  nodeAt,
  nodeLayout,
  normalizeAdjacency,
  pruneGraph,
  type VerifyOptions,
} from '../src/circuits/index.js';
import { hookName } from '../src/model/hook-names.js';

// --- arguments ---
const args = process.argv.slice(2);
let cltDir: string | undefined;
let prompt = 'blue whale iron kettle paper moon garden. blue whale iron kettle paper';
let jsonOut: string | undefined;
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  if (a === '--prompt' || a === '--json') {
    const v = args[++i];
    if (v === undefined) throw new Error(`${a} needs a value`);
    if (a === '--prompt') prompt = v;
    else jsonOut = v;
  } else if (cltDir === undefined) cltDir = a;
  else throw new Error(`unexpected argument '${a}'`);
}
if (cltDir === undefined) {
  console.error('usage: node --import tsx examples/induction-circuit.ts CLT_DIR [--prompt TEXT] [--json FILE]');
  process.exit(1);
}

// --- 1. the prompt and the model's prediction ---
const model = await loadModel('default');
const transcoders = loadTracingTranscoders(cltDir);
const ids = model.toTokens(prompt)[0]!;
const strs = model.toStrTokens(ids);
const last = ids.length - 1;
const firstX = ids.lastIndexOf(ids[last]!, last - 1);
if (firstX < 0) throw new Error(`the prompt's last token ${JSON.stringify(strs[last])} does not occur earlier: not an induction prompt`);
const earlier = firstX + 1;
const probs = model.forward([ids]).index([0, -1]).softmax(-1);
const { values: topP, indices: topI } = probs.topk(1);
const predicted = Number((topI.toArray() as number[])[0]);
const pPredicted = (topP.toArray() as number[])[0]!;
console.log(`prompt        ${JSON.stringify(prompt)} (${ids.length} tokens)`);
console.log(`prediction    ${JSON.stringify(model.toString([predicted]))} p = ${pPredicted.toFixed(3)}`);
console.log(
  `induction     last token ${JSON.stringify(strs[last])} first occurs at position ${firstX}; position ${earlier} holds ${JSON.stringify(strs[earlier])}${ids[earlier] === predicted ? ' = the prediction' : ' (not the prediction)'}`,
);

// --- 2. the graph ---
const t0 = performance.now();
const g = attribute(model, ids, transcoders, { model: 'default', scan: cltDir });
const seconds = (performance.now() - t0) / 1000;
g.inputString = prompt;
const L = nodeLayout(g);
const pruned = pruneGraph(g, { nodeThreshold: 0.8, edgeThreshold: 0.98 });
const full = graphScores(g);
const prunedScores = graphScores(g, pruned);
let keptNodes = 0;
let keptEdges = 0;
for (const m of pruned.nodeMask) keptNodes += m;
for (const m of pruned.edgeMask) keptEdges += m;
console.log(
  `graph         ${L.nFeatures} active features, ${L.n} nodes, ${seconds.toFixed(1)} s; pruned: ${keptNodes} nodes, ${keptEdges} edges`,
);
console.log(
  `scores        replacement ${full.replacement.toFixed(3)}, completeness ${full.completeness.toFixed(3)} (pruned: ${prunedScores.replacement.toFixed(3)}, ${prunedScores.completeness.toFixed(3)})`,
);

// --- 3. routing on the pruned graph, the target logit alone as output ---
// Pruned edges join kept nodes only, so the pruned graph is its kept nodes' sub-matrix (small).
const keptIndex = Array.from({ length: L.n }, (_, i) => i).filter((i) => pruned.nodeMask[i]);
const n = keptIndex.length;
const prunedAdjacency = new Float32Array(n * n); // [kept targets, kept sources]
for (let r = 0; r < n; r++)
  for (let c = 0; c < n; c++) {
    const k = keptIndex[r]! * L.n + keptIndex[c]!;
    if (pruned.edgeMask[k]) prunedAdjacency[r * n + c] = g.adjacency[k]!;
  }
const normalized = normalizeAdjacency(prunedAdjacency, n);
const target = keptIndex.indexOf(L.logitStart); // rank 0: the most probable token
if (g.logitTokens[0] !== predicted) throw new Error("the graph's top logit is not the model's prediction");
const weights = new Float64Array(n);
weights[target] = 1;
const kept = keptIndex.map((i) => nodeAt(g, i, L));
const posOf = (j: number): number => {
  const node = kept[j]!;
  return node.kind === 'logit' ? -1 : node.pos;
};
const isSource = (j: number): boolean => kept[j]!.kind === 'error' || kept[j]!.kind === 'token';
const influence = computeInfluence(normalized, n, weights);
let sourceTotal = 0;
for (let j = 0; j < n; j++) if (isSource(j)) sourceTotal += influence[j]!;
const positions = Array.from({ length: L.nPos }, (_, p) => {
  let origin = 0;
  for (let j = 0; j < n; j++) if (isSource(j) && posOf(j) === p) origin += influence[j]!;
  // Remove every node at p (rows and columns); what still reaches the sources avoided p.
  const without = Float64Array.from(normalized);
  for (let j = 0; j < n; j++)
    if (posOf(j) === p)
      for (let k = 0; k < n; k++) {
        without[j * n + k] = 0;
        without[k * n + j] = 0;
      }
  const inf = computeInfluence(without, n, weights);
  let avoiding = 0;
  for (let j = 0; j < n; j++) if (isSource(j)) avoiding += inf[j]!;
  return { pos: p, token: strs[p]!, origin: origin / sourceTotal, through: 1 - avoiding / sourceTotal };
});
// Direct edges from nodes at the earlier position into the target logit (attention-mediated).
let directFromEarlier = 0;
let directAbs = 0;
for (let c = 0; c < n; c++) {
  const w = prunedAdjacency[target * n + c]!;
  directAbs += Math.abs(w);
  if (posOf(c) === earlier) directFromEarlier += w;
}
console.log(`\ninfluence on the logit ${JSON.stringify(model.toString([predicted]))} by position (pruned graph):`);
console.log('  pos  token          originates  passes through');
for (const r of positions)
  console.log(
    `  ${String(r.pos).padStart(3)}  ${JSON.stringify(r.token).padEnd(14)} ${r.origin.toFixed(3).padStart(10)}  ${r.through.toFixed(3).padStart(14)}${r.pos === earlier ? '  <- after the first occurrence' : ''}`,
  );
const share = positions[earlier]!.through;
console.log(`through position ${earlier} (${JSON.stringify(strs[earlier])}): ${(100 * share).toFixed(1)}% of the logit's influence`);
console.log(
  `direct edges from position ${earlier} into the logit: ${directFromEarlier.toFixed(3)} (logit units; ${((100 * Math.abs(directFromEarlier)) / Math.max(directAbs, 1e-12)).toFixed(1)}% of the logit's |direct input| in the pruned graph)`,
);

// --- 4. the top nodes ---
const order = Array.from({ length: n }, (_, j) => j)
  .filter((j) => kept[j]!.kind !== 'logit')
  .sort((a, b) => influence[b]! - influence[a]!)
  .slice(0, 12);
const topNodes = order.map((j) => {
  const node = kept[j]!;
  const pos = posOf(j);
  const label =
    node.kind === 'feature' ? `feature L${node.layer}/${node.feature}` : node.kind === 'error' ? `error L${node.layer}` : `token`;
  return {
    node: label,
    pos,
    token: strs[pos]!,
    activation: node.kind === 'feature' ? node.activation : null,
    influence: influence[j]!,
    directToLogit: prunedAdjacency[target * n + j]!,
  };
});
console.log('\ntop nodes of the pruned graph (influence on the logit):');
console.log('  node              pos  token          activation  influence  direct edge to logit');
for (const t of topNodes)
  console.log(
    `  ${t.node.padEnd(17)} ${String(t.pos).padStart(3)}  ${JSON.stringify(t.token).padEnd(14)} ${(t.activation === null ? '' : t.activation.toFixed(3)).padStart(10)}  ${t.influence.toFixed(3).padStart(9)}  ${t.directToLogit.toFixed(3).padStart(20)}`,
  );

// --- 5. ablations against the graph's prediction, in every setting ---
// One verifier: the node influence is the pruned graph's (it does not depend on the thresholds)
// and the clean run is made once, so each check is one intervened run.
const ctx = prepareReplacement(model, ids, transcoders);
const verify = graphVerifier(model, transcoders, g, { influence: pruned.influence, prepared: ctx });
// The BOS (an attention sink: features there move later layers' attention, see phase 6).
const bos = ids[0] === model.cfg.bosTokenId ? [0] : [];
const settings: { name: string; label: string; options: VerifyOptions }[] = [
  { name: 'replacement', label: '(a) replacement model', options: { mode: 'replacement' } },
  { name: 'attention', label: '(b) model, attention frozen', options: { mode: 'model', freeze: { attention: true } } },
  {
    name: 'attention+norms',
    label: '(c) model, attention + norms frozen',
    options: { mode: 'model', freeze: { attention: true, norms: true } },
  },
  { name: 'live', label: '(d) model, all live', options: { mode: 'model' } },
  { name: 'live-no-bos', label: '(e) model, all live, no BOS features', options: { mode: 'model', excludePositions: bos } },
  { name: 'norms+errors', label: '    model, only attention live', options: { mode: 'model', freeze: { norms: true, errors: true } } },
  { name: 'attention+errors', label: '    model, only norms live', options: { mode: 'model', freeze: { attention: true, errors: true } } },
  { name: 'replacement-no-bos', label: '    replacement, no BOS features', options: { mode: 'replacement', excludePositions: bos } },
];
console.log('\nablating the top k features (change of the target logit, demeaned, pre-softmax):');
console.log(`  ${'setting'.padEnd(38)}  k  predicted    actual   |actual - predicted|`);
const tVerify = performance.now();
const ks = [1, 3, 5, 10].filter((k) => k <= L.nFeatures);
const verifyRows: { k: number; mode: string; predicted: number; actual: number; features: string[] }[] = [];
for (const st of settings)
  for (const k of ks) {
    const v = verify({ ...st.options, topFeatures: k, logitRank: 0 });
    verifyRows.push({
      k,
      mode: st.name,
      predicted: v.predicted,
      actual: v.actual,
      features: v.features.map((f) => `L${f.layer}/${f.feature}@${f.pos}`),
    });
    console.log(
      `  ${st.label.padEnd(38)} ${String(k).padStart(2)} ${v.predicted.toFixed(4).padStart(10)} ${v.actual.toFixed(4).padStart(9)} ${Math.abs(
        v.actual - v.predicted,
      )
        .toFixed(4)
        .padStart(12)}`,
    );
  }
const verifySeconds = (performance.now() - tVerify) / 1000;
const tolerance = settings.map(({ name, label }) => {
  const rows = verifyRows.filter((v) => v.mode === name);
  const absolute = Math.max(0, ...rows.map((v) => Math.abs(v.actual - v.predicted)));
  const relative = Math.max(0, ...rows.map((v) => Math.abs(v.actual - v.predicted) / Math.max(Math.abs(v.predicted), 1e-12)));
  console.log(
    `  ${label.trim().padEnd(38)} worst |actual - predicted| ${absolute.toFixed(4)} (${(100 * relative).toFixed(1)}% of |predicted|)`,
  );
  return { mode: name, absolute, relative };
});
console.log(`  ${verifyRows.length} checks in ${verifySeconds.toFixed(1)} s`);

// --- 6. why the real model differs: each of the top features alone, one frozen quantity released at a time ---
// Replacement model -> error terms live (the true MLPs respond) -> norms live -> attention live
// (the real model). Each step's change of the measured effect is what that quantity does.
const ladder: VerifyOptions[] = [
  { mode: 'replacement' },
  { mode: 'model', freeze: { attention: true, norms: true } }, // + error terms live
  { mode: 'model', freeze: { attention: true } }, // + norms live
  { mode: 'model' }, // + attention live: the real model
];
const kMax = ks[ks.length - 1] ?? 0;
const topSet = kMax > 0 ? verify({ topFeatures: kMax }).features : [];
const patternNames = Array.from({ length: model.cfg.nLayers }, (_, l) => hookName('pattern', l));
/** The head whose attention row at the last position moves most (L1) when `feats` are zeroed in the live model. */
const headMoves = (feats: typeof topSet) => {
  const r = intervene(
    model,
    ids,
    transcoders,
    feats.map((f) => ({ layer: f.layer, feature: f.feature, positions: [f.pos], op: 'zero' as const })),
    { mode: 'model', cache: patternNames },
    ctx,
  );
  const nPos = ids.length;
  const moves: { head: string; l1: number; key: number; before: number; after: number }[] = [];
  patternNames.forEach((name, l) => {
    const after = r.cached.get(name)!.dataSync() as Float32Array; // [1, heads, q, k]
    const before = ctx.frozen.get(name)!.dataSync() as Float32Array;
    for (let h = 0; h < model.cfg.nHeads; h++) {
      const row = (h * nPos + nPos - 1) * nPos;
      let l1 = 0;
      let key = 0;
      for (let k = 0; k < nPos; k++) {
        const dk = Math.abs(after[row + k]! - before[row + k]!);
        l1 += dk;
        if (dk > Math.abs(after[row + key]! - before[row + key]!)) key = k;
      }
      moves.push({ head: `L${l}H${h}`, l1, key, before: before[row + key]!, after: after[row + key]! });
    }
  });
  return moves.sort((a, b) => b.l1 - a.l1);
};
console.log('\neach top feature zeroed alone: measured change of the logit as frozen quantities are released one by one');
console.log('  feature          pos  predicted  replacement   +errors    +norms  +attention  head moving most (last row)');
const singles = topSet.map((f) => {
  const only = { layer: f.layer, pos: f.pos, feature: f.feature };
  const steps = ladder.map((st) => verify({ ...st, features: [only] }));
  const move = headMoves([f])[0]!;
  const label = `L${f.layer}/${f.feature}`;
  console.log(
    `  ${label.padEnd(16)} ${String(f.pos).padStart(3)}  ${steps[0]!.predicted.toFixed(4).padStart(9)}  ${steps.map((v) => v.actual.toFixed(4).padStart(10)).join(' ')}  ${move.head} ${move.l1.toFixed(3)} (key ${move.key}: ${move.before.toFixed(3)} -> ${move.after.toFixed(3)})`,
  );
  const [replacement, errors, norms, attention] = steps.map((v) => v.actual) as [number, number, number, number];
  return { feature: label, pos: f.pos, predicted: steps[0]!.predicted, replacement, errors, norms, attention, head: move };
});
const worst = verifyRows
  .filter((v) => v.mode === 'live')
  .sort((a, b) => Math.abs(b.actual - b.predicted) - Math.abs(a.actual - a.predicted))[0];
let worstHeads: ReturnType<typeof headMoves> = [];
if (worst) {
  worstHeads = headMoves(topSet.slice(0, worst.k)).slice(0, 4);
  console.log(
    `live, k = ${worst.k} (the worst gap): heads whose last-position attention moves most: ${worstHeads.map((m) => `${m.head} ${m.l1.toFixed(3)} (key ${m.key}: ${m.before.toFixed(3)} -> ${m.after.toFixed(3)})`).join(', ')}`,
  );
}

if (jsonOut)
  writeFileAtomic(
    jsonOut,
    JSON.stringify(
      {
        prompt,
        tokens: ids,
        prediction: { token: predicted, str: model.toString([predicted]), probability: pPredicted },
        earlierPosition: earlier,
        seconds,
        nodes: L.n,
        activeFeatures: L.nFeatures,
        pruned: { nodes: keptNodes, edges: keptEdges },
        scores: { full, pruned: prunedScores },
        shareThroughEarlier: share,
        directFromEarlier,
        positions,
        topNodes,
        verify: verifyRows,
        verifySeconds,
        tolerance,
        singles,
        worstHeads,
      },
      null,
      2,
    ) + '\n',
  );
