/** The urql client every screen uses: queries and mutations (and uploads, as multipart requests)
 *  over HTTP, subscriptions over graphql-ws, each with the session's bearer token. A request the
 *  API refuses as UNAUTHENTICATED is tried again once with a renewed token (OIDC), else the person
 *  is sent back to sign in, told why. */
import { authExchange } from '@urql/exchange-auth';
import { createClient as createWsClient, type Client as WsClient } from 'graphql-ws/client';
import { cacheExchange, Client, fetchExchange, type Operation, subscriptionExchange } from 'urql';

import type { Session } from '../auth/session.ts';
import { absolute } from '../config.ts';
import { ERROR_SENTENCES, isUnauthenticated } from './errors.ts';

function bearerOf(operation: Operation): string | null {
  const options = typeof operation.context.fetchOptions === 'function' ? operation.context.fetchOptions() : operation.context.fetchOptions;
  const headers = new Headers(options?.headers);
  return headers.get('Authorization');
}

/** One graphql-ws connection per bearer token: the API checks a subscription against the token of
 *  its connection's connection_init, so a renewed token opens a new connection, and the old one
 *  closes by itself (lazy) once its last subscription has ended. A dropped connection is not
 *  retried here (graphql-ws would subscribe again with the first variables): the subscription ends
 *  with a network error, and its screen subscribes again from the last event it saw. */
function subscriptions(apiPath: string) {
  const url = absolute(apiPath, window.location.protocol === 'https:' ? 'wss:' : 'ws:');
  let current: { bearer: string; client: WsClient } | null = null;
  return (bearer: string): WsClient => {
    if (current?.bearer !== bearer) {
      current = { bearer, client: createWsClient({ url, lazy: true, retryAttempts: 0, connectionParams: { Authorization: bearer } }) };
    }
    return current.client;
  };
}

export function createApiClient(apiPath: string, session: Session): Client {
  const wsFor = subscriptions(apiPath);
  return new Client({
    url: apiPath,
    requestPolicy: 'cache-and-network',
    exchanges: [
      cacheExchange,
      authExchange(async (utils) => ({
        addAuthToOperation(operation) {
          const token = session.token();
          return token ? utils.appendHeaders(operation, { Authorization: `Bearer ${token}` }) : operation;
        },
        didAuthError: (error) => isUnauthenticated(error),
        async refreshAuth() {
          if (!(await session.renew())) await session.signOut(ERROR_SENTENCES.UNAUTHENTICATED);
        },
      })),
      fetchExchange,
      subscriptionExchange({
        forwardSubscription(request, operation) {
          const input = { ...request, query: request.query ?? '' };
          return {
            subscribe(sink) {
              const bearer = bearerOf(operation);
              if (!bearer) {
                sink.error(new Error('Not signed in.'));
                return { unsubscribe: () => {} };
              }
              return { unsubscribe: wsFor(bearer).subscribe(input, sink) };
            },
          };
        },
      }),
    ],
  });
}
