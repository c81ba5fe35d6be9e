/** One transfer's page (/console/transfers/:id): live progress while it runs (the transferEvents
 *  subscription, so a reload or a page opened later shows it again), "Cancel"; at the end its
 *  result, the User IDs not transferred with their audit log and a retry; its pairs; and "Undo". */
import './transfer.css';

import { type Ref, useEffect, useRef } from 'react';
import { useQuery } from 'urql';

import { ERROR_SENTENCES } from '../../api/errors.ts';
import { RequestError } from '../../components/FieldErrors.tsx';
import { HeadingLevel, ScreenHeading } from '../../components/Heading.tsx';
import { Link } from '../../components/Link.tsx';
import { UserLabel } from '../../components/UserLabel.tsx';
import { readFragment } from '../../graphql.ts';
import { paths } from '../../router.ts';
import { CancelButton } from './CancelButton.tsx';
import { Items } from './Items.tsx';
import { formatWhen, KIND_LABELS } from './labels.ts';
import { Outcome } from './Outcome.tsx';
import { type Counters, Progress } from './Progress.tsx';
import { isFinal, TransferQuery, type TransferState, TransferStateFragment } from './queries.ts';
import { UndoPanel } from './UndoPanel.tsx';
import { useThrottled } from './useThrottled.ts';
import { useTransferEvents } from './useTransferEvents.ts';

const ITEMS_REFRESH_MS = 2000;

interface TransferScreenProps {
  id: string;
  /** Shown inside another screen's part (Bulk): its title there, an h3, which `titleRef` may focus. */
  within?: { title: string; titleRef: Ref<HTMLHeadingElement> };
}

export function TransferScreen({ id, within }: TransferScreenProps) {
  return (
    <HeadingLevel level={within ? 3 : 2}>
      {/* another transfer starts afresh: its own stream, its own pages */}
      <TransferPage key={id} id={id} within={within} />
    </HeadingLevel>
  );
}

function TransferPage({ id, within }: TransferScreenProps) {
  const [result, refetch] = useQuery({ query: TransferQuery, variables: { id }, requestPolicy: 'network-only' });
  const transfer = result.data?.transfer ? readFragment(TransferStateFragment, result.data.transfer) : null;
  const finished = transfer !== null && isFinal(transfer.status);
  const live = useTransferEvents(id, transfer !== null && !finished);
  const ended = live.event !== null && isFinal(live.event.status);
  const watched = useRef(false); // the page saw it queued or running: its end is news
  if (transfer && !finished) watched.current = true;

  useEffect(() => {
    if (ended) refetch({ requestPolicy: 'network-only' }); // the outcome: failed IDs, undo, ...
  }, [ended, refetch]);

  const counters: Counters | null = transfer ? (finished ? transfer : (live.event ?? transfer)) : null;
  const progressKey = counters ? `${counters.status}:${counters.processedPairs}` : '';
  const throttled = useThrottled(progressKey, ITEMS_REFRESH_MS);
  const version = finished ? progressKey : throttled; // the end at once: no pair left "Pending" beside the result

  // One title whether the transfer is loaded or not, so that focus given to it stays.
  const title = within?.title ?? (transfer ? (KIND_LABELS[transfer.kind] ?? 'Transfer') : 'Transfer');
  const heading = (
    <ScreenHeading id="transfer-heading" ref={within?.titleRef}>
      {title}
    </ScreenHeading>
  );
  if (!transfer) {
    return (
      <section aria-labelledby="transfer-heading" className="transfer">
        {heading}
        {result.fetching ? <p role="status">Loading the transfer…</p> : null}
        <RequestError error={result.error} />
        {result.data && !result.data.transfer ? <p className="notice">{ERROR_SENTENCES.TRANSFER_NOT_FOUND}</p> : null}
      </section>
    );
  }
  return (
    <section aria-labelledby="transfer-heading" className="transfer">
      {heading}
      <Facts transfer={transfer} />
      <RequestError error={result.error} />
      {counters ? <Progress counters={counters} /> : null}
      {live.resuming ? <p role="status">The live updates were interrupted: reconnecting…</p> : null}
      {live.error && !live.resuming ? <RequestError error={live.error} /> : null}
      {finished ? (
        <Outcome transfer={transfer} watched={watched.current} />
      ) : (
        <CancelButton transferId={transfer.id} onCancelled={() => refetch({ requestPolicy: 'network-only' })} />
      )}
      {finished && transfer.revertibleUntil ? <UndoPanel transferId={transfer.id} revertibleUntil={transfer.revertibleUntil} /> : null}
      <Items transferId={transfer.id} version={version} />
    </section>
  );
}

function Facts({ transfer }: { transfer: TransferState }) {
  return (
    <dl className="facts">
      <div>
        <dt>Started by</dt>
        <dd>{transfer.requestedBy ? <UserLabel user={transfer.requestedBy} /> : 'someone outside your view'}</dd>
      </div>
      <div>
        <dt>Requested</dt>
        <dd>
          <time dateTime={transfer.createdAt}>{formatWhen(transfer.createdAt)}</time>
        </dd>
      </div>
      {transfer.finishedAt ? (
        <div>
          <dt>Finished</dt>
          <dd>
            <time dateTime={transfer.finishedAt}>{formatWhen(transfer.finishedAt)}</time>
          </dd>
        </div>
      ) : null}
      {transfer.revertOf ? (
        <div>
          <dt>Undoes</dt>
          <dd>
            <Link to={paths.transfer(transfer.revertOf.id)}>the transfer it undoes</Link>
          </dd>
        </div>
      ) : null}
      {transfer.revertedBy ? (
        <div>
          <dt>Undone by</dt>
          <dd>
            <Link to={paths.transfer(transfer.revertedBy.id)}>the undo of this transfer</Link>
          </dd>
        </div>
      ) : null}
    </dl>
  );
}
