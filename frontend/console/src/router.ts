/** Client-side routes under /console/, on the plain History API: every route is a real URL that
 *  the API answers with the page, so a reload or a shared link opens the same screen. */
import { type MouseEvent, useSyncExternalStore } from 'react';

const BASE = import.meta.env.BASE_URL; // '/console/'

export type Route =
  | { name: 'single' }
  | { name: 'bulk' }
  | { name: 'history' }
  | { name: 'transfer'; id: string }
  | { name: 'callback' } // where the identity provider sends the person back after sign-in
  | { name: 'notFound' };

export const paths = {
  single: `${BASE}single`,
  bulk: `${BASE}bulk`,
  history: `${BASE}history`,
  transfer: (id: string) => `${BASE}transfers/${encodeURIComponent(id)}`,
  callback: `${BASE}callback`,
  home: BASE,
};

export function parseRoute(pathname: string): Route {
  if (pathname === BASE || `${pathname}/` === BASE) return { name: 'single' };
  if (!pathname.startsWith(BASE)) return { name: 'notFound' };
  const parts = pathname.slice(BASE.length).split('/').filter(Boolean);
  const [first, second] = parts;
  if (parts.length === 1 && (first === 'single' || first === 'bulk' || first === 'history' || first === 'callback')) {
    return { name: first };
  }
  if (parts.length === 2 && first === 'transfers' && second) {
    try {
      return { name: 'transfer', id: decodeURIComponent(second) };
    } catch {
      return { name: 'notFound' };
    }
  }
  return { name: 'notFound' };
}

const listeners = new Set<() => void>();
window.addEventListener('popstate', () => listeners.forEach((listener) => listener()));

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Go to `path` (under /console/) without reloading; `replace` keeps the back button where it was. */
export function navigate(path: string, replace = false): void {
  if (replace) window.history.replaceState(null, '', path);
  else window.history.pushState(null, '', path);
  listeners.forEach((listener) => listener());
}

/** The address bar's path and query, re-rendering on every navigation (links, back, forward). */
export function useLocation(): { pathname: string; search: string } {
  const href = useSyncExternalStore(subscribe, () => window.location.pathname + window.location.search);
  const url = new URL(href, window.location.origin);
  return { pathname: url.pathname, search: url.search };
}

export function useRoute(): Route {
  return parseRoute(useLocation().pathname);
}

/** A plain click on a link navigates in place; a modified click (new tab, new window) is the browser's. */
export function followLink(event: MouseEvent<HTMLAnchorElement>): void {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  navigate(event.currentTarget.pathname + event.currentTarget.search);
}
