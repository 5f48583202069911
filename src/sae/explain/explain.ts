/**
 * Auto-interp: a language model explains each feature from its top contexts, and the explanation
 * is scored by detection (can the model, given only the explanation, tell held-out contexts where
 * the feature fires from contexts where it does not?).
 *
 * `explainFeatures` in phases, per feature, with at most `concurrency` features in flight:
 *   1. split the feature's top contexts (from its page in the feature store): the strongest
 *      `explainContexts` go to the explainer; up to `scoreContexts` of the rest, spread over the
 *      ranks, are held out for scoring;
 *   2. ask for an explanation (the contexts as text with the firing tokens marked `<<like this>>`
 *      and their activations);
 *   3. detection: show the explanation and the held-out activating contexts shuffled with as many
 *      non-activating ones (from `nonActivating`), ask for a list of 0/1, one per context; the
 *      score is the balanced accuracy (true-positive rate + true-negative rate) / 2;
 *   4. append the result to explanations.jsonl in the store directory (rewritten atomically,
 *      at most every `flushMs` and at the end), so an interrupted run resumes where it stopped:
 *      features already there are skipped.
 *
 * A feature that fails (the endpoint keeps failing, or keeps answering in a form that cannot be
 * read) is reported in the result and not written, so the next run tries it again.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../io/atomic.js';
import type { FeatureStore } from '../features/store.js';
import { featurePage, type PageContext } from '../features/page.js';
import { chatCompletion, redactApiBase, type ChatMessage, type ChatOptions } from './chat.js';

/** The explanations file of a feature store directory. */
export const EXPLANATIONS_FILE = 'explanations.jsonl';

/** The detection score of an explanation. */
export interface DetectionScore {
  method: 'detection';
  /** (true-positive rate + true-negative rate) / 2, in [0, 1]; 0.5 is chance. */
  balanced_accuracy: number;
  true_positives: number;
  false_negatives: number;
  true_negatives: number;
  false_positives: number;
}

/** One line of explanations.jsonl. */
export interface FeatureExplanation {
  feature: number;
  explanation: string;
  /** null when scoring was turned off or the feature had no held-out or non-activating contexts. */
  score: DetectionScore | null;
  /** The explainer: model name and API base (without credentials). */
  explainer: { model: string; api_base: string };
  created_at: string;
}

/**
 * The explanations stored beside a feature store (`dir/explanations.jsonl`), by feature index;
 * an empty map when there is none. A line that is not a valid explanation is an error naming the
 * file, the line and the field. A feature explained twice keeps its last line.
 */
export function readExplanations(storeDir: string): Map<number, FeatureExplanation> {
  const file = join(storeDir, EXPLANATIONS_FILE);
  const out = new Map<number, FeatureExplanation>();
  if (!existsSync(file)) return out;
  const lines = readFileSync(file, 'utf8').split('\n');
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `${file}:${i + 1}`;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      throw new Error(`${where}: not JSON (${e instanceof Error ? e.message : String(e)})`, { cause: e });
    }
    out.set(checkExplanation(v, where).feature, v as FeatureExplanation);
  });
  return out;
}

function checkExplanation(v: unknown, where: string): FeatureExplanation {
  const bad = (what: string): never => {
    throw new Error(`${where}: ${what}`);
  };
  if (!v || typeof v !== 'object' || Array.isArray(v)) bad('expected a JSON object');
  const e = v as Record<string, unknown>;
  if (typeof e.feature !== 'number' || !Number.isInteger(e.feature) || e.feature < 0)
    bad(`'feature' must be an integer >= 0, got ${JSON.stringify(e.feature)}`);
  if (typeof e.explanation !== 'string') bad(`'explanation' must be a string`);
  if (e.score !== null) {
    const s = e.score as Record<string, unknown> | undefined;
    if (!s || typeof s !== 'object' || s.method !== 'detection' || typeof s.balanced_accuracy !== 'number')
      bad(`'score' must be null or { method: "detection", balanced_accuracy, ... }`);
  }
  const x = e.explainer as Record<string, unknown> | undefined;
  if (!x || typeof x.model !== 'string' || typeof x.api_base !== 'string') bad(`'explainer' must be { model, api_base }`);
  return e as unknown as FeatureExplanation;
}

/** Writes the explanations, sorted by feature, atomically. */
export function writeExplanations(storeDir: string, explanations: Map<number, FeatureExplanation>): void {
  const lines = [...explanations.values()].sort((a, b) => a.feature - b.feature).map((e) => JSON.stringify(e));
  writeFileAtomic(join(storeDir, EXPLANATIONS_FILE), lines.length ? `${lines.join('\n')}\n` : '');
}

/** A context as the explainer and scorer see it: token strings and the feature's activation at each. */
export interface TextContext {
  tokens: string[];
  acts: number[];
}

function pageText(c: PageContext): TextContext {
  return { tokens: c.tokens.map((t) => t.str ?? `<#${t.id}>`), acts: c.tokens.map((t) => t.act) };
}

