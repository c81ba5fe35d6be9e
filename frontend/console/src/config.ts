/** The console's runtime settings, from the API at /console/config.json (no inline script under the CSP). */

export interface OidcConfig {
  issuer: string; // UDT_OIDC_ISSUER
  clientId: string; // UDT_OIDC_CLIENT_ID: a public client, Authorization Code with PKCE
  scope: string; // UDT_OIDC_SCOPE
  resource: string | null; // UDT_OIDC_RESOURCE: the resource indicator asked for, if any
}

export interface ConsoleConfig {
  apiPath: string; // the GraphQL endpoint, on this origin (HTTP and WebSocket)
  oidc: OidcConfig | null; // null: sign in with an API token
}

export async function loadConfig(): Promise<ConsoleConfig> {
  const response = await fetch(`${import.meta.env.BASE_URL}config.json`, { cache: 'no-store' });
  if (!response.ok) throw new Error(`The console's settings could not be loaded (HTTP ${response.status}).`);
  return (await response.json()) as ConsoleConfig;
}

/** An absolute URL on this page's origin: WebSocket and OIDC redirect URLs must be absolute. */
export function absolute(path: string, protocol: string = window.location.protocol): string {
  const url = new URL(path, window.location.origin);
  url.protocol = protocol;
  return url.toString();
}
