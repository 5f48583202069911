/**
 * A tour of the analysis toolkit on the default model: logit lens, direct logit attribution,
 * head detectors, ablation, activation patching, steering, probes and the tuned lens. The output
 * of this script is what docs/analysis.md shows. Run: npm run tour
 */
import { HookedTransformer } from '../src/model/index.js';
import {
  ablate,
  compareLenses,
  compareSteering,
  directLogitAttribution,
  inductionScores,
  logitLens,
  patchHeadOut,
  patchResidPre,
  probeActivations,
  steeringVector,
  toSingleToken,
  trainProbe,
  trainTunedLens,
} from '../src/analysis/index.js';
import { loadCorpus, splitCorpus } from '../src/train/corpus.js';

const model = await HookedTransformer.fromPretrained('default');
const fmt = (m: number[][]) => m.map((row, l) => `  L${l}  ${row.map((v) => v.toFixed(2).padStart(5)).join(' ')}`).join('\n');
const section = (title: string) => console.log(`\n## ${title}`);

// 1. Logit lens: what the residual stream "predicts" after each layer, at the last position.
section('logit lens');
const lens = logitLens(model, 'The whale rose out of the', { topK: 3 });
lens.top.forEach((row, l) =>
  console.log(
    `  ${lens.labels[l]!.padEnd(10)} ${row[row.length - 1]!.map((p) => `${JSON.stringify(p.str)} ${p.prob.toFixed(2)}`).join('  ')}`,
  ),
);

// 2. Direct logit attribution: which components push ' Starbuck' over ' Stubb'. The prompt is the
// workbench's default induction task: "Queequeg met" recurs, and the model copies what followed it
// the first time. (An IOI-style prompt does not work on this model: it names the most recent name.)
section('direct logit attribution');
const clean = 'Then Queequeg met Starbuck on deck, and later Queequeg met';
const corrupted = 'Then Queequeg met Stubb on deck, and later Queequeg met';
const starbuck = toSingleToken(model, ' Starbuck');
const stubb = toSingleToken(model, ' Stubb');
const dla = directLogitAttribution(model, clean, { answer: starbuck, wrong: stubb });
const ranked = dla.labels.map((l, i) => [l, dla.values[i]!] as const).sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]));
console.log(`  logit(' Starbuck') - logit(' Stubb') = ${dla.values.reduce((s, v) => s + v, 0).toFixed(3)}; largest components:`);
for (const [label, v] of ranked.slice(0, 6)) console.log(`  ${label.padEnd(10)} ${v.toFixed(3).padStart(7)}`);

// 3. Head detectors: induction heads on 20 random tokens written twice (the default model learned
// to copy at distances of up to 32 tokens; see the README).
section('induction scores (layer x head)');
const ind = inductionScores(model, { batch: 4, seqLen: 20 });
console.log(fmt(ind.scores.toArray() as number[][]));

// 4. Ablation: zero every head with an induction score above 0.5 and watch the loss on the repeats.
section('ablation');
const inductionHeads = (ind.scores.toArray() as number[][]).flatMap((row, layer) =>
  row.flatMap((v, head) => (v > 0.5 ? [{ layer, head }] : [])),
);
const repeated = ind.tokens;
const res = ablate(model, repeated, inductionHeads, {
  kind: 'zero',
  metric: (logits) => {
    // Mean log-probability of the correct next token in the repeated half.
    const n = repeated[0]!.length;
    const half = (n - 1) / 2;
    const logp = logits.logSoftmax(-1);
    let total = 0;
    let count = 0;
    const lp = logp.dataSync() as Float32Array;
    const V = model.cfg.dVocab;
    for (let r = 0; r < repeated.length; r++)
      for (let q = half + 1; q < n - 1; q++) {
        total += lp[(r * n + q) * V + repeated[r]![q + 1]!]!;
        count++;
      }
    return total / count;
  },
});
console.log(
  `  zero-ablating the ${inductionHeads.length} heads with induction score > 0.5 (${inductionHeads.map((h) => `L${h.layer}H${h.head}`).join(' ')}):`,
);
console.log(`  log-prob of the repeated tokens ${res.before.toFixed(2)} -> ${res.after.toFixed(2)}`);

