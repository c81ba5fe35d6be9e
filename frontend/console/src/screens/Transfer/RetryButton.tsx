/** "Retry failed pairs": after the confirmation, a new transfer of only the failed pairs starts
 *  (retryFailedTransfers), and the page goes to it. */
import { useState } from 'react';
import { useMutation } from 'urql';

import { describeUserError } from '../../api/errors.ts';
import { ConfirmDialog } from '../../components/ConfirmDialog.tsx';
import { FormErrors, RequestError } from '../../components/FieldErrors.tsx';
import { navigate, paths } from '../../router.ts';
import { RetryFailedMutation, type TransferState } from './queries.ts';

export function RetryButton({ transfer }: { transfer: TransferState }) {
  // One key per confirmation window: a resent click gets the transfer the first one started.
  const [key, setKey] = useState<string | null>(null);
  const [result, retry] = useMutation(RetryFailedMutation);
  const payload = result.data?.retryFailedTransfers;
  const problems = (payload?.userErrors ?? []).map(describeUserError);
  const confirm = async () => {
    if (!key) return;
    const done = await retry({ id: transfer.id, idempotencyKey: key });
    const started = done.data?.retryFailedTransfers.transfer;
    if (started) navigate(paths.transfer(started.id));
  };
  return (
    <>
      <div className="actions start">
        <button type="button" className="primary" onClick={() => setKey(crypto.randomUUID())}>
          Retry failed pairs
        </button>
      </div>
      {key === null ? <FormErrors messages={problems} /> : null}
      <ConfirmDialog
        open={key !== null}
        title="Retry the failed pairs?"
        busy={result.fetching}
        onConfirm={() => void confirm()}
        onCancel={() => setKey(null)}
      >
        <p>
          A new bulk transfer starts with the {transfer.failedPairs === 1 ? 'pair' : `${transfer.failedPairs} pairs`} that
          failed. Transferring user data is permanent.
        </p>
        <FormErrors messages={problems} />
        <RequestError error={result.error} />
      </ConfirmDialog>
    </>
  );
}
