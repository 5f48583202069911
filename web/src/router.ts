/**
 * A small router over `location.hash`: `#/view?key=value&...`. The query holds a view's whole
 * state (its form and what is selected), so a link restores it.
 */
import { useEffect, useState } from 'react';

export const VIEWS = [
  { id: 'prompt', title: 'Prompt' },
  { id: 'attention', title: 'Attention' },
  { id: 'logit-lens', title: 'Logit lens' },
  { id: 'attribution', title: 'Attribution' },
  { id: 'patching', title: 'Patching' },
  { id: 'heads', title: 'Heads' },
  { id: 'steering', title: 'Steering' },
  { id: 'graph', title: 'Graph' },
] as const;

export type ViewId = (typeof VIEWS)[number]['id'];

export interface Route {
  view: ViewId;
  params: URLSearchParams;
  /** The query string as it stands (stable: for effect dependencies). */
  query: string;
}

function isView(s: string): s is ViewId {
  return VIEWS.some((v) => v.id === s);
}

export function parseHash(hash: string): Route {
  const h = hash.replace(/^#\/?/, '');
  const q = h.indexOf('?');
  const path = q < 0 ? h : h.slice(0, q);
  const query = q < 0 ? '' : h.slice(q + 1);
  const view = isView(path) ? path : 'prompt';
  const params = new URLSearchParams(query);
  return { view, params, query: params.toString() };
}

export function hrefOf(view: ViewId, params?: URLSearchParams | Record<string, string>): string {
  const p = params instanceof URLSearchParams ? params : new URLSearchParams(params ?? {});
  const q = p.toString();
  return `#/${view}${q ? `?${q}` : ''}`;
}

/** Goes to a view with a state; `replace` edits the current history entry instead of adding one. */
export function navigate(view: ViewId, params: URLSearchParams | Record<string, string>, options: { replace?: boolean } = {}): void {
  const href = hrefOf(view, params);
  if (href === location.hash) return;
  if (options.replace) {
    history.replaceState(history.state, '', href);
    window.dispatchEvent(new HashChangeEvent('hashchange'));
  } else {
    location.hash = href;
  }
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(location.hash));
  useEffect(() => {
    const on = () =>
      setRoute((old) => {
        const r = parseHash(location.hash);
        return r.view === old.view && r.query === old.query ? old : r;
      });
    window.addEventListener('hashchange', on);
    window.addEventListener('popstate', on);
    return () => {
      window.removeEventListener('hashchange', on);
      window.removeEventListener('popstate', on);
    };
  }, []);
  return route;
}

/** Reads typed values from a view's query. */
export const read = {
  str(p: URLSearchParams, key: string, fallback: string): string {
    return p.get(key) ?? fallback;
  },
  int(p: URLSearchParams, key: string, fallback: number): number {
    const v = p.get(key);
    if (v === null || !/^-?\d+$/.test(v.trim())) return fallback;
    return Number(v);
  },
  num(p: URLSearchParams, key: string, fallback: number): number {
    const v = p.get(key);
    if (v === null || v.trim() === '' || !Number.isFinite(Number(v))) return fallback;
    return Number(v);
  },
  bool(p: URLSearchParams, key: string, fallback: boolean): boolean {
    const v = p.get(key);
    if (v === null) return fallback;
    return v === '1' || v === 'true';
  },
};
