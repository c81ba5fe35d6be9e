/** "Cancel" a queued or running transfer, after a confirmation: the pair in flight finishes, the
 *  pairs not yet run end CANCELLED, and what is done stays done. */
import { useState } from 'react';
import { useMutation } from 'urql';

import { describeUserError } from '../../api/errors.ts';
import { ConfirmDialog } from '../../components/ConfirmDialog.tsx';
import { FormErrors, RequestError } from '../../components/FieldErrors.tsx';
import { CancelTransferMutation } from './queries.ts';

export function CancelButton({ transferId, onCancelled }: { transferId: string; onCancelled: () => void }) {
  const [open, setOpen] = useState(false);
  const [result, cancel] = useMutation(CancelTransferMutation);
  const problems = (result.data?.cancelTransfer.userErrors ?? []).map(describeUserError);
  const confirm = async () => {
    const done = await cancel({ id: transferId });
    if (done.data && done.data.cancelTransfer.userErrors.length === 0) {
      setOpen(false);
      onCancelled();
    }
  };
  return (
    <>
      <div className="actions start">
        <button type="button" onClick={() => setOpen(true)}>
          Cancel
        </button>
      </div>
      {open ? null : <FormErrors messages={problems} />}
      <ConfirmDialog
        open={open}
        title="Stop this transfer?"
        confirmLabel="Stop transfer"
        busy={result.fetching}
        onConfirm={() => void confirm()}
        onCancel={() => setOpen(false)}
      >
        <p>
          The pair being transferred now finishes; the pairs not yet run are cancelled. Pairs already transferred stay
          transferred: undo the transfer afterwards to move them back.
        </p>
        <FormErrors messages={problems} />
        <RequestError error={result.error} />
      </ConfirmDialog>
    </>
  );
}