// 5. Activation patching: where does the name to copy (Starbuck, not Stubb) live?
section('activation patching (clean = 1, corrupted = 0)');
const problem = { clean, corrupted, answer: starbuck, wrong: stubb };
const logitDiffOn = (prompt: string) => directLogitAttribution(model, prompt, { answer: starbuck, wrong: stubb }).logitDiff.item();
console.log(
  `  logit(' Starbuck') - logit(' Stubb'): clean ${logitDiffOn(clean).toFixed(2)}, corrupted ${logitDiffOn(corrupted).toFixed(2)}`,
);
const resid = patchResidPre(model, problem).toArray() as number[][];
const strs = model.toStrTokens(clean);
console.log(`  resid_pre, layer x position (${strs.map((s) => JSON.stringify(s)).join(' ')}):`);
console.log(fmt(resid));
console.log('  head outputs, layer x head:');
console.log(fmt(patchHeadOut(model, problem).toArray() as number[][]));
// Per position ([layer, pos, head]): which head, reading at which position, carries it.
const byPos = patchHeadOut(model, problem, { perPosition: true }).toArray() as number[][][];
const cells = byPos.flatMap((rows, l) => rows.flatMap((row, p) => row.map((v, h) => ({ l, p, h, v }))));
cells.sort((a, b) => Math.abs(b.v) - Math.abs(a.v));
console.log('  head outputs by position, the largest:');
for (const c of cells.slice(0, 5)) console.log(`  L${c.l}H${c.h} at ${JSON.stringify(strs[c.p])} (${c.p}) ${c.v.toFixed(2).padStart(5)}`);

// 6. Steering: add 2 x (mean(sea) - mean(state)) at layer 2 while generating.
section('steering');
const sea = ['The whale and the ship upon the sea', 'The harpoon struck the whale', 'The sailors on the deck of the ship'];
const state = [
  'The Congress and the government of the nation',
  'The people of the United States and their laws',
  'Our economy and the budget of the Government',
];
const vector = steeringVector(model, sea, state, { layer: 2, position: 'mean' });
const [cmp] = compareSteering(model, ['I believe that the'], vector, { layer: 2, scale: 2, maxNewTokens: 16 });
console.log(`  unsteered: ${JSON.stringify(cmp!.unsteeredText)}`);
console.log(`  steered:   ${JSON.stringify(cmp!.steeredText)}`);

// 7. Probe: is this sentence from Moby Dick or a State of the Union address? (layer-2 residual, last token)
section('linear probe: Moby Dick vs State of the Union');
const { validation } = splitCorpus(loadCorpus());
const sentences: { text: string; label: number }[] = [];
for (const doc of validation.documents)
  for (const s of doc.text
    .split(/(?<=[.!?])\s+/)
    .filter((x) => x.length > 40 && x.length < 300)
    .slice(0, 40))
    sentences.push({ text: s, label: doc.source === 'moby-dick' ? 0 : 1 });
const feats = probeActivations(
  model,
  sentences.map((s) => s.text),
  'blocks.2.hook_resid_pre',
  { position: 'last' },
);
const probe = await trainProbe(
  feats.features,
  sentences.map((s) => s.label),
  { kind: 'logistic', seed: 0 },
);
console.log(
  `  ${sentences.length} sentences: test accuracy ${probe.testAccuracy!.toFixed(3)} (majority baseline ${probe.majorityBaseline!.toFixed(3)})`,
);

// 8. Tuned lens: per-layer affine translators trained on corpus text, against the logit lens.
section('tuned lens vs logit lens (mean KL to the final distribution, nats)');
const text = validation.documents
  .map((d) => d.text)
  .join('\n')
  .slice(0, 40000);
const ids = model.toTokens(text, { prependBos: false })[0]!;
const rows: number[][] = [];
for (let i = 0; i + 64 <= ids.length && rows.length < 64; i += 64) rows.push(ids.slice(i, i + 64));
const train = rows.slice(0, 48);
const held = rows.slice(48);
const tuned = await trainTunedLens(model, train, { steps: 150, batchSize: 8, lr: 1e-3, progress: false });
const cmpLens = compareLenses(model, held, tuned.lens);
cmpLens.labels.forEach((l, i) =>
  console.log(`  ${l.padEnd(10)} logit ${cmpLens.logitLens[i]!.toFixed(3)}  tuned ${cmpLens.tunedLens![i]!.toFixed(3)}`),
);
