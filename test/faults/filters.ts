/**
 * Hook-point filters handed to the library (the CLI's `--names` is in cli.ts): a pattern or
 * predicate that matches no hook point is refused with the nearest names, not run as a cache of
 * nothing; a list names each point, and an empty list is none.
 */
import type { HookedTransformer } from '../../src/model/hooked.js';
import type { Tensor } from '../../src/tensor/index.js';
import { HF, PROMPT, load, referenceLogits } from './build.js';
import type { Case } from './harness.js';

let gpt2: HookedTransformer | null = null;
const model = (): HookedTransformer => (gpt2 ??= load(`${HF}gpt2`));
const metric = (logits: Tensor): Tensor => logits.sum();

/** Asserts the logits are the fixture's and the cache holds exactly `names`. */
function cached(names: readonly string[]): (r: unknown) => void {
  return (r) => {
    const { logits, cache } = r as { logits: Tensor; cache: { keys(): string[] } };
    const got = logits.dataSync() as Float32Array;
    const want = referenceLogits(`${HF}gpt2`);
    for (let i = 0; i < got.length; i++)
      if (got[i] !== want[i]) throw new Error(`logit ${i} is ${got[i]}, the fixture computes ${want[i]}`);
    const keys = [...cache.keys()].sort();
    if (keys.join() !== [...names].sort().join()) throw new Error(`cache holds [${keys.join(', ')}], expected [${[...names].join(', ')}]`);
  };
}

export function filterCases(): Case[] {
  return [
    {
      name: 'runWithCache: a pattern matching no hook point',
      run: () => model().runWithCache(PROMPT, { names: /blocks\.0\.hook_resid_prex/ }),
      error: [/matches no hook point/, /did you mean 'blocks\.0\.hook_resid_pre'/],
    },
    {
      name: "runWithCache: another model's name as a pattern (hook_rot_k on GPT-2)",
      run: () => model().runWithCache(PROMPT, { names: /hook_rot_k/ }),
      error: [/\/hook_rot_k\/ matches no hook point/, /did you mean/],
    },
    {
      name: 'runWithCache: a predicate matching no hook point',
      run: () => model().runWithCache(PROMPT, { names: (n) => n.startsWith('blocks.9.') }),
      error: [/the filter function matches no hook point/, /model\.hookNames/],
    },
    {
      name: 'runWithCache: an unknown name in a list',
      run: () => model().runWithCache(PROMPT, { names: ['blocks.0.hook_resid_post', 'blocks.0.hook_resid_pots'] }),
      error: [/unknown hook point 'blocks\.0\.hook_resid_pots'/, /did you mean 'blocks\.0\.hook_resid_post'/],
    },
    {
      name: 'runWithCache: an empty list caches nothing, computes the logits',
      run: () => model().runWithCache(PROMPT, { names: [] }),
      check: cached([]),
    },
    {
      name: 'runWithCache: a pattern caches exactly what it matches',
      run: () => model().runWithCache(PROMPT, { names: /hook_resid_post$/ }),
      check: cached(['blocks.0.hook_resid_post', 'blocks.1.hook_resid_post']),
    },
    {
      name: 'gradientsAt: a pattern matching no hook point',
      run: () => model().gradientsAt(PROMPT, /hook_resid_mid_typo/, metric),
      error: [/grads: .* matches no hook point/, /did you mean/],
    },
    {
      name: 'runWithHooks: a pattern matching no hook point',
      run: () => model().runWithHooks(PROMPT, { hooks: [[/blocks\.7\.hook_resid_pre/, (x: Tensor) => x]] }),
      error: [/hooks: .* matches no hook point/, /did you mean/],
    },
  ];
}
