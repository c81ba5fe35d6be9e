/** What a transfer's page asks the API: the transfer, its live events, its pairs, and what can be
 *  done with it (cancel, retry the failed pairs, undo). */
import { UserLabelFragment } from '../../components/UserLabel.tsx';
import { graphql, type ResultOf } from '../../graphql.ts';

export const TransferStateFragment = graphql(
  `
    fragment TransferState on Transfer {
      id
      kind
      status
      createdAt
      startedAt
      finishedAt
      totalPairs
      processedPairs
      succeededPairs
      failedPairs
      message
      revertibleUntil
      failedUserIds
      requestedBy {
        ...UserLabel
      }
      revertOf {
        id
      }
      revertedBy {
        id
      }
    }
  `,
  [UserLabelFragment],
);

export const TransferQuery = graphql(
  `
    query TransferPage($id: ID!) {
      transfer(id: $id) {
        ...TransferState
      }
    }
  `,
  [TransferStateFragment],
);

export type TransferState = ResultOf<typeof TransferStateFragment>;

/** Only what the progress needs: each event carries the transfer's counters after it. */
export const TransferEventsSubscription = graphql(`
  subscription TransferEvents($transferId: ID!, $after: String) {
    transferEvents(transferId: $transferId, after: $after) {
      cursor
      type
      status
      totalPairs
      processedPairs
      succeededPairs
      failedPairs
      message
    }
  }
`);

export type TransferEvent = ResultOf<typeof TransferEventsSubscription>['transferEvents'];

export const TransferItemsQuery = graphql(
  `
    query TransferItems($id: ID!, $first: Int!, $after: String) {
      transfer(id: $id) {
        id
        kind
        items(first: $first, after: $after) {
          totalCount
          pageInfo {
            hasNextPage
            endCursor
          }
          edges {
            cursor
            node {
              rowNumber
              status
              errorCode
              errorMessage
              finishedAt
              sourceUser {
                ...UserLabel
              }
              targetUser {
                ...UserLabel
              }
              moved {
                count
              }
              overwritten {
                count
              }
              restored {
                count
              }
              skipped {
                count
              }
            }
          }
        }
      }
    }
  `,
  [UserLabelFragment],
);

/** A fresh signed link to the audit log of the failed pairs: links expire within minutes. */
export const AuditLogLinkQuery = graphql(`
  query AuditLogLink($id: ID!) {
    transfer(id: $id) {
      id
      auditLogLink {
        url
      }
    }
  }
`);

export const CancelTransferMutation = graphql(
  `
    mutation CancelTransfer($id: ID!) {
      cancelTransfer(id: $id) {
        transfer {
          ...TransferState
        }
        userErrors {
          code
          message
          field
        }
      }
    }
  `,
  [TransferStateFragment],
);

export const RetryFailedMutation = graphql(`
  mutation RetryFailedTransfers($id: ID!, $idempotencyKey: String!) {
    retryFailedTransfers(transferId: $id, confirm: true, idempotencyKey: $idempotencyKey) {
      transfer {
        id
      }
      userErrors {
        code
        message
        field
      }
    }
  }
`);

export const RevertPlanQuery = graphql(
  `
    query RevertPlan($id: ID!) {
      revertPlan(transferId: $id) {
        impact {
          dataType {
            key
            name
          }
          returns
          restores
          skipped
        }
        conflicts {
          rowNumber
          code
          message
          sourceUser {
            ...UserLabel
          }
          targetUser {
            ...UserLabel
          }
        }
        errors {
          code
          message
          field
        }
      }
    }
  `,
  [UserLabelFragment],
);

export const RevertTransferMutation = graphql(`
  mutation RevertTransfer($id: ID!, $idempotencyKey: String!) {
    revertTransfer(input: { transferId: $id, confirm: true, idempotencyKey: $idempotencyKey }) {
      transfer {
        id
      }
      userErrors {
        code
        message
        field
      }
    }
  }
`);

export const FINAL_STATUSES = ['SUCCEEDED', 'PARTIALLY_FAILED', 'FAILED', 'CANCELLED'] as const;

export function isFinal(status: string): boolean {
  return (FINAL_STATUSES as readonly string[]).includes(status);
}
