// gql.tada, typed from the repository's schema.graphql (src/graphql-env.d.ts is written from it by
// `npm run schema`): every operation's variables and result are checked by `npm run build`.
import { initGraphQLTada } from 'gql.tada';

import type { introspection } from './graphql-env.d.ts';

export const graphql = initGraphQLTada<{
  introspection: introspection;
  scalars: {
    DateTime: string; // ISO 8601, with its time zone
    Upload: File;
  };
}>();

export { readFragment } from 'gql.tada';
export type { FragmentOf, ResultOf, VariablesOf } from 'gql.tada';
