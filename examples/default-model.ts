/**
 * The default model in one page: open the small transformer that ships with glassbox (no
 * network), predict, generate, look inside (the logit lens, direct logit attribution) and score
 * its heads (induction heads in layers 1 and 2, previous-token heads in layer 0). Run: npm run demo
 */
import { HookedTransformer } from '../src/model/index.js';
import { directLogitAttribution, inductionScores, logitLens, previousTokenScores } from '../src/analysis/index.js';

const model = await HookedTransformer.fromPretrained('default');
const c = model.cfg;
console.log(`default model: ${c.nLayers} layers, d_model ${c.dModel}, ${c.nHeads} heads, vocabulary ${c.dVocab}, context ${c.nCtx}`);

// Next-token predictions after a prompt.
const prompt = 'Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my';
const tokens = model.toTokens(prompt); // [1, pos], with <|endoftext|> as BOS
const probs = model.forward(tokens).index([0, -1]).softmax(-1); // [d_vocab]
const { values, indices } = probs.topk(5);
console.log(`\n${JSON.stringify(prompt)} ->`);
(indices.toArray() as number[]).forEach((id, i) =>
  console.log(`  ${(values.toArray() as number[])[i]!.toFixed(3)}  ${JSON.stringify(model.toString([Number(id)]))}`),
);

// Greedy continuation with the KV cache.
const { newTokens } = model.generate(tokens, { maxNewTokens: 20 });
console.log(`\ngreedy continuation: ${JSON.stringify(model.toString(newTokens[0]))}`);

// Logit lens: the top token at the last position after each layer.
const lens = logitLens(model, prompt, { topK: 1 });
console.log('\nlogit lens at the last position:');
lens.top.forEach((row, l) => console.log(`  ${lens.labels[l]!.padEnd(10)} ${JSON.stringify(row[row.length - 1]![0]!.str)}`));

// Direct logit attribution of the top prediction: which components wrote it.
const answer = Number((indices.toArray() as number[])[0]);
const dla = directLogitAttribution(model, tokens, { answer });
const ranked = dla.labels.map((label, i) => [label, dla.values[i]!] as const).sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]));
console.log(`\ndirect logit attribution to ${JSON.stringify(model.toString([answer]))} (top 5 of ${ranked.length} components):`);
for (const [label, v] of ranked.slice(0, 5)) console.log(`  ${label.padEnd(10)} ${v.toFixed(3)}`);

// Induction heads: attention to the token after the current token's previous occurrence.
const ind = inductionScores(model, { batch: 4, seqLen: 20 }).scores.toArray() as number[][];
const prev = previousTokenScores(model, prompt).toArray() as number[][];
console.log('\nhead scores (layer x head): induction on repeated random tokens | previous-token on the prompt');
ind.forEach((row, l) =>
  console.log(`  L${l}  ${row.map((v) => v.toFixed(2)).join(' ')}  |  ${prev[l]!.map((v) => v.toFixed(2)).join(' ')}`),
);
