// A real OpenID Connect provider (panva's oidc-provider) for tests/test_identity_provider.py and
// for trying sign-in by hand. Every setting comes from the environment:
//   PORT               port on 127.0.0.1 (the issuer is http://127.0.0.1:PORT)
//   UDT_TENANT         the tenant slug its tokens name (claim udt_tenant)
//   UDT_USERNAME       the username the script client's tokens name (claim preferred_username)
//   UDT_AUDIENCE       the API's audience (default udt-api); the resource indicator is urn:udt:api
//   CONSOLE_REDIRECT   the console's redirect URIs, comma-separated (default: udt dev's console,
//                      http://127.0.0.1:8000/console/callback)
//   CONSOLE_SIGNED_OUT where the console may send a person after signing out at the provider,
//                      comma-separated (default http://127.0.0.1:8000/console/)
//   ACCESS_TOKEN_SECONDS  the access tokens' life (default 300): a short one shows renewal at work
// Two clients:
//   udt-script  (secret udt-script-secret): client_credentials; a JWT access token for the user UDT_USERNAME
//   udt-console (public, PKCE):             Authorization Code, and a refresh token to renew the access
//                                           token with; the login name is the username
// Keys are made at start and kept in memory: a restart is a key rotation.
import { generateKeyPairSync } from 'node:crypto';

import Provider, { errors } from 'oidc-provider';

const port = Number(process.env.PORT || 9000);
const issuer = `http://127.0.0.1:${port}`;
const tenant = process.env.UDT_TENANT || 'demo';
const audience = process.env.UDT_AUDIENCE || 'udt-api';
const resource = 'urn:udt:api';
const list = (value, fallback) => (value || fallback).split(',').map((item) => item.trim()).filter(Boolean);
const accessTokenTTL = Number(process.env.ACCESS_TOKEN_SECONDS || 300);

const signing = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });

const provider = new Provider(issuer, {
  jwks: { keys: [{ ...signing, kid: `rsa-${Date.now()}`, use: 'sig', alg: 'RS256' }] },
  cookies: { keys: ['udt-test-provider-only'] },
  clients: [
    {
      client_id: 'udt-script',
      client_secret: 'udt-script-secret',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      udt_tenant: tenant,
      udt_username: process.env.UDT_USERNAME || 'admin',
    },
    {
      client_id: 'udt-console',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: list(process.env.CONSOLE_REDIRECT, 'http://127.0.0.1:8000/console/callback'),
      post_logout_redirect_uris: list(process.env.CONSOLE_SIGNED_OUT, 'http://127.0.0.1:8000/console/'),
    },
  ],
  extraClientMetadata: { properties: ['udt_tenant', 'udt_username'] },
  // The console's users: whoever signs in (the development login screen takes any name) is that username.
  async findAccount(ctx, id) {
    return { accountId: id, async claims() { return { sub: id, preferred_username: id, udt_tenant: tenant }; } };
  },
  claims: { openid: ['sub'], profile: ['preferred_username', 'udt_tenant'] },
  // A browser client may renew its access token without asking for offline_access (and so consent).
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  async extraTokenClaims(ctx, token) {
    if (token.accountId) return { udt_tenant: tenant, preferred_username: token.accountId };
    const client = await provider.Client.find(token.clientId);
    return { udt_tenant: client.udt_tenant, preferred_username: client.udt_username };
  },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo(ctx, indicator) {
        if (indicator !== resource) throw new errors.InvalidTarget();
        return {
          scope: 'udt', audience, accessTokenTTL, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
});

provider.on('server_error', (ctx, err) => console.error('server_error', err));
provider.listen(port, '127.0.0.1', () => console.log(`identity provider on ${issuer}`));
