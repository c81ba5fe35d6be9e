/** Signing in with an API token (`udt token create`, or the link `udt dev` prints). */
import { createClient, fetchExchange } from 'urql';

import { describeError, isUnauthenticated } from '../api/errors.ts';
import { graphql } from '../graphql.ts';
import { BaseSession, type Session } from './session.ts';
import { forgetToken, storeToken, storedToken, takeTokenFromFragment } from './storage.ts';

export const WRONG_TOKEN = 'That API token was not accepted: it is wrong, expired or revoked. Check it, or ask for a new one.';

const WhoAmI = graphql(`
  query SignInCheck {
    viewer {
      canTransfer
    }
  }
`);

/** Null when the API accepts `token`, else why not, in a sentence. */
async function refusal(apiPath: string, token: string): Promise<string | null> {
  const client = createClient({
    url: apiPath,
    exchanges: [fetchExchange],
    fetchOptions: { headers: { Authorization: `Bearer ${token}` } },
    requestPolicy: 'network-only',
  });
  const result = await client.query(WhoAmI, {}).toPromise();
  if (result.error) return isUnauthenticated(result.error) ? WRONG_TOKEN : describeError(result.error);
  return null;
}

export class TokenSession extends BaseSession implements Session {
  readonly kind = 'token';

  constructor(private readonly apiPath: string) {
    super();
    // A sign-in link opened in a tab already on the console changes only the fragment: no reload.
    window.addEventListener('hashchange', () => {
      const linked = takeTokenFromFragment();
      if (linked !== null) void this.signIn(linked);
    });
  }

  /** A token from a sign-in link wins over the one stored; without either, the sign-in screen. */
  async start(): Promise<void> {
    const linked = takeTokenFromFragment();
    if (linked !== null) return this.signIn(linked);
    const stored = storedToken();
    if (stored !== null) this.set({ status: 'signedIn', token: stored });
    else this.set({ status: 'signedOut', notice: null });
  }

  /** Checks the token with the API first: a wrong one is said so and never stored. */
  async signIn(token: string): Promise<void> {
    const trimmed = token.trim();
    if (!trimmed) return this.set({ status: 'signedOut', notice: 'Enter your API token.' });
    this.set({ status: 'starting' });
    const why = await refusal(this.apiPath, trimmed);
    if (why !== null) return this.signOut(why);
    storeToken(trimmed);
    this.set({ status: 'signedIn', token: trimmed });
  }

  async renew(): Promise<boolean> {
    return false; // an API token cannot be renewed: the person signs in with a live one
  }

  async signOut(notice: string | null = null): Promise<void> {
    forgetToken();
    this.set({ status: 'signedOut', notice });
  }
}
