/**
 * Auto-interp: explanations of features by a language model over an OpenAI-compatible
 * chat-completions endpoint, scored by detection, stored beside the feature store
 * (explanations.jsonl).
 *
 * - `chat.ts`: the endpoint client (timeouts, retries with backoff, malformed replies);
 * - `explain.ts`: prompts, detection scoring, the resumable concurrent run, the file;
 * - `pool.ts`: contexts where a feature does not fire (checked by running the model).
 */
export { chatCompletion, redactApiBase, ChatError, type ChatErrorKind, type ChatMessage, type ChatOptions } from './chat.js';
export {
  explainFeatures,
  readExplanations,
  writeExplanations,
  explainMessages,
  detectionMessages,
  parseExplanation,
  parseDetection,
  detectionScore,
  markedText,
  EXPLANATIONS_FILE,
  type FeatureExplanation,
  type DetectionScore,
  type TextContext,
  type ExplainOptions,
  type ExplainResult,
} from './explain.js';
export { nonActivatingPool, type NonActivatingPool, type PoolOptions } from './pool.js';
