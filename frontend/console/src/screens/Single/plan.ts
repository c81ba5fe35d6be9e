/** What the chosen pair would do (Query.transferPlan): per data type, the records that move and the
 *  target's that an OVERWRITE deletes, and the rules the pair breaks, before anything runs. */
import { type CombinedError, useQuery } from 'urql';

import type { UserErrorLike } from '../../api/errors.ts';
import { type ResultOf, graphql } from '../../graphql.ts';

export const SingleTransferPlan = graphql(`
  query SingleTransferPlan($sourceUserId: Int!, $targetUserId: Int!, $dataTypes: [String!]) {
    transferPlan(sourceUserId: $sourceUserId, targetUserId: $targetUserId, dataTypes: $dataTypes) {
      impact {
        dataType {
          key
          name
          product
          policy
        }
        moves
        deletes
      }
      errors {
        code
        message
        field
      }
    }
  }
`);

export type Plan = ResultOf<typeof SingleTransferPlan>['transferPlan'];
export type Impact = Plan['impact'][number];

export interface PlanState {
  plan: Plan | null; // the answer for the pair and types chosen now; null while asked or unasked
  checking: boolean;
  error: CombinedError | undefined;
}

/** The plan of `sourceUserId` -> `targetUserId` for `dataTypes` (null: every type); asked again
 *  whenever one of them changes, and never from the cache (locks and records change meanwhile). */
export function usePlan(sourceUserId: number | null, targetUserId: number | null, dataTypes: string[] | null): PlanState {
  const both = sourceUserId !== null && targetUserId !== null;
  const variables = { sourceUserId: sourceUserId ?? 0, targetUserId: targetUserId ?? 0, dataTypes };
  const [result] = useQuery({ query: SingleTransferPlan, variables, pause: !both, requestPolicy: 'network-only' });
  const asked = result.operation?.variables;
  const current =
    both &&
    asked?.sourceUserId === sourceUserId &&
    asked?.targetUserId === targetUserId &&
    JSON.stringify(asked?.dataTypes ?? null) === JSON.stringify(dataTypes);
  return {
    plan: current && !result.fetching && !result.stale ? (result.data?.transferPlan ?? null) : null,
    checking: both && (result.fetching || !current),
    error: both ? result.error : undefined,
  };
}

/** Total records moved and deleted. */
export function totals(impact: readonly Impact[]): { moves: number; deletes: number } {
  return impact.reduce((sum, row) => ({ moves: sum.moves + row.moves, deletes: sum.deletes + row.deletes }), { moves: 0, deletes: 0 });
}

export const PAIR_CODES = new Set(['SAME_USER']); // about both users: shown beside both pickers

/** The plan's (or a start's) errors about the field `name`, or about the pair as a whole. */
export function errorsAbout(errors: readonly UserErrorLike[], name: string, pair: boolean): UserErrorLike[] {
  return errors.filter((e) => (e.field ? e.field[e.field.length - 1] === name : pair && PAIR_CODES.has(e.code)));
}
