/** A signed-in session as the rest of the console sees it, whichever way the person signed in. */

export type SessionState =
  | { status: 'starting' } // reading what session storage holds, or finishing a sign-in
  | { status: 'signedOut'; notice: string | null } // notice: why, in a sentence (null: never signed in)
  | { status: 'signedIn'; token: string };

export interface Session {
  readonly kind: 'token' | 'oidc';
  state(): SessionState;
  subscribe(listener: () => void): () => void;
  /** The bearer token to send now, or null when signed out. */
  token(): string | null;
  /** After the API refused the token: true when a fresh one is there to try again with. */
  renew(): Promise<boolean>;
  /** Sign out: `notice` says why on the sign-in screen (null: the person asked to). */
  signOut(notice?: string | null): Promise<void>;
}

/** The state and its listeners, shared by both kinds of session. */
export abstract class BaseSession {
  private current: SessionState = { status: 'starting' };
  private readonly listeners = new Set<() => void>();

  state = (): SessionState => this.current;

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  token(): string | null {
    return this.current.status === 'signedIn' ? this.current.token : null;
  }

  protected set(state: SessionState): void {
    this.current = state;
    this.listeners.forEach((listener) => listener());
  }
}
