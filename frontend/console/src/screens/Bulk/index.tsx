/** Bulk: Perform multiple data transfers at one time via a CSV upload. The running (or just
 *  started) bulk transfer comes first: it is the tenant's active one, or the one this page
 *  started (kept in the address, ?transfer=, so a reload shows it again even once finished).
 *  "Run a new bulk data transfer" opens the steps of the seed: download, edit, upload, preview, run. */
import { useEffect, useId, useRef, useState } from 'react';
import { useQuery } from 'urql';

import { RequestError } from '../../components/FieldErrors.tsx';
import { ScreenHeading } from '../../components/Heading.tsx';
import { graphql } from '../../graphql.ts';
import { navigate, paths, useLocation } from '../../router.ts';
import { TransferScreen } from '../Transfer/index.tsx';
import { PeopleFileLink } from './PeopleFileLink.tsx';
import { Preview } from './Preview.tsx';
import { UploadForm } from './UploadForm.tsx';
import './bulk.css';

const ActiveBulkTransfer = graphql(`
  query ActiveBulkTransfer {
    activeBulkTransfer {
      id
      status
    }
  }
`);

export function BulkScreen() {
  const stepsId = useId();
  const { search } = useLocation();
  const started = new URLSearchParams(search).get('transfer');
  const [active] = useQuery({ query: ActiveBulkTransfer, requestPolicy: 'network-only', pause: started !== null });
  const shownId = started ?? active.data?.activeBulkTransfer?.id ?? null;
  const [open, setOpen] = useState(false);
  const [uploadId, setUploadId] = useState<string | null>(null);
  const transferHeading = useRef<HTMLHeadingElement>(null);
  const [focusTransfer, setFocusTransfer] = useState(false);

  useEffect(() => {
    if (focusTransfer && shownId) {
      transferHeading.current?.focus();
      setFocusTransfer(false);
    }
  }, [focusTransfer, shownId]);

  function toggle() {
    if (!open && started) navigate(paths.bulk, true); // a new transfer: the last one's outcome gives way
    setOpen(!open);
  }

  function onStarted(transferId: string) {
    setOpen(false);
    setUploadId(null);
    navigate(`${paths.bulk}?transfer=${encodeURIComponent(transferId)}`, true);
    setFocusTransfer(true);
  }

  return (
    <section aria-labelledby="bulk-heading" className="bulk">
      <ScreenHeading id="bulk-heading">Perform multiple data transfers at one time via a CSV upload</ScreenHeading>
      <RequestError error={active.error} />
      {shownId ? (
        <div className="bulk-transfer">
          <TransferScreen
            id={shownId}
            within={{
              title: started ? 'Your bulk data transfer' : 'The bulk data transfer in progress',
              titleRef: transferHeading,
            }}
          />
        </div>
      ) : null}
      <button type="button" aria-expanded={open} aria-controls={stepsId} onClick={toggle}>
        Run a new bulk data transfer
      </button>
      <div id={stepsId} hidden={!open}>
        {open ? <NewBulkTransfer uploadId={uploadId} onUploaded={setUploadId} onStarted={onStarted} /> : null}
      </div>
    </section>
  );
}

interface NewBulkTransferProps {
  uploadId: string | null;
  onUploaded: (uploadId: string | null) => void;
  onStarted: (transferId: string) => void;
}

function NewBulkTransfer({ uploadId, onUploaded, onStarted }: NewBulkTransferProps) {
  return (
    <div className="bulk-steps">
      <section aria-labelledby="bulk-download-heading" className="bulk-step">
        <h3 id="bulk-download-heading">Download and edit the CSV upload file</h3>
        <PeopleFileLink />
        <p>
          The file lists every user of your tenant. Only its first two columns, "From User ID" and "To User ID", are
          read. To transfer a user's data to another user, copy the From User ID of the user whose data moves into
          the To User ID cell of the user who receives it. Change nothing else, and save the file.
        </p>
      </section>
      <section aria-labelledby="bulk-upload-heading" className="bulk-step">
        <h3 id="bulk-upload-heading">Upload and review the CSV file</h3>
        <UploadForm onChosen={() => onUploaded(null)} onUploaded={onUploaded} />
      </section>
      {uploadId ? <Preview uploadId={uploadId} onStarted={onStarted} /> : null}
    </div>
  );
}
