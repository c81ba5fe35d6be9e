/** Signing in through the organisation's identity provider: Authorization Code with PKCE
 *  (oidc-client-ts), the access token renewed with the refresh token before it expires. */
import { UserManager, WebStorageStateStore, type User } from 'oidc-client-ts';

import { absolute, type OidcConfig } from '../config.ts';
import { paths } from '../router.ts';
import { BaseSession, type Session } from './session.ts';

export const RENEWAL_FAILED = 'Your sign-in could not be renewed. Sign in again.';

export class OidcSession extends BaseSession implements Session {
  readonly kind = 'oidc';
  private readonly manager: UserManager;

  constructor(config: OidcConfig) {
    super();
    // Everything oidc-client-ts keeps (the user and its tokens, the state of a sign-in under way)
    // goes to session storage: never local storage, never a cookie.
    const store = new WebStorageStateStore({ store: window.sessionStorage });
    const resource = config.resource ? { resource: config.resource } : undefined;
    this.manager = new UserManager({
      authority: config.issuer,
      client_id: config.clientId,
      redirect_uri: absolute(paths.callback),
      post_logout_redirect_uri: absolute(paths.home),
      scope: config.scope,
      response_type: 'code',
      userStore: store,
      stateStore: store,
      automaticSilentRenew: true, // with the refresh token, before the access token expires
      monitorSession: false, // its check-session iframe is not allowed under the console's CSP
      loadUserInfo: false,
      extraQueryParams: resource,
      extraTokenParams: resource,
    });
    this.manager.events.addUserLoaded((user) => this.signedIn(user));
    this.manager.events.addSilentRenewError(() => void this.signOut(RENEWAL_FAILED));
  }

  private signedIn(user: User): void {
    this.set({ status: 'signedIn', token: user.access_token });
  }

  /** The user session storage holds, if still live; else the sign-in screen. */
  async start(): Promise<void> {
    const user = await this.manager.getUser();
    if (user && !user.expired) this.signedIn(user);
    else if (user?.refresh_token && (await this.renew())) return;
    else this.set({ status: 'signedOut', notice: null });
  }

  /** Off to the provider; it sends the person back to the callback route, then to `returnTo`. */
  async signIn(returnTo: string): Promise<void> {
    await this.manager.signinRedirect({ state: { returnTo } });
  }

  /** On the callback route: the code exchanged for tokens; where to go next. */
  async completeSignIn(): Promise<string> {
    try {
      const user = await this.manager.signinRedirectCallback();
      this.signedIn(user);
      const state = user.state as { returnTo?: string } | undefined;
      return state?.returnTo ?? paths.home;
    } catch (error) {
      await this.signOut(`Signing in with your organisation's account did not work (${String(error)}). Try again.`);
      return paths.home;
    }
  }

  async renew(): Promise<boolean> {
    try {
      return (await this.manager.signinSilent()) !== null;
    } catch {
      return false;
    }
  }

  /** Forgets the tokens here; a person who asked to sign out is signed out at the provider too. */
  async signOut(notice: string | null = null): Promise<void> {
    const user = await this.manager.getUser();
    await this.manager.removeUser();
    this.set({ status: 'signedOut', notice });
    if (notice !== null || !user) return;
    try {
      await this.manager.signoutRedirect({ id_token_hint: user.id_token });
    } catch {
      // a provider without an end-session endpoint: signed out here, which is all there is
    }
  }
}
