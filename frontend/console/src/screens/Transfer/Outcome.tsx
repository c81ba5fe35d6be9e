/** A finished transfer's result in the seed's own words: "Data Transfer Successful", or the
 *  errors message with the User IDs not transferred, the audit log of the errors, and a retry. */
import { type MouseEvent, useEffect, useRef, useState } from 'react';
import { type CombinedError, useClient, useQuery } from 'urql';

import { RequestError } from '../../components/FieldErrors.tsx';
import { PartHeading } from '../../components/Heading.tsx';
import { useAnnounce } from '../../components/LiveRegion.tsx';
import { AuditLogLinkQuery, type TransferState } from './queries.ts';
import { RetryButton } from './RetryButton.tsx';

export const SUCCESS = 'Data Transfer Successful';
export const ERRORS = 'Errors occurred during data transfer. The user IDs listed below were not transferred.';
const AUDIT_LOG = 'Click here to download an audit log of the errors that occurred in the most recent data transfer operation.';

export function Outcome({ transfer, watched }: { transfer: TransferState; watched: boolean }) {
  const failed = transfer.failedPairs > 0;
  useResultAnnounced(transfer, watched);
  return (
    <section className="transfer-outcome" aria-labelledby="transfer-outcome-heading">
      <PartHeading id="transfer-outcome-heading">Result</PartHeading>
      {transfer.status === 'SUCCEEDED' ? <p className="success result">{SUCCESS}</p> : null}
      {transfer.status === 'CANCELLED' ? <p className="result">{transfer.message}</p> : null}
      {failed ? (
        <>
          <p className="notice result">{ERRORS}</p>
          <ul className="failed-ids" aria-label="User IDs not transferred">
            {transfer.failedUserIds.map((userId) => (
              <li key={userId}>{userId}</li>
            ))}
          </ul>
          <AuditLogLink transferId={transfer.id} />
          <RetryButton transfer={transfer} />
        </>
      ) : null}
    </section>
  );
}

/** The result is said once when the page saw the transfer end, assertively when pairs failed. */
function useResultAnnounced(transfer: TransferState, watched: boolean) {
  const announce = useAnnounce();
  const said = useRef(false);
  useEffect(() => {
    if (!watched || said.current) return;
    said.current = true;
    if (transfer.failedPairs > 0) {
      announce(`${ERRORS} ${transfer.failedUserIds.join(', ')}`, { assertive: true });
    } else {
      announce(transfer.status === 'SUCCEEDED' ? SUCCESS : (transfer.message ?? ''));
    }
  }, [announce, transfer, watched]);
}

/** A plain link to the audit log: a real download. Its signed address expires within minutes, so
 *  a click asks for a fresh one first; the address shown serves "open in a new tab" meanwhile. */
function AuditLogLink({ transferId }: { transferId: string }) {
  const client = useClient();
  const [shown] = useQuery({ query: AuditLogLinkQuery, variables: { id: transferId }, requestPolicy: 'network-only' });
  const [error, setError] = useState<CombinedError | undefined>();
  const [busy, setBusy] = useState(false);
  const onClick = async (event: MouseEvent<HTMLAnchorElement>) => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    if (busy) return;
    setBusy(true);
    const fresh = await client.query(AuditLogLinkQuery, { id: transferId }, { requestPolicy: 'network-only' }).toPromise();
    setBusy(false);
    setError(fresh.error);
    const url = fresh.data?.transfer?.auditLogLink.url;
    if (url) download(url);
  };
  return (
    <div className="audit-log">
      <a href={shown.data?.transfer?.auditLogLink.url ?? '#'} onClick={(event) => void onClick(event)} aria-busy={busy || undefined}>
        {AUDIT_LOG}
      </a>
      <RequestError error={error ?? shown.error} />
    </div>
  );
}

function download(url: string): void {
  const anchor = document.createElement('a');
  anchor.href = url;
  anchor.download = '';
  anchor.hidden = true;
  document.body.append(anchor);
  anchor.click();
  anchor.remove();
}
