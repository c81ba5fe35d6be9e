/** Where an API token is kept: session storage only (gone with the tab; never local storage or a
 *  cookie), and how a sign-in link hands one over in the URL's fragment, which no server sees. */

const KEY = 'udt.console.token';

export function storedToken(): string | null {
  return window.sessionStorage.getItem(KEY);
}

export function storeToken(token: string): void {
  window.sessionStorage.setItem(KEY, token);
}

export function forgetToken(): void {
  window.sessionStorage.removeItem(KEY);
}

/** The token of a sign-in link (`/console#token=...`, as `udt dev` prints one), taken out of the
 *  address bar at once so that it stays out of the history, bookmarks and screen shares. */
export function takeTokenFromFragment(): string | null {
  const fragment = new URLSearchParams(window.location.hash.slice(1));
  const token = fragment.get('token');
  if (token === null) return null;
  window.history.replaceState(window.history.state, '', window.location.pathname + window.location.search);
  return token.trim() || null;
}