/** A context with the tokens where the feature fires marked `<<token>>`. */
export function markedText(c: TextContext): string {
  return c.tokens.map((t, i) => (c.acts[i]! > 0 ? `<<${t}>>` : t)).join('');
}

/** The explainer's prompt for contexts of one feature. */
export function explainMessages(contexts: readonly TextContext[]): ChatMessage[] {
  const examples = contexts
    .map((c, i) => {
      const firing = c.tokens
        .map((t, j) => [t, c.acts[j]!] as const)
        .filter(([, a]) => a > 0)
        .map(([t, a]) => `${JSON.stringify(t)} ${a.toFixed(2)}`)
        .join(', ');
      return `Example ${i + 1}: ${markedText(c)}\nActivations: ${firing}`;
    })
    .join('\n\n');
  return [
    {
      role: 'system',
      content:
        'You are studying a neuron-like feature of a language model. You are shown text excerpts where it fires; the tokens where it fires are marked <<like this>>, and its activation on each is listed. Explain in one short phrase what the feature detects. Reply with the explanation only, on one line.',
    },
    { role: 'user', content: examples },
  ];
}

/** Reads the explanation from the explainer's reply: its first non-empty line, without a label or quotes. */
export function parseExplanation(reply: string): string | null {
  const line = reply
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l !== '');
  if (line === undefined) return null;
  let text = line.replace(/^(explanation|answer)\s*:\s*/i, '').trim();
  // quotes around the whole explanation, not quotes inside it
  const q = text[0];
  if (text.length >= 2 && (q === '"' || q === "'" || q === '`') && text.endsWith(q!) && !text.slice(1, -1).includes(q!))
    text = text.slice(1, -1).trim();
  return text === '' ? null : text;
}

/** The detection prompt: the explanation and numbered contexts (no marks). */
export function detectionMessages(explanation: string, contexts: readonly TextContext[]): ChatMessage[] {
  return [
    {
      role: 'system',
      content:
        'A feature of a language model has this explanation. For each numbered text excerpt, say whether the feature fires somewhere in it (1) or not (0). Reply with a JSON list of 0s and 1s, one per excerpt, in order, and nothing else.',
    },
    {
      role: 'user',
      content: `Explanation: ${explanation}\n\n${contexts.map((c, i) => `${i + 1}. ${c.tokens.join('')}`).join('\n')}`,
    },
  ];
}

/** The scorer's 0/1 list from its reply (the first [...] in it), or null unless it holds exactly `n` of 0/1/true/false. */
export function parseDetection(reply: string, n: number): number[] | null {
  const m = /\[[^\]]*\]/.exec(reply);
  if (!m) return null;
  let v: unknown;
  try {
    v = JSON.parse(m[0]);
  } catch {
    return null;
  }
  if (!Array.isArray(v) || v.length !== n) return null;
  const out: number[] = [];
  for (const x of v) {
    if (x === 1 || x === true || x === '1') out.push(1);
    else if (x === 0 || x === false || x === '0') out.push(0);
    else return null;
  }
  return out;
}

/** Balanced accuracy of predictions against labels (1: fires). */
export function detectionScore(labels: readonly number[], predictions: readonly number[]): DetectionScore {
  let tp = 0,
    fn = 0,
    tn = 0,
    fp = 0;
  labels.forEach((y, i) => {
    const p = predictions[i]!;
    if (y === 1 && p === 1) tp++;
    else if (y === 1) fn++;
    else if (p === 0) tn++;
    else fp++;
  });
  const tpr = tp + fn > 0 ? tp / (tp + fn) : 0;
  const tnr = tn + fp > 0 ? tn / (tn + fp) : 0;
  return {
    method: 'detection',
    balanced_accuracy: (tpr + tnr) / 2,
    true_positives: tp,
    false_negatives: fn,
    true_negatives: tn,
    false_positives: fp,
  };
}

/** A small deterministic generator (mulberry32), so a run's shuffles repeat. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Options of `explainFeatures`. */
export interface ExplainOptions extends Omit<ChatOptions, 'onRetry'> {
  /** The features to explain (default: every feature that fired). */
  features?: readonly number[];
  /** Contexts shown to the explainer, strongest first (default 10). */
  explainContexts?: number;
  /** Held-out activating contexts for detection, and as many non-activating (default 5; 0: no scoring). */
  scoreContexts?: number;
  /**
   * Contexts where `feature` does not fire, at most `count` (see `nonActivatingPool`). Without
   * it, explanations are not scored.
   */
  nonActivating?: (feature: number, count: number) => TextContext[];
  /** Features in flight at once (default 4). */
  concurrency?: number;
  /** Explain again features already in explanations.jsonl (default false: resume). */
  overwrite?: boolean;
  /** Seed of the shuffles (default 0). */
  seed?: number;
  /** Longest time between rewrites of explanations.jsonl, in ms (default 2000). */
  flushMs?: number;
  onProgress?: (p: { done: number; total: number; skipped: number; failed: number; feature: number }) => void;
  onRetry?: (info: { feature: number; attempt: number; waitMs: number; reason: string }) => void;
}

