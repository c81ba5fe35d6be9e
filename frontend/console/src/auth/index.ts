/** The session for this deployment: through the identity provider when one is configured, else by API token. */
import type { ConsoleConfig } from '../config.ts';
import { OidcSession } from './oidcSession.ts';
import { TokenSession } from './tokenSession.ts';

export type AnySession = OidcSession | TokenSession;

export function createSession(config: ConsoleConfig): AnySession {
  return config.oidc ? new OidcSession(config.oidc) : new TokenSession(config.apiPath);
}

export { useSession, SessionContext, useSessionState } from './context.ts';
export type { Session, SessionState } from './session.ts';
export { OidcSession, TokenSession };
