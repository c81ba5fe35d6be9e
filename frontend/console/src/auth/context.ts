import { createContext, useContext, useSyncExternalStore } from 'react';

import type { OidcSession } from './oidcSession.ts';
import type { SessionState } from './session.ts';
import type { TokenSession } from './tokenSession.ts';

export const SessionContext = createContext<OidcSession | TokenSession | null>(null);

/** The session the console runs under (the sign-in screen and the shell's "Sign out" use it). */
export function useSession(): OidcSession | TokenSession {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside <SessionContext.Provider>');
  return session;
}

/** The session's state, re-rendering on sign-in, renewal and sign-out. */
export function useSessionState(): SessionState {
  const session = useSession();
  return useSyncExternalStore(session.subscribe, session.state);
}
