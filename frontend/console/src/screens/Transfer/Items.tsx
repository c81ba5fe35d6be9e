/** The transfer's pairs and their outcomes, a page at a time, read again as the transfer moves on
 *  (`version` changes). */
import { useEffect, useRef } from 'react';
import { useQuery } from 'urql';

import { RequestError } from '../../components/FieldErrors.tsx';
import { PartHeading } from '../../components/Heading.tsx';
import { UserLabel } from '../../components/UserLabel.tsx';
import type { ResultOf } from '../../graphql.ts';
import { Pager, usePages } from './Pager.tsx';
import { TransferItemsQuery } from './queries.ts';

const PAGE_SIZE = 25;
const ITEM_STATUS: Record<string, string> = {
  PENDING: 'Pending',
  SUCCEEDED: 'Succeeded',
  FAILED: 'Failed',
  CANCELLED: 'Cancelled',
};

type Item = NonNullable<ResultOf<typeof TransferItemsQuery>['transfer']>['items']['edges'][number]['node'];

export function Items({ transferId, version }: { transferId: string; version: string }) {
  const pages = usePages(PAGE_SIZE);
  const [result, refetch] = useQuery({
    query: TransferItemsQuery,
    variables: { id: transferId, first: PAGE_SIZE, after: pages.after },
    requestPolicy: 'network-only',
  });
  const shown = useRef(version);
  useEffect(() => {
    if (shown.current === version) return;
    shown.current = version;
    refetch({ requestPolicy: 'network-only' });
  }, [version, refetch]);
  const transfer = result.data?.transfer;
  const items = transfer?.items;
  const bulk = transfer?.kind !== 'SINGLE';
  const first = pages.offset;
  return (
    <section className="transfer-items" aria-labelledby="items-heading">
      <PartHeading id="items-heading">Pairs</PartHeading>
      <RequestError error={result.error} />
      {items ? (
        <>
          <div className="table-scroll">
            <table>
              <caption className="visually-hidden">The pairs of this transfer and their outcomes</caption>
              <thead>
                <tr>
                  {bulk ? <th scope="col">Line</th> : null}
                  <th scope="col">Source User</th>
                  <th scope="col">Target User</th>
                  <th scope="col">Status</th>
                  <th scope="col">Outcome</th>
                </tr>
              </thead>
              <tbody>
                {items.edges.map(({ cursor, node }) => (
                  <tr key={cursor}>
                    {bulk ? <td>{node.rowNumber ?? ''}</td> : null}
                    <td>
                      <UserLabel user={node.sourceUser} />
                    </td>
                    <td>
                      <UserLabel user={node.targetUser} />
                    </td>
                    <td>{ITEM_STATUS[node.status] ?? node.status}</td>
                    <td>{outcome(node)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <Pager
            summary={items.totalCount === 0 ? 'No pairs.' : `Pairs ${first + 1} to ${first + items.edges.length} of ${items.totalCount}`}
            pages={pages}
            hasNextPage={items.pageInfo.hasNextPage}
            endCursor={items.pageInfo.endCursor}
          />
        </>
      ) : null}
    </section>
  );
}

function total(counts: readonly { count: number }[]): number {
  return counts.reduce((sum, { count }) => sum + count, 0);
}

/** What happened to the pair, in a few words. */
function outcome(item: Item): string {
  if (item.status === 'FAILED') return `${item.errorMessage ?? ''} (${item.errorCode ?? 'error'})`;
  if (item.status !== 'SUCCEEDED') return '';
  const parts = [`${total(item.moved)} records moved`];
  const deleted = total(item.overwritten);
  if (deleted) parts.push(`${deleted} deleted by overwrite`);
  const restored = total(item.restored);
  if (restored) parts.push(`${restored} restored`);
  const skipped = total(item.skipped);
  if (skipped) parts.push(`${skipped} skipped`);
  return parts.join(', ');
}
