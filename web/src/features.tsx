/**
 * What the dictionary views share (FeatureView, FiresView): the attached dictionaries, links to a
 * feature's page, and text with every token coloured by a feature's activation.
 */
import { useSyncExternalStore } from 'react';
import type { SaeInfo } from './api';
import { hrefOf } from './router';
import { showTok } from './ui';

export type { SaeInfo } from './api';

/** The dictionaries the server has attached (GET /api/saes, read by App with the model); empty when none. */
let attached: SaeInfo[] = [];
const listeners = new Set<() => void>();

export function setAttachedSaes(saes: SaeInfo[]): void {
  attached = saes;
  for (const l of listeners) l();
}

export function useSaes(): SaeInfo[] {
  return useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => attached,
  );
}

/** The URL of a feature's page. */
export function featureHref(sae: string, feature: number): string {
  return hrefOf('feature', { sae, feature: String(feature) });
}

/** An activation as shown: 3 decimals. */
export function fmtAct(x: number | null | undefined): string {
  return x === null || x === undefined ? '—' : x.toFixed(3);
}

/** The background of a token with activation `act` on a scale up to `max`: orange, stronger with the activation. */
export function actColor(act: number | null, max: number): string | undefined {
  if (act === null || !(act > 0) || !(max > 0)) return undefined;
  const a = Math.min(1, act / max);
  return `rgba(234, 120, 20, ${(0.12 + 0.78 * a).toFixed(3)})`;
}

/**
 * Tokens as running text, each coloured by its activation (its value in the tooltip and in
 * data-act); `mark` underlines one token (the max-activating one).
 */
export function ActivationText({
  tokens,
  max,
  mark,
  testId,
}: {
  tokens: { id: number; str: string | null; act: number | null }[];
  max: number;
  mark?: number;
  testId: string;
}) {
  return (
    <span className="act-text" data-testid={testId}>
      {tokens.map((t, i) => (
        <span
          key={i}
          className={`act-tok${i === mark ? ' act-max' : ''}`}
          style={{ background: actColor(t.act, max) }}
          title={`${showTok(t.str, t.id)} · activation ${fmtAct(t.act)}`}
          data-testid="act-tok"
          data-act={t.act ?? ''}
          data-token={t.id}
        >
          {showTok(t.str, t.id)}
        </span>
      ))}
    </span>
  );
}
