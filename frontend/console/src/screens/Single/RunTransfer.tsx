/** "Run Transfer", its confirmation window, and the start: one idempotency key per opening of the
 *  window, so a double click or a request sent again starts one transfer. Once started, the
 *  console goes to the transfer's page, which follows it live. */
import { useId, useRef, useState } from 'react';
import { type CombinedError, useMutation } from 'urql';

import { type UserErrorLike } from '../../api/errors.ts';
import { ConfirmDialog } from '../../components/ConfirmDialog.tsx';
import { RequestError } from '../../components/FieldErrors.tsx';
import { useAnnounce } from '../../components/LiveRegion.tsx';
import { graphql } from '../../graphql.ts';
import { navigate, paths } from '../../router.ts';

const StartSingleTransfer = graphql(`
  mutation StartSingleTransfer($input: StartTransferInput!) {
    startTransfer(input: $input) {
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

/** A fresh key for one confirmation: 128 random bits (crypto.randomUUID needs a secure context). */
function newIdempotencyKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `console-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

export interface RunTransferProps {
  sourceUserId: number | null;
  targetUserId: number | null;
  dataTypes: string[] | null;
  blockedBecause: string | null; // why it cannot run yet; null: it can
  summary: string; // what will happen, said in the confirmation window
  onRefused: (errors: readonly UserErrorLike[]) => void; // shown beside their fields
}

export function RunTransfer({ sourceUserId, targetUserId, dataTypes, blockedBecause, summary, onRefused }: RunTransferProps) {
  const id = useId();
  const [open, setOpen] = useState(false);
  const [failure, setFailure] = useState<CombinedError | undefined>();
  const [started, start] = useMutation(StartSingleTransfer);
  const key = useRef('');
  const sending = useRef(false); // a second click before the first answer sends nothing more
  const announce = useAnnounce();

  const confirm = async () => {
    if (sending.current || sourceUserId === null || targetUserId === null) return;
    sending.current = true;
    setFailure(undefined);
    const input = { sourceUserId, targetUserId, dataTypes, confirm: true, idempotencyKey: key.current };
    const answer = await start({ input }).finally(() => (sending.current = false));
    const payload = answer.data?.startTransfer;
    if (!payload) {
      setFailure(answer.error); // the same key goes again with the next click: still one transfer
      return;
    }
    setOpen(false);
    if (payload.transfer) {
      announce('The transfer has started.');
      navigate(paths.transfer(payload.transfer.id));
    } else {
      announce('The transfer did not start: see the problems shown.', { assertive: true });
      onRefused(payload.userErrors);
    }
  };

  return (
    <div className="actions run">
      {blockedBecause ? (
        <p id={`${id}-why`} className="hint">
          {blockedBecause}
        </p>
      ) : null}
      <button
        type="button"
        className="primary"
        disabled={blockedBecause !== null}
        aria-describedby={blockedBecause ? `${id}-why` : undefined}
        onClick={() => {
          key.current = newIdempotencyKey();
          setFailure(undefined);
          setOpen(true);
        }}
      >
        Run Transfer
      </button>
      <ConfirmDialog
        open={open}
        title="Transfer user data"
        busy={started.fetching}
        onConfirm={() => void confirm()}
        onCancel={() => setOpen(false)}
      >
        <p>{summary}</p>
        <p>The transfer runs in the background and may take several minutes.</p>
        <RequestError error={failure} />
      </ConfirmDialog>
    </div>
  );
}