/** What `explainFeatures` did. */
export interface ExplainResult {
  explained: FeatureExplanation[];
  /** Features already explained (resumed past). */
  skipped: number;
  failed: { feature: number; error: string }[];
  file: string;
}

/**
 * Explains and scores features of the store in `storeDir` (see the file's doc for the phases),
 * writing `storeDir/explanations.jsonl`.
 */
export async function explainFeatures(store: FeatureStore, storeDir: string, options: ExplainOptions): Promise<ExplainResult> {
  const file = join(storeDir, EXPLANATIONS_FILE);
  const existing = readExplanations(storeDir);
  const d = store.meta.sae.d_sae;
  const wanted = options.features ?? Array.from({ length: d }, (_, i) => i).filter((i) => store.stats.fireCount[i]! > 0);
  for (const f of wanted)
    if (!Number.isInteger(f) || f < 0 || f >= d) throw new RangeError(`feature ${f} is out of range (the store has features 0..${d - 1})`);
  const todo = options.overwrite ? [...wanted] : wanted.filter((f) => !existing.has(f));
  const skipped = wanted.length - todo.length;
  const nExplain = options.explainContexts ?? 10;
  const nScore = options.scoreContexts ?? 5;
  const concurrency = Math.max(1, options.concurrency ?? 4);
  const explainer = { model: options.model, api_base: redactApiBase(options.apiBase) };
  const chat = (messages: ChatMessage[], feature: number): Promise<string> =>
    chatCompletion(messages, { ...options, onRetry: (info) => options.onRetry?.({ feature, ...info }) });

  const explained: FeatureExplanation[] = [];
  const failed: { feature: number; error: string }[] = [];
  let lastFlush = Date.now();
  const flush = (): void => {
    writeExplanations(storeDir, existing);
    lastFlush = Date.now();
  };

  /** Asks until `parse` reads the reply, at most 3 times. */
  const ask = async <T>(messages: ChatMessage[], feature: number, parse: (r: string) => T | null, what: string): Promise<T> => {
    let last = '';
    for (let i = 0; i < 3; i++) {
      last = await chat(messages, feature);
      const v = parse(last);
      if (v !== null) return v;
    }
    throw new Error(
      `${redactApiBase(options.apiBase)}: ${what} could not be read from 3 replies (last: ${JSON.stringify(last.slice(0, 200))})`,
    );
  };

  const one = async (feature: number): Promise<FeatureExplanation> => {
    const page = featurePage(store, feature);
    const contexts = page.contexts.map(pageText);
    if (contexts.length === 0) throw new Error(`feature ${feature} has no top contexts in the store (it never fired)`);
    const shown = contexts.slice(0, Math.min(nExplain, Math.max(1, contexts.length - (nScore > 0 ? 1 : 0))));
    const rest = contexts.slice(shown.length);
    const heldOut = Array.from(
      { length: Math.min(nScore, rest.length) },
      (_, i) => rest[Math.floor((i * rest.length) / Math.min(nScore, rest.length))]!,
    );
    const explanation = await ask(explainMessages(shown), feature, parseExplanation, 'an explanation');
    let score: DetectionScore | null = null;
    const negatives = heldOut.length > 0 && options.nonActivating ? options.nonActivating(feature, heldOut.length) : [];
    if (heldOut.length > 0 && negatives.length > 0) {
      const items = [...heldOut.map((c) => ({ c, y: 1 })), ...negatives.map((c) => ({ c, y: 0 }))];
      const r = rng((options.seed ?? 0) * 1_000_003 + feature);
      for (let i = items.length - 1; i > 0; i--) {
        const j = Math.floor(r() * (i + 1));
        [items[i], items[j]] = [items[j]!, items[i]!];
      }
      const predictions = await ask(
        detectionMessages(
          explanation,
          items.map((x) => x.c),
        ),
        feature,
        (reply) => parseDetection(reply, items.length),
        `a list of ${items.length} 0/1 answers`,
      );
      score = detectionScore(
        items.map((x) => x.y),
        predictions,
      );
    }
    return { feature, explanation, score, explainer, created_at: new Date().toISOString() };
  };

  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < todo.length) {
      const feature = todo[next++]!;
      try {
        const e = await one(feature);
        existing.set(feature, e);
        explained.push(e);
      } catch (err) {
        if (options.signal?.aborted) throw err;
        failed.push({ feature, error: err instanceof Error ? err.message : String(err) });
      }
      done++;
      options.onProgress?.({ done, total: todo.length, skipped, failed: failed.length, feature });
      if (Date.now() - lastFlush >= (options.flushMs ?? 2000)) flush();
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(1, todo.length)) }, worker));
  } finally {
    // what finished is kept, also when interrupted
    if (explained.length > 0 || !existsSync(file)) flush();
  }
  return { explained, skipped, failed, file };
}
