/** "Undo": the revert plan (per data type: records returned, restored, skipped; the pairs that
 *  cannot go back, and why) in a confirmation window, then revertTransfer and the revert's page. */
import { useState } from 'react';
import { useMutation, useQuery } from 'urql';

import { describeUserError } from '../../api/errors.ts';
import { ConfirmDialog } from '../../components/ConfirmDialog.tsx';
import { FormErrors, RequestError } from '../../components/FieldErrors.tsx';
import { PartHeading } from '../../components/Heading.tsx';
import { UserLabel, UserLabelFragment } from '../../components/UserLabel.tsx';
import { readFragment, type ResultOf } from '../../graphql.ts';
import { navigate, paths } from '../../router.ts';
import { formatWhen } from './labels.ts';
import { RevertPlanQuery, RevertTransferMutation } from './queries.ts';

export function UndoPanel({ transferId, revertibleUntil }: { transferId: string; revertibleUntil: string }) {
  // One key per confirmation window: a resent click gets the revert the first one started.
  const [key, setKey] = useState<string | null>(null);
  return (
    <section className="undo" aria-labelledby="undo-heading">
      <PartHeading id="undo-heading">Undo</PartHeading>
      <p>
        This transfer can be undone until <time dateTime={revertibleUntil}>{formatWhen(revertibleUntil)}</time>: each
        pair that succeeded is moved back.
      </p>
      <div className="actions start">
        <button type="button" onClick={() => setKey(crypto.randomUUID())}>
          Undo
        </button>
      </div>
      <UndoDialog transferId={transferId} idempotencyKey={key} onClose={() => setKey(null)} />
    </section>
  );
}

/** Open while there is a key; stays mounted so that closing it gives focus back to "Undo". */
function UndoDialog({ transferId, idempotencyKey, onClose }: { transferId: string; idempotencyKey: string | null; onClose: () => void }) {
  const open = idempotencyKey !== null;
  const [plan] = useQuery({ query: RevertPlanQuery, variables: { id: transferId }, requestPolicy: 'network-only', pause: !open });
  const [result, revert] = useMutation(RevertTransferMutation);
  const found = plan.data?.revertPlan;
  const refused = (found?.errors ?? []).map(describeUserError);
  const problems = (result.data?.revertTransfer.userErrors ?? []).map(describeUserError);
  const confirm = async () => {
    if (!idempotencyKey) return;
    const done = await revert({ id: transferId, idempotencyKey });
    const started = done.data?.revertTransfer.transfer;
    if (started) navigate(paths.transfer(started.id));
  };
  return (
    <ConfirmDialog
      open={open}
      title="Undo this transfer?"
      confirmLabel="Undo transfer"
      busy={!found || refused.length > 0 || result.fetching}
      onConfirm={() => void confirm()}
      onCancel={onClose}
    >
      {plan.fetching && !found ? <p role="status">Working out what the undo would do…</p> : null}
      <RequestError error={plan.error} />
      {open && found ? <Plan plan={found} /> : null}
      <FormErrors messages={[...refused, ...problems]} />
      <RequestError error={result.error} />
    </ConfirmDialog>
  );
}

type RevertPlan = ResultOf<typeof RevertPlanQuery>['revertPlan'];

function Plan({ plan }: { plan: RevertPlan }) {
  const changes = plan.impact.filter((row) => row.returns + row.restores + row.skipped > 0);
  return (
    <>
      <p>Undoing moves the data of each pair that succeeded back to its source user. Per data type:</p>
      {changes.length === 0 ? (
        <p>No records would move back.</p>
      ) : (
        <div className="table-scroll">
          <table>
            <caption className="visually-hidden">What the undo does per data type</caption>
            <thead>
              <tr>
                <th scope="col">Data type</th>
                <th scope="col">Returned</th>
                <th scope="col">Restored</th>
                <th scope="col">Skipped</th>
              </tr>
            </thead>
            <tbody>
              {changes.map((row) => (
                <tr key={row.dataType.key}>
                  <th scope="row">{row.dataType.name}</th>
                  <td>{row.returns}</td>
                  <td>{row.restores}</td>
                  <td>{row.skipped}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <p className="hint">
        Returned: records that go back to the source user. Restored: records the transfer deleted, put back for the
        target user. Skipped: records that have changed since, left as they are.
      </p>
      {plan.conflicts.length > 0 ? (
        <>
          <h3>Pairs that cannot be undone</h3>
          <ul className="conflicts">
            {plan.conflicts.map((conflict) => {
              const source = readFragment(UserLabelFragment, conflict.sourceUser);
              return (
                <li key={`${source.userId}-${conflict.code}`}>
                  {conflict.rowNumber ? `Line ${conflict.rowNumber}: ` : null}
                  <UserLabel user={conflict.sourceUser} /> from <UserLabel user={conflict.targetUser} />:{' '}
                  {conflict.message}
                </li>
              );
            })}
          </ul>
        </>
      ) : null}
    </>
  );
}
