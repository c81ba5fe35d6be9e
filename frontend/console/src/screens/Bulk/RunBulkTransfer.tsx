/** "Run Transfer" for a checked upload: kept from use while the file has errors (and saying why),
 *  then the confirmation window, whose own "Run Transfer" starts the bulk transfer. Each
 *  confirmation sends a new idempotency key, so a resent request never starts a second one. */
import { useId, useState } from 'react';
import { useMutation } from 'urql';

import { describeError, describeUserError } from '../../api/errors.ts';
import { ConfirmDialog } from '../../components/ConfirmDialog.tsx';
import { FieldErrors } from '../../components/FieldErrors.tsx';
import { useAnnounce } from '../../components/LiveRegion.tsx';
import { graphql } from '../../graphql.ts';
import { newRequestKey } from './requestKey.ts';

const StartBulkTransfer = graphql(`
  mutation StartBulkTransfer($input: StartBulkTransferInput!) {
    startBulkTransfer(input: $input) {
      transfer {
        id
        status
      }
      userErrors {
        code
        message
        field
      }
    }
  }
`);

export interface RunBulkTransferProps {
  uploadId: string;
  filename: string;
  pairCount: number;
  errorCount: number;
  onStarted: (transferId: string) => void;
}

export function RunBulkTransfer({ uploadId, filename, pairCount, errorCount, onStarted }: RunBulkTransferProps) {
  const whyId = useId();
  const errorsId = useId();
  const announce = useAnnounce();
  const [confirming, setConfirming] = useState(false);
  const [result, start] = useMutation(StartBulkTransfer);
  const ready = errorCount === 0 && pairCount > 0;

  async function confirm() {
    const answer = await start({ input: { uploadId, confirm: true, idempotencyKey: newRequestKey() } });
    setConfirming(false);
    const transfer = answer.data?.startBulkTransfer.transfer;
    if (transfer) {
      announce(`The bulk data transfer of ${filename} has started.`);
      onStarted(transfer.id);
    } else {
      announce('The bulk data transfer did not start. See why beside "Run Transfer".', { assertive: true });
    }
  }

  const messages = result.error
    ? [describeError(result.error)]
    : (result.data?.startBulkTransfer.userErrors ?? []).map(describeUserError);
  const why = errorCount ? 'Run Transfer is available once the file has no errors.' : pairCount ? null : 'The file asks for no transfer.';
  const describedBy = [why ? whyId : null, messages.length ? errorsId : null].filter(Boolean).join(' ') || undefined;
  return (
    <div className="run-transfer">
      <div className="actions">
        <button
          type="button"
          className="primary"
          aria-disabled={!ready || undefined}
          aria-describedby={describedBy}
          onClick={() => ready && setConfirming(true)}
        >
          Run Transfer
        </button>
      </div>
      {why ? (
        <p id={whyId} className="hint">
          {why}
        </p>
      ) : null}
      <FieldErrors id={errorsId} messages={messages} />
      <ConfirmDialog
        open={confirming}
        title="Run the bulk data transfer?"
        busy={result.fetching}
        onConfirm={() => void confirm()}
        onCancel={() => setConfirming(false)}
      >
        <p>
          The data of {pairCount === 1 ? 'the source user' : `${pairCount} source users`} in {filename} will be
          transferred to {pairCount === 1 ? 'their target user' : 'their target users'}.
        </p>
        <p>Transferring user data is a permanent process. It runs in the background and may take several hours.</p>
      </ConfirmDialog>
    </div>
  );
}
