/**
 * The model the server tests serve (server-api, server-cli, server-features): a random GPT-2 over
 * the tiny BPE vocabulary of test/fixtures/tiny-bpe, so prompts can be text.
 */
import { fileURLToPath } from 'node:url';
import { HookedTransformer, PRNG, gpt2Config, initParams, loadTokenizer, mapTensors, randn, type ModelParams } from '../src/index.js';

export const TOKENIZER_DIR = fileURLToPath(new URL('./fixtures/tiny-bpe/', import.meta.url));
/** The tiny BPE vocabulary's BOS (and EOS) token id. */
export const BOS = 296;

/** A random 2-layer GPT-2 (d_model 32, 4 heads, context 32) over the tiny BPE vocabulary (298 ids): initParams plus 0.3 N(0, 1) noise from `seed`. */
export function tinyModel(options: { nLayers?: number; seed?: number } = {}): HookedTransformer {
  const seed = options.seed ?? 1;
  const cfg = gpt2Config({ nLayers: options.nLayers ?? 2, dModel: 32, nHeads: 4, dVocab: 298, nCtx: 32, bosTokenId: BOS, eosTokenId: BOS });
  const rng = new PRNG(seed);
  const params = mapTensors(initParams(cfg, { seed }), (t) =>
    randn([...t.shape], { rng })
      .mul(0.3)
      .add(t),
  ) as ModelParams;
  const model = new HookedTransformer(cfg, params);
  model.tokenizer = loadTokenizer(TOKENIZER_DIR);
  return model;
}
