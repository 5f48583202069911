import { bloom } from './bloom.js';
import { gemma } from './gemma.js';
import { gemma3 } from './gemma3.js';
import { glassbox } from './glassbox.js';
import { gpt2 } from './gpt2.js';
import { gptNeo } from './gpt_neo.js';
import { gptj } from './gptj.js';
import { gptNeox } from './gpt_neox.js';
import { llama } from './llama.js';
import { opt } from './opt.js';
import { phi } from './phi.js';
import { stablelm } from './stablelm.js';
import { mixtral } from './mixtral.js';
import { olmo2 } from './olmo2.js';
import { phi3 } from './phi3.js';
import type { Family } from './types.js';

export type { Family, WeightReader } from './types.js';

/** The registry of families, by Hugging Face `model_type`. */
export const FAMILIES: readonly Family[] = [
  ...[gpt2, gptNeox, gptNeo, gptj, opt, bloom, phi, phi3, stablelm],
  ...[llama, gemma, gemma3, olmo2, mixtral, glassbox],
];

export function familyFor(modelType: unknown, file: string): Family {
  const f = FAMILIES.find((fam) => fam.modelTypes.includes(String(modelType)));
  if (!f)
    throw new Error(
      `${file}: model_type '${String(modelType)}' is not supported (supported: ${FAMILIES.flatMap((x) => x.modelTypes).join(', ')})`,
    );
  return f;
}
