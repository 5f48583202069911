/**
 * Runs past what the machine can hold: ONNX Runtime's allocation failure must come back as an
 * OutOfMemoryError that says how large the run was and what to reduce, not as ORT's raw status.
 * (The 64 x 256 `cache` needs more memory than this machine lacks, so the cases ask ORT
 * for buffers no machine has.)
 */
import { OutOfMemoryError, jit, tensor, type Tensor } from '../../src/tensor/index.js';
import type { HookedTransformer } from '../../src/model/hooked.js';
import { HF, load } from './build.js';
import type { Case } from './harness.js';

let gpt2: HookedTransformer | null = null;
const model = (): HookedTransformer => (gpt2 ??= load(`${HF}gpt2`));

/** A hook that asks for a [.., 2^k] buffer: 2^38 floats (1 TiB) at 64 x 2^k per position. */
const huge =
  (k: number) =>
  (x: Tensor): Tensor =>
    x.add(
      x
        .reshape([...x.shape, 1])
        .expand([...x.shape, 2 ** k])
        .sum(-1),
    );

function asOom(f: () => unknown): () => unknown {
  return () => {
    try {
      return f();
    } catch (e) {
      if (!(e instanceof OutOfMemoryError)) throw new Error(`not an OutOfMemoryError: ${e instanceof Error ? e.message : String(e)}`);
      throw e;
    }
  };
}

export function runCases(): Case[] {
  return [
    {
      name: 'a jitted function ORT cannot allocate for',
      run: asOom(() => jit((x: Tensor) => x.expand([2 ** 19, 2 ** 19]).sum())(tensor([[1]]))),
      error: [/^ONNX Runtime could not allocate a buffer of 1\.0 TiB for this run; run less at once/],
    },
    {
      name: 'a hooked forward ORT cannot allocate for',
      run: asOom(() => model().runWithHooks([[1, 2, 3]], { hooks: [['blocks.0.hook_resid_pre', huge(32)]] })),
      error: [
        /^a run of 1 x 3 tokens: ONNX Runtime could not allocate a buffer of \d+(\.\d)? (GiB|TiB)/,
        /smaller batch or shorter sequences/,
        /memoryBudgetBytes \(or GLASSBOX_MEMORY_BUDGET\)/,
      ],
    },
    {
      name: 'runWithCache (the cache command) ORT cannot allocate for',
      run: asOom(() =>
        model().hooked(
          [
            [1, 2, 3],
            [4, 5, 6],
          ],
          { hooks: [['blocks.1.hook_resid_pre', huge(32)]], cache: ['blocks.0.hook_resid_post', 'ln_final.hook_normalized'] },
        ),
      ),
      error: [/^a run of 2 x 3 tokens with 2 hook points cached or marked: ONNX Runtime could not allocate/, /or fewer hook points/],
    },
    {
      name: 'a gradient run ORT cannot allocate for',
      run: asOom(() =>
        model().hooked([[1, 2, 3]], {
          hooks: [['blocks.1.hook_resid_pre', huge(32)]],
          grads: ['blocks.0.hook_resid_pre'],
          metric: (l) => l.sum(),
        }),
      ),
      error: [/^a run of 1 x 3 tokens with 1 hook point cached or marked: ONNX Runtime could not allocate/],
    },
    {
      name: 'generation ORT cannot allocate for',
      run: asOom(() => model().generate([1, 2, 3], { maxNewTokens: 2, hooks: [['blocks.0.hook_resid_pre', huge(32)]] })),
      error: [/^generating 2 tokens after 1 x 3 tokens: ONNX Runtime could not allocate/],
    },
    {
      name: 'after an allocation failure the model runs normally',
      run: () => {
        try {
          model().runWithHooks([[1, 2, 3]], { hooks: [['blocks.0.hook_resid_pre', huge(32)]] });
        } catch {
          // expected
        }
        return model()
          .forward([[1, 2, 3]])
          .dataSync();
      },
      check: (r) => {
        if (!(r as Float32Array).every(Number.isFinite)) throw new Error('non-finite logits after an allocation failure');
      },
    },
  ];
}
