/** History (/console/history): the tenant's transfers, newest first (Query.transfers), filtered by
 *  status, a page at a time, each linking to its page. The status chosen stays in the address
 *  (?status=FAILED), so a reload or a shared link shows the same list. */
import { useId } from 'react';
import { useQuery } from 'urql';

import './history.css';

import { RequestError } from '../../components/FieldErrors.tsx';
import { ScreenHeading } from '../../components/Heading.tsx';
import { Link } from '../../components/Link.tsx';
import { UserLabel, UserLabelFragment } from '../../components/UserLabel.tsx';
import { graphql } from '../../graphql.ts';
import { navigate, paths, useLocation } from '../../router.ts';
import { formatWhen, KIND_LABELS, STATUS_LABELS } from '../Transfer/labels.ts';
import { Pager, usePages } from '../Transfer/Pager.tsx';

const PAGE_SIZE = 25;
const STATUSES = ['QUEUED', 'RUNNING', 'SUCCEEDED', 'PARTIALLY_FAILED', 'FAILED', 'CANCELLED'] as const;
type Status = (typeof STATUSES)[number];

const TransfersQuery = graphql(
  `
    query History($status: TransferStatus, $first: Int!, $after: String) {
      transfers(status: $status, first: $first, after: $after) {
        totalCount
        pageInfo {
          hasNextPage
          endCursor
        }
        edges {
          cursor
          node {
            id
            kind
            status
            createdAt
            totalPairs
            processedPairs
            succeededPairs
            failedPairs
            requestedBy {
              ...UserLabel
            }
          }
        }
      }
    }
  `,
  [UserLabelFragment],
);

function statusOf(search: string): Status | null {
  const wanted = new URLSearchParams(search).get('status');
  return STATUSES.find((status) => status === wanted) ?? null;
}

export function HistoryScreen() {
  const status = statusOf(useLocation().search);
  const selectId = useId();
  const pages = usePages(PAGE_SIZE, status ?? ''); // another status starts again at the first page
  const [result] = useQuery({
    query: TransfersQuery,
    variables: { status, first: PAGE_SIZE, after: pages.after },
    requestPolicy: 'cache-and-network',
  });
  const found = result.data?.transfers;
  const first = pages.offset;
  // While the next page loads, the rows shown are still the last page's: so says the summary.
  const shownPage = result.operation?.variables.after === pages.after;
  const choose = (value: string) => navigate(value ? `${paths.history}?status=${value}` : paths.history, true);
  return (
    <section aria-labelledby="history-heading">
      <ScreenHeading id="history-heading">History</ScreenHeading>
      <div className="filters">
        <div className="field">
          <label htmlFor={selectId}>Status</label>
          <select id={selectId} value={status ?? ''} onChange={(event) => choose(event.target.value)}>
            <option value="">All statuses</option>
            {STATUSES.map((value) => (
              <option key={value} value={value}>
                {STATUS_LABELS[value]}
              </option>
            ))}
          </select>
        </div>
      </div>
      <RequestError error={result.error} />
      {found ? (
        <>
          <div className="table-scroll">
            <table>
              <caption className="visually-hidden">Transfers, newest first</caption>
              <thead>
                <tr>
                  <th scope="col">Transfer</th>
                  <th scope="col">Status</th>
                  <th scope="col">Pairs done</th>
                  <th scope="col">Succeeded</th>
                  <th scope="col">Failed</th>
                  <th scope="col">Started by</th>
                </tr>
              </thead>
              <tbody>
                {found.edges.map(({ cursor, node }) => (
                  <tr key={cursor}>
                    <th scope="row">
                      <Link to={paths.transfer(node.id)}>
                        {KIND_LABELS[node.kind] ?? node.kind}, {formatWhen(node.createdAt)}
                      </Link>
                    </th>
                    <td>{STATUS_LABELS[node.status] ?? node.status}</td>
                    <td>
                      {node.processedPairs} of {node.totalPairs}
                    </td>
                    <td>{node.succeededPairs}</td>
                    <td>{node.failedPairs}</td>
                    <td>{node.requestedBy ? <UserLabel user={node.requestedBy} /> : 'outside your view'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <Pager
            summary={
              !shownPage
                ? 'Loading the page…'
                : found.totalCount === 0
                  ? 'No transfers.'
                  : `Transfers ${first + 1} to ${first + found.edges.length} of ${found.totalCount}`
            }
            pages={pages}
            hasNextPage={found.pageInfo.hasNextPage}
            endCursor={found.pageInfo.endCursor}
          />
        </>
      ) : result.fetching ? (
        <p role="status">Loading the transfers…</p>
      ) : null}
    </section>
  );
}
